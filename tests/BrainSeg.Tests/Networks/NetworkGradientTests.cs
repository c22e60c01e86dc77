using BrainSeg.Engine.Checking;
using BrainSeg.Engine.Cpu;
using BrainSeg.Seg.Networks;
using NUnit.Framework;

namespace BrainSeg.Tests.Networks;

/// <summary>
/// Each whole network with its cross-entropy loss against central differences in float64 (C = 3, batch 2,
/// training mode: batch statistics, fixed dropout masks), along random directions; relative error ≤ 1e-6.
/// </summary>
public class NetworkGradientTests
{
    private static IEnumerable<TestCaseData> Cases() =>
        GradCheckSuite.NetworkCases.Select(c => new TestCaseData(c).SetArgDisplayNames(c.Name));

    [TestCaseSource(nameof(Cases))]
    public void WholeNetworkGradientMatchesCentralDifferences(GradCheckCase check)
    {
        var result = check.Run(CpuBackend.Instance);
        TestContext.Out.WriteLine(result);
        Assert.That(result.Tolerance, Is.EqualTo(1e-6), "tolerance: relative error 1e-6 (float64)");
        Assert.That(result.Mode, Is.EqualTo(GradCheckMode.RandomDirections));
        Assert.That(result.Inputs.Select(i => i.Name), Does.Contain("parameters").And.Contain("image"));
        Assert.That(result.Passed, Is.True, result.ToString());
    }
}
