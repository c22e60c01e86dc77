using BrainSeg.Engine;
using BrainSeg.Seg.Benchmarking;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// Ratchets on the work of a warm training step at batch 300, as the CUDA backend counts it: no device
/// allocation, no wait of the host, no algorithm search, and at most the stated launches and modelled bytes (lower
/// them as launches and passes are removed; benchmarks/RESULTS.md keeps the history). The counts do not depend on the device,
/// so the CPU stand-in proves them too, but only with FAKE_CUDA_SKIP_COMPUTE=1: computing a batch-300 step
/// there takes hours (.ci/run runs this class so). Both layouts run each batch-norm pass in two launches (channels-last
/// combines the per-channel sums in the reduction launch's last block), so they share the ratchets.
/// </summary>
[TestFixture(TensorLayout.Nhwc)]
[TestFixture(TensorLayout.Nchw)]
public sealed class StepCounterTests(TensorLayout layout) : GpuTestBase
{
    protected override TensorLayout Layout => layout;

    [TestCase(BenchStep.Fcn, 125, 12.96)]
    [TestCase(BenchStep.Dilated, 60, 15.67)]
    [TestCase(BenchStep.Adversarial, 398, 28.11)]
    public void AWarmStepAtBatch300QueuesWorkWithoutWaitingOrAllocating(BenchStep step, int maxLaunches, double maxGigabytes)
    {
        var counted = WarmStep(new BenchSettings { Step = step, Batch = 300 });
        Assert.Multiple(() =>
        {
            Assert.That(counted.DeviceAllocs, Is.Zero, "device allocations");
            Assert.That(counted.HostSyncs, Is.Zero, "host synchronisations");
            Assert.That(counted.AlgorithmSearches, Is.Zero, "algorithm searches");
            Assert.That(counted.Launches, Is.LessThanOrEqualTo(maxLaunches), "launches");
            Assert.That(counted.Bytes, Is.LessThanOrEqualTo(maxGigabytes * 1e9), "modelled bytes");
            // The nominal figure counts every FCN pass of the adversarial iteration as forward and backward (the
            // discriminator's La and Ld passes through a frozen or gradient-free segmenter are less): 0.69 of it is modelled.
            Assert.That(counted.Flops, Is.GreaterThan(0.6 * BenchRunner.WorkFlops(new BenchSettings { Step = step, Batch = 300 })),
                "the modelled FLOPs cover the step's convolutions");
        });
    }

    /// <summary>
    /// With --graphs on, a warm step is one replay of the captured step beside its copies: a training step's input set
    /// copied into the captured inputs (2); the trainer's adversarial iteration's five staged uploads (host → staging →
    /// tensor, 10; La needs no labels) and its loss readback (1).
    /// </summary>
    [TestCase(BenchStep.Fcn, 2)]
    [TestCase(BenchStep.Dilated, 2)]
    [TestCase(BenchStep.Adversarial, 11)]
    public void AReplayedStepAtBatch300IsOneLaunch(BenchStep step, int copies)
    {
        var settings = new BenchSettings { Step = step, Batch = 300, Graphs = true };
        var counted = WarmStep(settings);   // the first step ran eagerly and was captured
        Assert.Multiple(() =>
        {
            Assert.That(counted.Launches, Is.EqualTo(1), "launches");
            Assert.That(counted.GraphLaunches, Is.EqualTo(1), "graph launches");
            Assert.That(counted.HostSyncs, Is.Zero, "host synchronisations");
            Assert.That(counted.DeviceAllocs, Is.Zero, "device allocations");
            Assert.That(counted.AlgorithmSearches, Is.Zero, "algorithm searches");
            Assert.That(counted.Copies, Is.EqualTo(copies), "the inputs staged or copied into the captured inputs, and the losses read back");
            Assert.That(counted.Flops, Is.GreaterThan(0.6 * BenchRunner.WorkFlops(settings)), "a replay counts the captured work's FLOPs");
        });
    }

    /// <summary>The work counted for the third step of <paramref name="settings"/>' workload.</summary>
    private WorkCounts WarmStep(BenchSettings settings)
    {
        if (Gpu.Context.DeviceName.StartsWith("Fake", StringComparison.Ordinal) && Environment.GetEnvironmentVariable("FAKE_CUDA_SKIP_COMPUTE") is null)
            Assert.Ignore("the CPU stand-in computes a batch-300 step for hours; run with FAKE_CUDA_SKIP_COMPUTE=1 (counts only)");
        using var work = BenchRunner.Build(Gpu, settings);
        work.Step(0);
        work.Step(1);
        Gpu.Synchronize();
        var before = Gpu.Counters.Total;
        work.Step(2);
        var counted = Gpu.Counters.Total - before;
        Gpu.Synchronize();
        TestContext.Out.WriteLine($"{settings.Step} batch {settings.Batch}{(settings.Graphs ? ", replayed" : "")}, warm step: {counted}");
        return counted;
    }
}
