using BrainSeg.Engine;
using BrainSeg.Engine.Checking;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// The gradient check of every differentiable op (the cases of `brainseg gradcheck`) on the GPU, in float64, in both
/// memory orders: the backward passes of the device's kernels against central finite differences of its forward.
/// </summary>
[TestFixture(TensorLayout.Nhwc)]
[TestFixture(TensorLayout.Nchw)]
public sealed class GpuGradientTests(TensorLayout layout) : GpuTestBase
{
    protected override TensorLayout Layout => layout;

    private static IEnumerable<TestCaseData> Cases() =>
        OpGradChecks.Cases.Select(c => new TestCaseData(c).SetArgDisplayNames(c.Name));

    [TestCaseSource(nameof(Cases))]
    public void AnalyticGradientMatchesCentralDifferences(GradCheckCase check)
    {
        var result = check.Run(Gpu);
        Assert.That(result.Passed, Is.True, result.ToString());
    }
}
