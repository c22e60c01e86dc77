namespace BrainSeg.Engine.Autograd;

public static partial class F
{
    // ---- max pooling: y = the largest value of each window; the gradient goes to the winner ----

    /// <summary>Valid max pooling with a square <paramref name="window"/> and <paramref name="stride"/>. x: [N,C,H,W].</summary>
    public static Tensor MaxPool2d(Tape tape, Tensor x, int window, int stride)
    {
        if (x.Shape.Rank != 4 || window < 1 || stride < 1 || x.Shape.H < window || x.Shape.W < window)
            throw new ArgumentException($"MaxPool2d with window {window} and stride {stride} cannot pool {x.Shape}: need [N,C,H,W] with H, W ≥ window ≥ 1, stride ≥ 1.");
        var b = tape.Backend;
        var shape = new Shape(x.Shape.N, x.Shape.C, (x.Shape.H - window) / stride + 1, (x.Shape.W - window) / stride + 1);
        var y = tape.Empty(shape, x.DType);
        var argmax = tape.Empty(shape, DType.Int32);
        b.MaxPoolForward(x, y, argmax, window, stride);
        if (tape.NeedsGrad(x))
            tape.Record(y, () => tape.AccumulateGrad(x, dx => b.MaxPoolBackward(y.Grad!, argmax, dx)));
        return y;
    }
}
