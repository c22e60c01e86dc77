using BrainSeg.Engine;
using BrainSeg.Seg.Benchmarking;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// Ratchets on the work of a warm training step at batch 300, as the CUDA backend counts it: no device
/// allocation, no wait of the host, no algorithm search, and at most the stated launches (lower them as
/// launches are removed; benchmarks/RESULTS.md keeps the history). The counts do not depend on the device,
/// so the CPU stand-in proves them too, but only with FAKE_CUDA_SKIP_COMPUTE=1: computing a batch-300 step
/// there takes hours (.ci/run runs this class so). Channels-last (the default) runs each batch-norm pass in three
/// launches instead of two: a channels-last block spans every channel, so the per-channel statistics and gradient
/// sums get a small launch of their own.
/// </summary>
[TestFixture(TensorLayout.Nhwc)]
[TestFixture(TensorLayout.Nchw)]
public sealed class StepCounterTests(TensorLayout layout) : GpuTestBase
{
    protected override TensorLayout Layout => layout;

    [TestCase(BenchStep.Fcn, 127, 159)]
    [TestCase(BenchStep.Dilated, 62, 76)]
    [TestCase(BenchStep.Adversarial, 407, 495)]
    public void AWarmStepAtBatch300QueuesWorkWithoutWaitingOrAllocating(BenchStep step, int maxLaunchesNchw, int maxLaunchesNhwc)
    {
        int maxLaunches = layout == TensorLayout.Nhwc ? maxLaunchesNhwc : maxLaunchesNchw;
        var counted = WarmStep(new BenchSettings { Step = step, Batch = 300 });
        Assert.Multiple(() =>
        {
            Assert.That(counted.DeviceAllocs, Is.Zero, "device allocations");
            Assert.That(counted.HostSyncs, Is.Zero, "host synchronisations");
            Assert.That(counted.AlgorithmSearches, Is.Zero, "algorithm searches");
            Assert.That(counted.Launches, Is.LessThanOrEqualTo(maxLaunches), "launches");
            // The nominal figure counts every FCN pass of the adversarial iteration as forward and backward (the
            // discriminator's La and Ld passes through a frozen or gradient-free segmenter are less): 0.69 of it is modelled.
            Assert.That(counted.Flops, Is.GreaterThan(0.6 * BenchRunner.WorkFlops(new BenchSettings { Step = step, Batch = 300 })),
                "the modelled FLOPs cover the step's convolutions");
        });
    }

    /// <summary>With --graphs on, a warm step is its input set's two copies and one replay of the captured step.</summary>
    [TestCase(BenchStep.Fcn)]
    [TestCase(BenchStep.Dilated)]
    public void AReplayedStepAtBatch300IsOneLaunch(BenchStep step)
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
            Assert.That(counted.Copies, Is.EqualTo(2), "the input set copied into the captured inputs");
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
