using BrainSeg.Engine;

namespace BrainSeg.Cuda;

// Convolutions with their neighbouring elementwise work fused in by cuDNN's runtime fusion (graph API): the forward's
// bias and ReLU computed as the output is written, instead of a second pass that reads and writes it again. A fused
// graph is used only where it is at least as fast as the plain convolution plus the separate pass, both timed on the
// real tensors once per geometry; where cuDNN plans no engine for it (or fusion is off), the separate pass runs.
public sealed unsafe partial class CudaBackend
{
    /// <summary>
    /// y = conv(x, w) + bias, then ReLU, as one fused pass when that was chosen for this geometry. False when the
    /// convolution and the separate bias/ReLU pass run instead (nothing was queued).
    /// </summary>
    private bool RunFusedForward(ConvPlan plan, DType dt, Tensor x, Tensor w, Tensor y, Conv2dSpec spec, Tensor? bias, bool relu)
    {
        if (!Options.RuntimeFusion || Options.LegacyConvolutionSearch) return false;
        var fusion = new ConvolutionFusion(Bias: bias is not null, Relu: relu);
        var operands = new GraphOperands(Ptr(x), Ptr(w), Ptr(y), Bias: Ptr(bias));
        var alignment = (Alignment(operands.X), Alignment(operands.W), Alignment(operands.Y));
        int perChannel = bias is null ? 16 : Alignment(operands.Bias);
        if (plan.Fused.TryGetValue(fusion, out var chosen) && chosen is not null && !chosen.Fits(alignment, perChannel))
        {
            chosen.Dispose();  // a less aligned view than the plan was made for: choose again for this alignment
            plan.Fused.Remove(fusion);
        }
        if (!plan.Fused.ContainsKey(fusion))
        {
            plan.Fused[fusion] = chosen = ChooseFusedForward(plan, fusion, dt, x, w, y, spec, bias, relu, alignment, perChannel, operands);
            _ctx.Counters.Enter(nameof(Conv2dForward));  // the choice ran other ops (a scratch tensor, its fill)
        }
        if (chosen is null) return false;
        var workspace = _workspace.Ensure(chosen.Plan.WorkspaceBytes);
        _ctx.Counters.Launch();
        chosen.Graph.Execute(chosen.Plan, operands, workspace);
        return true;
    }

    /// <summary>
    /// The fused forward pass for this geometry, or null where the plain convolution and the separate pass are at least as
    /// fast or cuDNN cannot run the fused graph; either way the report says which and why.
    /// </summary>
    private GraphPass? ChooseFusedForward(ConvPlan plan, ConvolutionFusion fusion, DType dt, Tensor x, Tensor w, Tensor y, Conv2dSpec spec,
        Tensor? bias, bool relu, (int, int, int) alignment, int perChannel, in GraphOperands operands)
    {
        var name = PassName(ConvolutionDirection.Forward, fusion);
        var unfused = GraphPassFor(plan, ConvolutionDirection.Forward, dt, x, w, y, spec);
        if (unfused is null) return null;  // the legacy API serves this convolution (reported): nothing to fuse into
        GraphPass fused;
        try
        {
            fused = ChooseEngine(plan, ConvolutionDirection.Forward, dt, x.Shape, w.Shape, y.Shape, spec, alignment, operands, fusion, perChannel);
        }
        catch (CudaException e)
        {
            Report(new(name, plan.Key.ToString(), "separate", "-", "", 0, double.NaN, [], $"no fused engine: {e.Message}"));
            return null;
        }
        double separate = unfused.Milliseconds + TimeSeparatePass(dt, y, bias, relu);
        if (fused.Milliseconds <= separate) return fused;
        Report(new(name, plan.Key.ToString(), "separate", "-", "", 0, separate, [],
            $"the fused engine took {fused.Milliseconds:G4} ms, the convolution and the separate pass {separate:G4} ms"));
        fused.Dispose();
        return null;
    }

    /// <summary>The bias/ReLU pass's time on a scratch tensor shaped as y (y itself keeps its values).</summary>
    private double TimeSeparatePass(DType dt, Tensor y, Tensor? bias, bool relu)
    {
        _ctx.RefuseWhileCapturing("timing a fused convolution against its separate pass (the host waits for it)");
        using var scratch = Empty(y.Shape, dt);
        Fill(scratch, 0);
        return TimeRuns(() => BiasAndRelu("Conv2dForward", dt, scratch, bias, y.Shape.C, (long)y.Shape.H * y.Shape.W, relu));
    }
}
