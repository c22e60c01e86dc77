using System.Text.Json;
using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;
using BrainSeg.Mri;
using BrainSeg.Seg.Benchmarking;
using NUnit.Framework;

namespace BrainSeg.Tests.Benchmarking;

/// <summary>The bench harness on the CPU at tiny sizes: FLOP counts, the peer's JSON fields, repetition counts.</summary>
public class BenchRunnerTests
{
    [Test]
    public void WorkFlopsFollowTheIssueCounts()
    {
        Assert.Multiple(() =>
        {
            Assert.That(BenchRunner.WorkFlops(new BenchSettings { Step = BenchStep.Fcn, Batch = 300 }), Is.EqualTo(3 * 325e6 * 300));
            Assert.That(BenchRunner.WorkFlops(new BenchSettings { Step = BenchStep.Dilated, Batch = 100 }), Is.EqualTo(3 * 413e6 * 100));
            Assert.That(BenchRunner.WorkFlops(new BenchSettings { Step = BenchStep.Adversarial, Batch = 100 }), Is.EqualTo(300 * (3 * 325e6 + 2 * 26e6)));
            Assert.That(BenchRunner.WorkFlops(new BenchSettings { Step = BenchStep.Segment, Volume = 256 }), Is.EqualTo(325e6 / 441 * 256.0 * 256 * 256).Within(1e-6).Percent);
            // 32→32 3×3 on 51×51 with dilation 2: 47×47 outputs, forward + backward = 3 × 2·N·K·C·9·Ho·Wo.
            Assert.That(BenchRunner.WorkFlops(new BenchSettings { Step = BenchStep.Conv, Batch = 2, Dilation = 2 }), Is.EqualTo(3 * 2.0 * 2 * 32 * 32 * 9 * 47 * 47));
        });
    }

    [Test]
    public void ConvStepReportsThePeersFields()
    {
        var settings = new BenchSettings { Step = BenchStep.Conv, Batch = 1, Dilation = 4, Reps = 3, Warmup = 1 };
        var result = BenchRunner.Run(CpuBackend.Instance, settings, new StopwatchClock(CpuBackend.Instance), "fp32/nchw");
        using var json = JsonDocument.Parse(BenchRunner.ToJson(result));
        var root = json.RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(root.GetProperty("step").GetString(), Is.EqualTo("conv"));
            Assert.That(root.GetProperty("batch").GetInt32(), Is.EqualTo(1));
            Assert.That(root.GetProperty("device").GetString(), Does.StartWith("cpu"));
            Assert.That(root.GetProperty("median_ms").GetDouble(), Is.GreaterThan(0));
            Assert.That(root.GetProperty("reps").GetInt32(), Is.EqualTo(3));
            Assert.That(root.GetProperty("peak_bytes").GetInt64(), Is.GreaterThan(0));
            Assert.That(root.GetProperty("host_alloc_bytes_per_rep").GetInt64(), Is.EqualTo(result.HostAllocatedBytesPerRep));
            Assert.That(result.MinMs, Is.LessThanOrEqualTo(result.MedianMs));
            Assert.That(result.MedianMs, Is.LessThanOrEqualTo(result.MaxMs));
            Assert.That(root.GetProperty("patches_per_s").GetDouble(), Is.EqualTo(1e3 / result.MedianMs).Within(0.006));
            Assert.That(root.GetProperty("tflops").GetDouble(), Is.EqualTo(BenchRunner.WorkFlops(settings) / result.MedianMs / 1e9).Within(6e-5));
        });
    }

    [Test]
    public void WarmTrainingStepOnTheCpuAllocatesLittle()
    {
        // After warm-up over every input set, tensors come from the host pool and convolution scratch from
        // ArrayPool: what is left is small bookkeeping objects (tensors, tape entries, Parallel.For's state),
        // 300–650 KiB per step. Activations allocated afresh would add ~8 MiB, packed filters ~1 MiB.
        var settings = new BenchSettings { Step = BenchStep.Fcn, Batch = 2, Reps = 3, Warmup = BenchSettings.InputSets };
        var result = BenchRunner.Run(CpuBackend.Instance, settings, new StopwatchClock(CpuBackend.Instance), "fp32/nchw");
        Assert.That(result.HostAllocatedBytesPerRep, Is.LessThan(1024 * 1024));
    }

    [Test]
    public void ProfileSplitsTheStepByOp()
    {
        var settings = new BenchSettings { Step = BenchStep.Fcn, Batch = 2, Warmup = 1 };
        var profile = BenchRunner.Profile(CpuBackend.Instance, settings, new StopwatchClock(CpuBackend.Instance), new StopwatchOpClock(), reps: 2);
        var rows = profile.Ops.ToDictionary(o => o.Op);
        Assert.Multiple(() =>
        {
            // The FCN: fourteen 32→32 3×3 layers after the first, each once forward and once backward per step.
            Assert.That(rows["Conv2dForward 32→32 3×3"].Calls, Is.EqualTo(14));
            Assert.That(rows["Conv2dBackwardFilter 32→32 3×3"].Calls, Is.EqualTo(14));
            Assert.That(rows["Conv2dForward 1→32 3×3"].Calls, Is.EqualTo(1));
            Assert.That(rows.Keys, Has.Some.StartsWith("BatchNorm"));
            Assert.That(profile.Ops, Has.All.Matches<BenchProfile.Row>(o => o.Ms >= 0));
            // The ops run inside the step: together they cannot take longer than it.
            Assert.That(profile.Ops.Sum(o => o.Ms), Is.LessThanOrEqualTo(profile.StepMs * 1.0001));
            Assert.That(profile.Lines().Last(), Does.StartWith("  (outside the profiled ops)"));
        });
    }

    [Test]
    public void TimeLimitStopsAfterThreeRepetitions()
    {
        var settings = new BenchSettings { Step = BenchStep.Conv, Batch = 1, Dilation = 16, Reps = 1000, Warmup = 0, TimeLimitSeconds = 1e-9 };
        var result = BenchRunner.Run(CpuBackend.Instance, settings, new StopwatchClock(CpuBackend.Instance), "fp32/nchw");
        Assert.That(result.TimedReps, Is.EqualTo(3));
        Assert.That(BenchRunner.Describe(result), Does.Contain("time limit reached"));
    }

    [Test]
    public void SegmentCountsSlicesPerSecond()
    {
        var settings = new BenchSettings { Step = BenchStep.Segment, Volume = 3, Batch = 2, Reps = 30 };
        var result = BenchRunner.Run(CpuBackend.Instance, settings, new StopwatchClock(CpuBackend.Instance), "fp32/nchw");
        Assert.That(result.TimedReps, Is.EqualTo(3), "segment times max(3, reps/10) passes over the volume");
        Assert.That(result.UnitsPerSecond, Is.EqualTo(3 * 1e3 / result.MedianMs).Within(0.006));
    }

    [Test]
    public void BadSettingsNameTheOption()
    {
        Assert.That(() => new BenchSettings { Batch = 0 }.Validate(), Throws.TypeOf<BadInputException>().With.Message.Contains("--batch"));
        Assert.That(() => new BenchSettings { Dilation = 17 }.Validate(), Throws.TypeOf<BadInputException>().With.Message.Contains("--dilation"));
    }
    [Test]
    public void JsonCarriesTheCountsPerStepOnlyWhereTheBackendCounts()
    {
        var s = new BenchSettings { Step = BenchStep.Fcn, Batch = 2, Reps = 4 };
        var counted = new BenchResult(s with { Graphs = true }, "dev", "fp32/nchw", 1, 1, 1, 4, 1, 1, 0, 0, new WorkCounts(4, 2, 0, 4, 0, 4e9, 8e9, GraphLaunches: 4));
        var json = JsonDocument.Parse(BenchRunner.ToJson(counted)).RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(json.GetProperty("graphs").GetString(), Is.EqualTo("on"));
            Assert.That(json.GetProperty("launches_per_step").GetDouble(), Is.EqualTo(1));
            Assert.That(json.GetProperty("graph_launches_per_step").GetDouble(), Is.EqualTo(1));
            Assert.That(json.GetProperty("host_syncs_per_step").GetDouble(), Is.EqualTo(0.5));
            Assert.That(json.GetProperty("device_allocs_per_step").GetDouble(), Is.EqualTo(0));
            Assert.That(json.GetProperty("copies_per_step").GetDouble(), Is.EqualTo(1));
            Assert.That(json.GetProperty("modelled_bytes_per_step").GetDouble(), Is.EqualTo(1e9));
            Assert.That(json.GetProperty("modelled_flops_per_step").GetDouble(), Is.EqualTo(2e9));
        });
        var plain = JsonDocument.Parse(BenchRunner.ToJson(counted with { Counted = null })).RootElement;
        Assert.That(plain.TryGetProperty("launches_per_step", out _), Is.False, "a backend that does not count reports no counts");
    }

    [Test]
    public void CountersChargeWorkToTheOpEnteredLast()
    {
        var c = new WorkCounters();
        c.Enter("A");
        c.Launch();
        c.Model(100, 10);
        var before = c.ByOp();
        c.Enter("B");
        c.Launch();
        c.Launch();
        c.HostSync();
        c.Enter("A");
        c.Copy();
        var step = WorkCounters.Difference(c.ByOp(), before).ToDictionary(r => r.Op, r => r.Counts);
        Assert.Multiple(() =>
        {
            Assert.That(c.Total, Is.EqualTo(new WorkCounts(3, 1, 0, 1, 0, 100, 10)));
            Assert.That(step["B"], Is.EqualTo(new WorkCounts(2, 1, 0, 0, 0, 0, 0)));
            Assert.That(step["A"], Is.EqualTo(new WorkCounts(0, 0, 0, 1, 0, 0, 0)), "only what came after the snapshot");
            Assert.That(step.Keys, Is.EquivalentTo(new[] { "A", "B" }), "ops with nothing new are left out");
        });
    }
}
