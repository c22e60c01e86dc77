namespace BrainSeg.Engine.Autograd;

public static partial class F
{
    // ---- ReLU: y = max(x, 0) ----

    public static Tensor Relu(Tape tape, Tensor x)
    {
        var b = tape.Backend;
        var y = tape.Empty(x.Shape, x.DType);
        b.ReluForward(x, y);
        if (tape.NeedsGrad(x))
            tape.Record(y, () => tape.AccumulateGrad(x, dx => b.ReluBackward(y, y.Grad!, dx)));
        return y;
    }

    // ---- dropout: y = x ⊙ mask, mask = 1/(1 − p) where kept, 0 where dropped ----

    /// <summary>
    /// Inverted dropout with probability <paramref name="p"/>; the mask comes from <paramref name="random"/>
    /// (its offset advances by x.Numel). Returns x itself when p = 0.
    /// </summary>
    public static Tensor Dropout(Tape tape, Tensor x, double p, RandomStream random)
    {
        if (!(p >= 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1).");
        if (p == 0) return x;
        // The mask is regenerated from its Philox offset in the backward instead of being stored.
        ulong seed = random.Seed, offset = random.Take(x.Numel);
        var b = tape.Backend;
        var y = tape.Empty(x.Shape, x.DType);
        b.DropoutMultiply(x, y, p, seed, offset);
        if (tape.NeedsGrad(x))
            tape.Record(y, () => tape.AccumulateGrad(x, dx => b.DropoutMultiply(y.Grad!, dx, p, seed, offset)));
        return y;
    }

    /// <summary>Dropout with a given mask (same shape as x): y = x ⊙ mask. Gradient checks use it with a fixed mask.</summary>
    public static Tensor DropoutWithMask(Tape tape, Tensor x, Tensor mask)
    {
        if (mask.Shape != x.Shape) throw new ArgumentException($"Dropout mask {mask.Shape} does not match input {x.Shape}.");
        var b = tape.Backend;
        var y = tape.Empty(x.Shape, x.DType);
        b.Multiply(x, mask, y);
        if (tape.NeedsGrad(x))
            tape.Record(y, () => tape.AccumulateGrad(x, dx => b.Multiply(y.Grad!, mask, dx)));
        return y;
    }
}
