using BrainSeg.Engine;
using BrainSeg.Seg.Training;
using BrainSeg.Tests.Training;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// The trainer's recorded iterations (CUDA graphs) against eager ones from the same seed: the same losses, parameters,
/// batch-norm statistics, optimiser state and generator offset, bit for bit, with dropout drawing fresh masks at each
/// replay; and a replayed iteration is one launch, without a host wait or an allocation.
/// </summary>
[TestFixture(TensorLayout.Nhwc)]
[TestFixture(TensorLayout.Nchw)]
public sealed class TrainerReplayTests(TensorLayout layout) : GpuTestBase
{
    protected override TensorLayout Layout => layout;

    [TestCase(false)]
    [TestCase(true)]
    public void ReplayedIterationsEqualEagerOnesBitForBit(bool adversarial)
    {
        var options = new TrainingOptions { Seed = 7, Batch = 9, PatchesPerClass = 6, Adversarial = adversarial };
        using var eager = new Trainer(Gpu, TrainingFixtures.Phantom(), options, null, TinyNetwork.Create) { ReplaySteps = false };
        using var replayed = new Trainer(Gpu, TrainingFixtures.Phantom(), options, null, TinyNetwork.Create);
        var batches = eager.EpochBatches(0).Where(b => b.Count == 9).Take(4).ToList();
        Assert.That(batches, Has.Count.EqualTo(4));

        var expected = batches.Select(eager.Iterate).ToList();
        var losses = new List<Losses>();
        WorkCounts lastIteration = default;
        foreach (var b in batches)
        {
            Gpu.Synchronize();
            var before = Gpu.Counters.Total;
            var pending = replayed.Enqueue(b);
            lastIteration = Gpu.Counters.Total - before;
            losses.Add(pending.Read());
        }

        Assert.That(replayed.ReplayRefused, Is.Null);
        Assert.That(replayed.IsReplaying, "iterations after the first are replayed");
        Assert.That(eager.IsReplaying, Is.False);
        Assert.That(losses, Is.EqualTo(expected));
        Assert.That(replayed.Random.Offset, Is.EqualTo(eager.Random.Offset), "dropout offsets drawn");
        Assert.That(State(replayed), Is.EqualTo(State(eager)), "parameters, batch-norm statistics and optimiser state");
        Assert.Multiple(() =>
        {
            Assert.That(lastIteration.Launches, Is.EqualTo(1), "a replayed iteration is one graph launch");
            Assert.That(lastIteration.HostSyncs, Is.Zero, "host waits");
            Assert.That(lastIteration.DeviceAllocs, Is.Zero, "device allocations");
        });
    }

    /// <summary>Everything a checkpoint holds of the run's tensors, as bytes (bit-for-bit comparison).</summary>
    private static byte[] State(Trainer trainer) => [.. trainer.CheckpointTensors().SelectMany(t => t.Data)];
}
