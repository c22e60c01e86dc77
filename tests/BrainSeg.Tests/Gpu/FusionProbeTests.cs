using BrainSeg.Cuda;
using BrainSeg.Engine;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// The probe of cuDNN's runtime fusion: every fused pattern is built as an operation graph in float and half inputs
/// and asked of the heuristics. The stand-in proposes its one fused engine (6) for every graph; it plans float memory
/// but has no half arithmetic, so there every float row plans that engine and every half row proposes it unplanned;
/// a device prints its answer. The data gradient's epilogue is also run once as a graph, against the CPU.
/// </summary>
public sealed class FusionProbeTests : GpuTestBase
{
    [Test]
    public void EveryPatternIsAskedInFloatAndHalf()
    {
        var rows = FusionProbe.Run(Gpu, batch: 4, side: 9);
        foreach (var row in rows) TestContext.Out.WriteLine(row);
        Assert.That(rows, Has.Count.EqualTo(2 * Enum.GetValues<FusedPattern>().Length));
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

    /// <summary>
    /// The data gradient's epilogue: the data gradient da itself, and what the batch-norm backward's reduction would make
    /// of it, Σg and Σg·(norm − mean) per channel with g = da where norm·scale + shift > 0, else 0 (float64, tight).
    /// </summary>
    [Test]
    public void TheDataGradientsEpilogueSumsWhatTheBatchNormBackwardNeeds()
    {
        const int n = 2, c = 3, k = 4, h = 7, w = 6;
        const DType dt = DType.Float64;
        var spec = new Conv2dSpec(Dilation: 2, Padding: 2);
        var dy = Random(dt, n, k, h, w);
        var filter = Random(dt, k, c, 3, 3);
        var norm = Random(dt, n, c, h, w);
        var scale = Random(dt, [c], 0.5, 1.5);
        var shift = Random(dt, [c], -0.3, 0.3);   // about half of norm·scale + shift is cut
        var mean = Random(dt, [c], -0.2, 0.2);
        var da = Output(dt, n, c, h, w);
        var sum = Output(dt, c);
        var productSum = Output(dt, c);

        Cpu.Conv2dBackwardData(dy.C, filter.C, da.C, spec);
        double[] daV = da.C.ToHostDoubles(), normV = norm.C.ToHostDoubles(), scaleV = scale.C.ToHostDoubles(), shiftV = shift.C.ToHostDoubles(),
            meanV = mean.C.ToHostDoubles();
        double[] expectedSum = new double[c], expectedProductSum = new double[c];
        int cut = 0;
        for (var i = 0; i < daV.Length; i++)
        {
            int channel = i / (h * w) % c;
            double g = normV[i] * scaleV[channel] + shiftV[channel] > 0 ? daV[i] : 0;
            cut += g == 0 ? 1 : 0;
            expectedSum[channel] += g;
            expectedProductSum[channel] += g * (normV[i] - meanV[channel]);
        }
        Assert.That(cut, Is.InRange(daV.Length / 10, daV.Length * 9 / 10), "the mask cuts some and keeps some");

        Gpu.Context.MakeCurrent();
        using var graph = new ConvolutionGraph(Gpu.Context.CudnnHandle, ConvolutionDirection.BackwardData, dt, norm.Shape, filter.Shape, dy.Shape,
            spec, Layout, (16, 16, 16), new ConvolutionFusion(GradientReluSums: true));
        ExecutionPlan? plan = null;
        foreach (var candidate in graph.Proposed(16, skipRefused: true))
        {
            try
            {
                plan = graph.Plan(candidate.Config);
                break;
            }
            catch (CudaException)
            {
            }
        }
        if (plan is null) Assert.Ignore("this cuDNN plans no engine for the data gradient with the batch-norm sums in float64 (info --fusion says which types it plans)");
        using (plan)
        {
            using var workspace = Gpu.Empty(new Shape((int)Math.Max(1, plan.WorkspaceBytes / 4 + 1)), DType.Float32);
            static ulong At(Tensor t) => ((CudaStorage)t.Storage).Pointer;
            graph.Execute(plan, new GraphOperands(At(da.G), At(filter.G), At(dy.G), Scale: At(scale.G), Shift: At(shift.G), Sum: At(sum.G),
                Norm: At(norm.G), Mean: At(mean.G), ProductSum: At(productSum.G)), At(workspace));
            Assert.That(da.G.ToHostDoubles(), Is.EqualTo(daV).Within(1e-12), "the data gradient");
            Assert.That(sum.G.ToHostDoubles(), Is.EqualTo(expectedSum).Within(1e-11), "Σg");
            Assert.That(productSum.G.ToHostDoubles(), Is.EqualTo(expectedProductSum).Within(1e-11), "Σg·(norm − mean)");
        }
    }
}
