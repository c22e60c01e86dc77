using BrainSeg.Cuda;
using BrainSeg.Engine;
using BrainSeg.Seg.Benchmarking;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// Ratchets on the work of a warm training step at batch 300, as the CUDA backend counts it: no device
/// allocation, no wait of the host, no algorithm search, and at most the stated launches and modelled bytes (lower
/// them as launches and passes are removed; benchmarks/RESULTS.md keeps the history). The counts do not depend on the device,
/// except through cuDNN's runtime fusion: with fused passes (the stand-in's fused engine, or a device whose cuDNN plans and
/// times them faster) a channels-last batch norm's output is read by the next convolution's prologue (or by dropout's
/// kernel) instead of written, its backward's sums ride on that convolution's data gradient, and the output layer's bias
/// rides on its convolution; without them (RuntimeFusion off, or a device that runs the separate
/// passes) the counts are those of the separate passes. The CPU stand-in proves them, but only with
/// FAKE_CUDA_SKIP_COMPUTE=1: computing a batch-300 step there takes hours (.ci/run runs this class so).
/// </summary>
[TestFixture(TensorLayout.Nhwc)]
[TestFixture(TensorLayout.Nchw)]
public sealed class StepCounterTests(TensorLayout layout) : GpuTestBase
{
    protected override TensorLayout Layout => layout;

    /// <summary>The bounds with fusion in channels-last, with fusion in NCHW (only the output layer's bias), and without it.</summary>
    [TestCase(BenchStep.Fcn, true, new[] { 94, 124, 125 }, new[] { 10.45, 12.95, 12.96 })]
    [TestCase(BenchStep.Dilated, true, new[] { 46, 59, 60 }, new[] { 12.29, 15.66, 15.67 })]
    [TestCase(BenchStep.Adversarial, true, new[] { 320, 396, 398 }, new[] { 22.82, 28.09, 28.11 })]
    [TestCase(BenchStep.Fcn, false, new[] { 94, 124, 125 }, new[] { 10.45, 12.95, 12.96 })]
    [TestCase(BenchStep.Dilated, false, new[] { 46, 59, 60 }, new[] { 12.29, 15.66, 15.67 })]
    [TestCase(BenchStep.Adversarial, false, new[] { 320, 396, 398 }, new[] { 22.82, 28.09, 28.11 })]
    public void AWarmStepAtBatch300QueuesWorkWithoutWaitingOrAllocating(BenchStep step, bool fusion, int[] maxLaunches, double[] maxGigabytes)
    {
        using var unfused = fusion ? null : CudaBackend.Create(options: Gpu.Options with { RuntimeFusion = false });
        var backend = unfused ?? Gpu;
        var counted = WarmStep(backend, new BenchSettings { Step = step, Batch = 300 });
        var separate = backend.EngineReports.Count(r => r.Source == "separate");
        if (fusion && separate > 0)
            Assert.Ignore($"this device's cuDNN runs {separate} fused pass(es) as separate ones (EngineReports); the bounds without fusion are checked apart");
        int bound = !fusion ? 2 : layout == TensorLayout.Nhwc ? 0 : 1;
        Assert.Multiple(() =>
        {
            Assert.That(counted.DeviceAllocs, Is.Zero, "device allocations");
            Assert.That(counted.HostSyncs, Is.Zero, "host synchronisations");
            Assert.That(counted.AlgorithmSearches, Is.Zero, "algorithm searches");
            Assert.That(counted.Launches, Is.LessThanOrEqualTo(maxLaunches[bound]), "launches");
            Assert.That(counted.Bytes, Is.LessThanOrEqualTo(maxGigabytes[bound] * 1e9), "modelled bytes");
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
        var counted = WarmStep(Gpu, settings);   // the first step ran eagerly and was captured
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

    /// <summary>The work counted for the third step of <paramref name="settings"/>' workload on <paramref name="gpu"/>.</summary>
    private static WorkCounts WarmStep(CudaBackend gpu, BenchSettings settings)
    {
        if (gpu.Context.DeviceName.StartsWith("Fake", StringComparison.Ordinal) && Environment.GetEnvironmentVariable("FAKE_CUDA_SKIP_COMPUTE") is null)
            Assert.Ignore("the CPU stand-in computes a batch-300 step for hours; run with FAKE_CUDA_SKIP_COMPUTE=1 (counts only)");
        using var work = BenchRunner.Build(gpu, settings);
        work.Step(0);
        work.Step(1);
        gpu.Synchronize();
        var before = gpu.Counters.Total;
        work.Step(2);
        var counted = gpu.Counters.Total - before;
        gpu.Synchronize();
        TestContext.Out.WriteLine($"{settings.Step} batch {settings.Batch}{(settings.Graphs ? ", replayed" : "")}, warm step: {counted}");
        return counted;
    }
}
