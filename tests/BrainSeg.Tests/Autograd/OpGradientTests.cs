using BrainSeg.Engine.Checking;
using BrainSeg.Engine.Cpu;
using NUnit.Framework;

namespace BrainSeg.Tests.Autograd;

/// <summary>
/// Every differentiable op against central finite differences in float64 on the CPU: the full Jacobian,
/// relative error ≤ 1e-6 (norm-wise over the Jacobian). These are the same checks `brainseg gradcheck` runs.
/// </summary>
public class OpGradientTests
{
    private static IEnumerable<TestCaseData> Cases() =>
        OpGradChecks.Cases.Select(c => new TestCaseData(c).SetArgDisplayNames(c.Name));

    [TestCaseSource(nameof(Cases))]
    public void AnalyticGradientMatchesCentralDifferences(GradCheckCase check)
    {
        var result = check.Run(CpuBackend.Instance);
        Assert.That(result.Tolerance, Is.EqualTo(1e-6), "tolerance: relative error 1e-6 (float64)");
        Assert.That(result.Mode, Is.EqualTo(GradCheckMode.FullJacobian));
        Assert.That(result.Passed, Is.True, result.ToString());
        TestContext.Out.WriteLine(result);
    }
}
