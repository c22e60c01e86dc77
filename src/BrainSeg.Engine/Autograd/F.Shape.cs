namespace BrainSeg.Engine.Autograd;

public static partial class F
{
    // ---- concatenation along channels; its adjoint splits ----

    /// <summary>y = [a, b] along channels. a: [N,Ca,H,W], b: [N,Cb,H,W].</summary>
    public static Tensor ConcatChannels(Tape tape, Tensor a, Tensor b)
    {
        if (a.Shape.Rank != 4 || b.Shape.Rank != 4 || a.Shape.N != b.Shape.N || a.Shape.H != b.Shape.H || a.Shape.W != b.Shape.W)
            throw new ArgumentException($"ConcatChannels needs [N,C,H,W] tensors equal except in C; got {a.Shape} and {b.Shape}.");
        var be = tape.Backend;
        var y = tape.Empty(new Shape(a.Shape.N, a.Shape.C + b.Shape.C, a.Shape.H, a.Shape.W), a.DType);
        be.ConcatChannels(a, b, y);
        if (tape.NeedsGrad(a, b))
            tape.Record(y, () =>
            {
                var (da, db) = (tape.GradBuffer(a), tape.GradBuffer(b));
                be.SplitChannels(y.Grad!, da, db);
                tape.CommitGrad(a, da);
                tape.CommitGrad(b, db);
            });
        return y;
    }

    // ---- center crop and center pad: adjoints of each other ----

    /// <summary>The central <paramref name="height"/>×<paramref name="width"/> window of x: [N,C,H,W].</summary>
    public static Tensor CenterCrop(Tape tape, Tensor x, int height, int width)
    {
        if (x.Shape.Rank != 4 || height < 1 || width < 1 || height > x.Shape.H || width > x.Shape.W)
            throw new ArgumentException($"CenterCrop to {height}×{width} needs an [N,C,H,W] input at least that large, got {x.Shape}.");
        var b = tape.Backend;
        var y = tape.Empty(new Shape(x.Shape.N, x.Shape.C, height, width), x.DType);
        b.CenterCrop(x, y);
        if (tape.NeedsGrad(x))
            tape.Record(y, () => tape.AccumulateGrad(x, dx => b.CenterPad(y.Grad!, dx)));
        return y;
    }

    /// <summary>x: [N,C,H,W] placed in the centre of a zero field of <paramref name="height"/>×<paramref name="width"/>.</summary>
    public static Tensor CenterPad(Tape tape, Tensor x, int height, int width)
    {
        if (x.Shape.Rank != 4 || height < x.Shape.H || width < x.Shape.W)
            throw new ArgumentException($"CenterPad to {height}×{width} needs an [N,C,H,W] input no larger than that, got {x.Shape}.");
        var b = tape.Backend;
        var y = tape.Empty(new Shape(x.Shape.N, x.Shape.C, height, width), x.DType);
        b.CenterPad(x, y);
        if (tape.NeedsGrad(x))
            tape.Record(y, () => tape.AccumulateGrad(x, dx => b.CenterCrop(y.Grad!, dx)));
        return y;
    }

    // ---- reshape: a view; the gradient is the upstream gradient with the input's shape ----

    /// <summary>
    /// x with another shape of the same element count: a view, or, for a channels-last x (whose memory is not in
    /// NCHW order), a copy in NCHW order.
    /// </summary>
    public static Tensor Reshape(Tape tape, Tensor x, params int[] shape)
    {
        if (x.IsChannelsLast)
        {
            var b = tape.Backend;
            var copy = tape.Empty(new Shape(shape), x.DType);
            b.CopyReshaped(x, copy);
            if (tape.NeedsGrad(x)) tape.Record(copy, () => tape.AccumulateGrad(x, dx => b.CopyReshaped(copy.Grad!, dx)));
            return copy;
        }
        var y = tape.Own(x.Reshape(shape));
        if (tape.NeedsGrad(x))
            tape.Record(y, () => tape.AccumulateGrad(x, dx =>
            {
                using var dxView = dx.Reshape(shape);
                tape.Backend.Copy(y.Grad!, dxView);
            }));
        return y;
    }

    // ---- batch concatenation: two block copies; the gradient is the upstream gradient's two parts ----

    /// <summary>[a; b] along the leading (batch) axis, in either memory order.</summary>
    public static Tensor ConcatBatch(Tape tape, Tensor a, Tensor b)
    {
        var dims = a.Shape.ToArray();
        if (dims.Length == 0) throw new ArgumentException($"ConcatBatch needs a batch axis, got {a.Shape}.");
        int na = a.Shape[0], nb = b.Shape.Rank > 0 ? b.Shape[0] : 0;
        dims[0] = na + nb;
        var backend = tape.Backend;
        var y = tape.Empty(new Shape(dims), a.DType);
        backend.CopyBatch(a, 0, y, 0, na);
        backend.CopyBatch(b, 0, y, na, nb);
        if (tape.NeedsGrad(a, b))
            tape.Record(y, () =>
            {
                tape.AccumulateGrad(a, da => backend.CopyBatch(y.Grad!, 0, da, 0, na));
                tape.AccumulateGrad(b, db => backend.CopyBatch(y.Grad!, na, db, 0, nb));
            });
        return y;
    }

    /// <summary>[N, …] → [N, product of the rest].</summary>
    public static Tensor Flatten(Tape tape, Tensor x) => Reshape(tape, x, x.Shape[0], (int)(x.Numel / x.Shape[0]));
}
