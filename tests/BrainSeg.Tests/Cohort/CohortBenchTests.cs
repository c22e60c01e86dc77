using BrainSeg.Mri;
using System.Text.Json;
using BrainSeg.Engine.Cpu;
using BrainSeg.Seg.Benchmarking;
using NUnit.Framework;

namespace BrainSeg.Tests.Cohort;

/// <summary>The cohort measurement runs end to end at a small size and cleans up after itself (its numbers are for quiet machines, not asserted).</summary>
public class CohortBenchTests
{
    [Test]
    public void ASmallCohortIsMeasuredAndItsFilesRemoved()
    {
        var lines = new List<string>();
        var result = CohortBench.Run(CpuBackend.Instance, new CohortBenchSettings(Volumes: 2, Side: 16, BatchSlices: 8, Classes: 3), lines.Add);
        Assert.That(result.WallSeconds, Is.GreaterThan(0));
        Assert.That(result.SegmentSeconds, Is.GreaterThan(0));
        Assert.That(result.VolumesPerMinute, Is.EqualTo(2 / result.WallSeconds * 60).Within(1e-9));
        string folder = lines[0].Split(" to ")[1];
        Assert.That(folder, Does.Contain("brainseg-cohort-bench-"));
        Assert.That(Directory.Exists(folder), Is.False, "the synthetic cohort is removed");
        using var json = JsonDocument.Parse(result.ToJson());
        Assert.That(json.RootElement.GetProperty("volumes").GetInt32(), Is.EqualTo(2));
        Assert.That(json.RootElement.GetProperty("volumes_per_min").GetDouble(), Is.EqualTo(result.VolumesPerMinute));
    }

    [Test]
    public void ABadCohortSizeIsRefusedNamingTheOption() =>
        Assert.That(() => new CohortBenchSettings(Volumes: 0).Validate(), Throws.TypeOf<BadInputException>().With.Message.Contains("--volumes"));
}
