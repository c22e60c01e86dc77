using BrainSeg.Engine;

namespace BrainSeg.Cuda;

// Convolutions with their neighbouring elementwise work fused in by cuDNN's runtime fusion (graph API), so that an
// activation crosses memory once instead of two or three times:
// - the forward's bias and ReLU computed as the output is written (inference's folded batch norms, the output layer);
// - a training batch norm's rectified output max(x·scale + shift, 0) is not written by the batch norm (channels-last):
//   it stays deferred (its input and coefficients kept, and no memory of its own) until something reads it. The next
//   convolution's forward and filter-gradient passes read the batch norm's input through a fused prologue instead; any
//   other reader gets it written first (CudaBackend.Ptr), into a block rented then, as the batch norm would have;
// - the backward of such a batch norm: the data gradient that flows into it (the next convolution's data-gradient pass)
//   also makes, as it is written, the two per-channel sums its backward needs, so that backward is one pass, not two.
// A fused graph is used only where it is at least as fast as the plain convolution plus the separate pass, both timed
// on the real tensors once per geometry; where cuDNN plans no engine for it (or fusion is off) the separate pass runs.
public sealed unsafe partial class CudaBackend
{
    /// <summary>A batch norm's rectified output not yet written: max(source·scale + shift, 0) per channel, channels-last.</summary>
    private sealed class DeferredNormRelu
    {
        public required CudaStorage Output, Input;
        public required ulong InputPointer, Mean;   // the batch norm's input and its saved mean
        public required DeviceBuffer Coefficients;   // scale[C], then shift[C]
        public required DType DType;
        public required int Channels, Inner, Planes;
        public DeviceBuffer HeldInput;               // the input's block once the input itself was freed

        public long OutputBytes => (long)Planes * Inner * DType.SizeInBytes();
        public ulong Scale => Coefficients.Pointer;
        public ulong Shift => Coefficients.Pointer + (ulong)(Channels * DType.SizeInBytes());
    }

    /// <summary>The batch-norm backward's sums of a data gradient, made by the pass that wrote it: Σg[C], then Σg·(x − mean)[C].</summary>
    private sealed class GradientSums
    {
        public required CudaStorage Norm;   // the batch norm's input x
        public required ulong Mean;
        public required DeviceBuffer Sums;
    }

    private readonly Dictionary<CudaStorage, DeferredNormRelu> _deferredByOutput = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<CudaStorage, DeferredNormRelu> _deferredByInput = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<CudaStorage, GradientSums> _sumsByGradient = new(ReferenceEqualityComparer.Instance);

    /// <summary>Runtime fusion is on and the graph API chooses the engines (the legacy search has no fused graphs).</summary>
    private bool FusionEnabled => Options.RuntimeFusion && !Options.LegacyConvolutionSearch;

    /// <summary>Whether a training batch norm + ReLU from x into y may leave y unwritten for a fused reader.</summary>
    private bool MayDefer(Tensor x, Tensor y, bool relu) =>
        relu && FusionEnabled && x.Shape.Rank == 4 && y.Layout == TensorLayout.Nhwc
        && x.Storage is CudaStorage { IsRoot: true } input && y.Storage is CudaStorage { IsRoot: true } output
        && !_deferredByInput.ContainsKey(input) && !_deferredByOutput.ContainsKey(output);

    /// <summary>Leaves y = max(x·scale + shift, 0) unwritten; <paramref name="coefficients"/> (scale, shift) become the deferral's.</summary>
    private void Defer(Tensor x, Tensor y, Tensor saveMean, DeviceBuffer coefficients, DType dt, int channels, int inner, int planes)
    {
        var d = new DeferredNormRelu
        {
            Output = (CudaStorage)y.Storage, Input = (CudaStorage)x.Storage, InputPointer = ((CudaStorage)x.Storage).Pointer, Mean = RawPtr(saveMean),
            Coefficients = coefficients, DType = dt, Channels = channels, Inner = inner, Planes = planes,
        };
        _deferredByOutput[d.Output] = d;
        _deferredByInput[d.Input] = d;
        // Until it is written the output needs no memory: with fused readers it never does.
        TakeMemory(d);
    }

    /// <summary>Returns a deferred output's block to the pool (its contents are deferred again).</summary>
    private void TakeMemory(DeferredNormRelu d)
    {
        var unused = d.Output.Detach();
        if (unused.Bytes > 0) _ctx.Pool.Return(unused);
    }

    /// <summary>Gives a deferred output a block of its own, if it has none yet (nothing is written).</summary>
    private void GiveMemory(DeferredNormRelu d)
    {
        if (d.Output.Pointer == 0 && d.Output.ByteLength > 0) d.Output.Attach(_ctx.Pool.Rent(d.Output.ByteLength));
    }

    /// <summary>The deferral whose output <paramref name="t"/> is, or null when t is written.</summary>
    private DeferredNormRelu? Deferred(Tensor t) =>
        _deferredByOutput.Count > 0 && t.Storage is CudaStorage s && _deferredByOutput.TryGetValue(s.Root, out var d) ? d : null;

    /// <summary>Writes a deferred output now, as the batch norm would have (one pass: the input read, the output written).</summary>
    private void Write(DeferredNormRelu d)
    {
        Model(2.0 * d.OutputBytes, d.OutputBytes / d.DType.SizeInBytes() * 4.0);
        GiveMemory(d);
        ApplyDeferred(d);
        Forget(d);
    }

    /// <summary>The batch norm's pass that a deferral stands for, into the output's block.</summary>
    private void ApplyDeferred(DeferredNormRelu d) =>
        ApplyAffine(d.DType, d.InputPointer, d.Coefficients.Pointer, d.Output.Pointer, d.Channels, d.Inner, d.Planes, fused: 1, nhwc: 1);

    private void Forget(DeferredNormRelu d)
    {
        _deferredByOutput.Remove(d.Output);
        _deferredByInput.Remove(d.Input);
        _ctx.Pool.Return(d.Coefficients);
        if (d.HeldInput.Bytes > 0) _ctx.Pool.Return(d.HeldInput);
    }

    /// <summary>
    /// Called as a block is freed: a deferred output freed unread is forgotten (nothing to write); the input of a deferred
    /// output is kept (true: the caller must not return it to the pool) until that output is written or freed.
    /// </summary>
    internal bool KeepsFreedBlock(CudaStorage storage, DeviceBuffer buffer)
    {
        DropSums(storage);
        if (_deferredByOutput.Count == 0) return false;
        if (_deferredByOutput.TryGetValue(storage, out var unread))
        {
            Forget(unread);
            return false;
        }
        if (!_deferredByInput.TryGetValue(storage, out var d)) return false;
        d.HeldInput = buffer;
        return true;
    }

    /// <summary>
    /// One pass of the convolution with what is fused into it: the forward's bias and ReLU, a deferred batch norm's
    /// rectified input read through the prologue (forward and filter gradient), or, for the data gradient of such an input
    /// (<paramref name="gradientOf"/>), that batch norm's backward sums, when that was chosen for this geometry. x, w, y as
    /// the pass names them (for the data gradient, x is dx and y is dy; for the filter gradient, w is dw). False when
    /// nothing is fused here: then the caller runs the plain pass and any separate one (x, if deferred, is written by the
    /// caller's Ptr).
    /// </summary>
    private bool RunFused(ConvPlan plan, ConvolutionDirection direction, DType dt, Tensor x, Tensor w, Tensor y, Conv2dSpec spec,
        Tensor? bias = null, bool relu = false, DeferredNormRelu? gradientOf = null)
    {
        if (!FusionEnabled) return false;
        var input = gradientOf ?? Deferred(x);
        var fusion = new ConvolutionFusion(InputNormRelu: input is not null && gradientOf is null, Bias: bias is not null, Relu: relu,
            GradientReluSums: gradientOf is not null);
        if (fusion.IsNone) return false;
        var sums = gradientOf is null ? default : _ctx.Pool.Rent(2L * gradientOf.Channels * dt.SizeInBytes());
        var operands = Operands(x, w, y, bias, input, fusion, sums.Pointer);
        var alignment = (Alignment(operands.X), Alignment(operands.W), Alignment(operands.Y));
        int perChannel = PerChannelAlignment(operands);
        var key = (direction, fusion);
        if (plan.Fused.TryGetValue(key, out var chosen) && chosen is not null && !chosen.Fits(alignment, perChannel))
        {
            chosen.Dispose();  // a less aligned view than the plan was made for: choose again for this alignment
            plan.Fused.Remove(key);
        }
        if (!plan.Fused.ContainsKey(key))
        {
            plan.Fused[key] = ChooseFused(plan, direction, fusion, dt, x, w, y, spec, input, bias, relu, alignment, perChannel, operands);
            _ctx.Counters.Enter(direction switch
            {
                ConvolutionDirection.Forward => nameof(Conv2dForward),
                ConvolutionDirection.BackwardData => nameof(Conv2dBackwardData),
                _ => nameof(Conv2dBackwardFilter),
            });
            chosen = plan.Fused[key];
        }
        if (chosen is null)
        {
            if (gradientOf is not null) _ctx.Pool.Return(sums);
            return false;
        }
        var workspace = _workspace.Ensure(chosen.Plan.WorkspaceBytes);
        _ctx.Counters.Launch();
        chosen.Graph.Execute(chosen.Plan, operands, workspace);
        if (gradientOf is not null)
        {
            // The epilogue also reads the batch norm's input; the sums wait for that batch norm's backward (BatchNormBackward).
            Model(gradientOf.OutputBytes, gradientOf.OutputBytes / dt.SizeInBytes() * 6.0);
            var gradient = (CudaStorage)x.Storage;
            DropSums(gradient);
            _sumsByGradient[gradient] = new GradientSums { Norm = gradientOf.Input, Mean = gradientOf.Mean, Sums = sums };
        }
        return true;
    }

    /// <summary>
    /// The pointers of a fused pass: a deferred input is read from the batch norm's input and coefficients; the data
    /// gradient's sums go to <paramref name="sums"/> (Σg, then Σg·(x − mean)).
    /// </summary>
    private static GraphOperands Operands(Tensor x, Tensor w, Tensor y, Tensor? bias, DeferredNormRelu? input, ConvolutionFusion fusion, ulong sums) =>
        fusion.GradientReluSums
            ? new(RawPtr(x), RawPtr(w), RawPtr(y), Scale: input!.Scale, Shift: input.Shift, Norm: input.InputPointer, Mean: input.Mean,
                Sum: sums, ProductSum: sums + (ulong)(input.Channels * input.DType.SizeInBytes()))
            : new(input?.InputPointer ?? RawPtr(x), RawPtr(w), RawPtr(y), Bias: RawPtr(bias), Scale: input?.Scale ?? 0, Shift: input?.Shift ?? 0);

    private static int PerChannelAlignment(in GraphOperands o) =>
        new[] { o.Bias, o.Scale, o.Shift, o.Mean, o.Sum, o.ProductSum }.Where(p => p != 0).Select(Alignment).DefaultIfEmpty(16).Min();

    /// <summary>
    /// The sums the data-gradient pass made for the backward of the batch norm over <paramref name="x"/> (saved mean at
    /// <paramref name="saveMean"/>), if <paramref name="dy"/> is that gradient unchanged since; the caller returns the block.
    /// </summary>
    private DeviceBuffer? TakeSums(Tensor dy, Tensor x, Tensor saveMean)
    {
        if (_sumsByGradient.Count == 0 || dy.Storage is not CudaStorage { IsRoot: true } gradient
            || !_sumsByGradient.Remove(gradient, out var s)) return null;
        if (x.Storage is CudaStorage norm && ReferenceEquals(norm.Root, s.Norm) && s.Mean == RawPtr(saveMean)) return s.Sums;
        _ctx.Pool.Return(s.Sums);
        return null;
    }

    /// <summary>Forgets the sums made with a gradient that is now touched or freed (they describe it no longer).</summary>
    private void DropSums(CudaStorage gradient)
    {
        if (_sumsByGradient.Count > 0 && _sumsByGradient.Remove(gradient.Root, out var s)) _ctx.Pool.Return(s.Sums);
    }

    /// <summary>
    /// The fused pass for this geometry, or null where the plain pass and the separate ones are at least as fast or cuDNN
    /// cannot run the fused graph; either way the report says which and why. A deferred input is written for the timing of
    /// the pass that writes it, but stays deferred, so this call computes what every later one will. For the data
    /// gradient's sums, that same pass stands for the batch-norm backward's separate reduction: each moves two tensors of
    /// the input's size once.
    /// </summary>
    private GraphPass? ChooseFused(ConvPlan plan, ConvolutionDirection direction, ConvolutionFusion fusion, DType dt, Tensor x, Tensor w, Tensor y,
        Conv2dSpec spec, DeferredNormRelu? input, Tensor? bias, bool relu, (int, int, int) alignment, int perChannel, in GraphOperands operands)
    {
        var name = PassName(direction, fusion);
        if (plan.Legacy[(int)direction]) return null;  // the legacy API serves this convolution
        GraphPass fused;
        try
        {
            fused = ChooseEngine(plan, direction, dt, x.Shape, w.Shape, y.Shape, spec, alignment, operands, fusion, perChannel);
        }
        catch (CudaException e)
        {
            Report(new(name, plan.Key.ToString(), "separate", "-", "", 0, double.NaN, [], $"no fused engine: {e.Message}"));
            return null;
        }
        _ctx.RefuseWhileCapturing("timing a fused convolution against its separate passes (the host waits for it)");
        double passes = 0;
        if (input is not null)
        {
            GiveMemory(input);  // written by the timed pass below, for the plain pass's timing; it stays deferred
            passes += TimeRuns(() => ApplyDeferred(input));
        }
        var unfused = GraphPassFor(plan, direction, dt, x, w, y, spec);
        if (input is not null) TakeMemory(input);
        // Timed in place: whichever pass is chosen writes all of y afterwards, and no scratch of y's size adds to the peak.
        if (bias is not null || relu)
            passes += TimeRuns(() => BiasAndRelu("Conv2dForward", dt, y, bias, y.Shape.C, (long)y.Shape.H * y.Shape.W, relu));
        if (unfused is null)
        {
            fused.Dispose();
            return null;
        }
        double separate = unfused.Milliseconds + passes;
        if (fused.Milliseconds <= separate) return fused;
        Report(new(name, plan.Key.ToString(), "separate", "-", "", 0, separate, [],
            $"the fused engine took {fused.Milliseconds:G4} ms, the plain pass and the separate ones {separate:G4} ms"));
        fused.Dispose();
        return null;
    }
}
