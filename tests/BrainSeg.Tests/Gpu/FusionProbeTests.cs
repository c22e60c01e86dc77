using BrainSeg.Cuda;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// The probe of cuDNN's runtime fusion: every fused pattern is built as an operation graph in float and half inputs
/// and asked of the heuristics. The stand-in accepts the graphs (it checks their required attributes) but has no
/// fused engine, so there every row must say the graph was built and no engine planned; a device prints its answer.
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
            Assert.That(rows, Has.All.Matches<FusionProbe.Row>(r => r.Refusal == null && r.Proposed == 0),
                "the stand-in builds every fused graph and proposes no engine for it");
    }
}
