using BrainSeg.Cuda;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// The probe of cuDNN's runtime fusion: every fused pattern is built as an operation graph in float and half inputs
/// and asked of the heuristics. The stand-in proposes its one fused engine (6) for every graph; it plans float memory
/// but has no half arithmetic, so there every float row plans that engine and every half row proposes it unplanned;
/// a device prints its answer.
/// </summary>
public sealed class FusionProbeTests : GpuTestBase
{
    [Test]
    public void EveryPatternIsAskedInFloatAndHalf()
    {
        var rows = FusionProbe.Run(Gpu, batch: 4, side: 9);
        foreach (var row in rows) TestContext.Out.WriteLine(row);
        Assert.That(rows, Has.Count.EqualTo(8));
        Assert.That(rows.Select(r => r.Inputs).Distinct(), Is.EquivalentTo(new[] { "float", "half" }));
        Assert.That(rows.All(r => r.Planned <= r.Proposed && r.Planned >= 0));
        if (Gpu.Context.DeviceName.StartsWith("Fake", StringComparison.Ordinal))
        {
            Assert.That(rows.Where(r => r.Inputs == "float"), Has.All.Matches<FusionProbe.Row>(r => r.Refusal == null && r.Proposed == 1 && r.Planned == 1 && r.PlannedEngines == "6"),
                "the stand-in plans its fused engine for every float graph");
            Assert.That(rows.Where(r => r.Inputs == "half"), Has.All.Matches<FusionProbe.Row>(r => r.Refusal == null && r.Proposed == 1 && r.Planned == 0),
                "the stand-in proposes its fused engine for every half graph, which refuses to plan it");
        }
    }
}
