namespace BrainSeg.Engine.Autograd;

/// <summary>
/// The differentiable ops. Each op runs its forward on the tape's backend now and records its backward
/// right beside it, so one screen shows both halves (llm.c style). Ops take the tape first; the outputs
/// belong to the tape.
/// </summary>
public static partial class F
{
    // ---- convolution: y = x ⋆ w (+ b) ----

    /// <summary>
    /// Stride-1 2-D convolution. x: [N,C,H,W], w: [K,C,R,S], optional bias: [K]; <paramref name="spec"/>
    /// sets dilation and zero padding (default: valid, dilation 1). With <paramref name="relu"/> the output is
    /// max(conv + bias, 0) from the same op (what inference runs for a conv → batch norm → ReLU block once the
    /// batch norm is folded into w and bias).
    /// </summary>
    public static Tensor Conv2d(Tape tape, Tensor x, Tensor w, Tensor? bias = null, Conv2dSpec? spec = null, bool relu = false)
    {
        var s = spec ?? Conv2dSpec.Valid;
        if (x.Shape.Rank != 4 || w.Shape.Rank != 4 || x.Shape.C != w.Shape.C)
            throw new ArgumentException($"Conv2d needs x [N,C,H,W] and w [K,C,R,S] with the same C; got x {x.Shape}, w {w.Shape}.");
        var (oh, ow) = (s.OutputSize(x.Shape.H, w.Shape.H), s.OutputSize(x.Shape.W, w.Shape.W));
        if (oh < 1 || ow < 1)
            throw new ArgumentException($"Conv2d input {x.Shape} is too small for kernel {w.Shape} with dilation {s.Dilation} and padding {s.Padding}.");

        var b = tape.Backend;
        var y = tape.Empty(new Shape(x.Shape.N, w.Shape.N, oh, ow), x.DType);
        b.Conv2dForward(x, w, y, s, bias, relu);

        if (tape.NeedsGrad(x, w, bias))
            tape.Record(y, () =>
            {
                // Behind the ReLU only the outputs that stayed positive pass their gradient on.
                using var masked = relu ? b.Empty(y.Shape, y.DType) : null;
                if (masked is not null) b.ReluBackward(y, y.Grad!, masked);
                var dy = masked ?? y.Grad!;
                tape.AccumulateGrad(x, dx => b.Conv2dBackwardData(dy, w, dx, s, x));
                tape.AccumulateGrad(w, dw => b.Conv2dBackwardFilter(x, dy, dw, s));
                if (bias is not null) tape.AccumulateGrad(bias, db => b.ChannelSum(dy, db));
            });
        return y;
    }

    // ---- fully connected: y = x·wᵀ (+ b) ----

    /// <summary>Fully connected layer. x: [N,In], w: [Out,In] (PyTorch layout), optional bias: [Out]; y: [N,Out].</summary>
    public static Tensor Linear(Tape tape, Tensor x, Tensor w, Tensor? bias = null)
    {
        if (x.Shape.Rank != 2 || w.Shape.Rank != 2 || x.Shape[1] != w.Shape[1])
            throw new ArgumentException($"Linear needs x [N,In] and w [Out,In] with the same In; got x {x.Shape}, w {w.Shape}. Flatten image tensors first.");

        var b = tape.Backend;
        var y = tape.Empty(new Shape(x.Shape[0], w.Shape[0]), x.DType);
        b.Gemm(false, true, 1, x, w, 0, y);
        if (bias is not null) b.AddChannelBias(y, bias);

        if (tape.NeedsGrad(x, w, bias))
            tape.Record(y, () =>
            {
                tape.AccumulateGrad(x, dx => b.Gemm(false, false, 1, y.Grad!, w, 0, dx)); // dx = dy·w
                tape.AccumulateGrad(w, dw => b.Gemm(true, false, 1, y.Grad!, x, 0, dw)); // dw = dyᵀ·x
                if (bias is not null) tape.AccumulateGrad(bias, db => b.ChannelSum(y.Grad!, db));
            });
        return y;
    }
}
