namespace BrainSeg.Engine.Autograd;

public static partial class F
{
    // ---- softmax cross-entropy: loss = −(1/M)·Σ target·log softmax(logits), M = voxels × batch ----

    /// <summary>
    /// Mean per-voxel cross-entropy between softmax(logits) and <paramref name="target"/> (class
    /// probabilities per voxel, one-hot for hard labels; a constant). logits, target: [N,C,H,W] or [N,C].
    /// Returns the loss as a [1] tensor; its backward scales by the loss's upstream gradient.
    /// </summary>
    public static Tensor SoftmaxCrossEntropy(Tape tape, Tensor logits, Tensor target)
    {
        if (logits.Shape != target.Shape)
            throw new ArgumentException($"SoftmaxCrossEntropy target {target.Shape} does not match logits {logits.Shape}: one-hot encode labels with F.OneHot.");
        if (tape.IsRecording && target.RequiresGrad)
            throw new ArgumentException("SoftmaxCrossEntropy treats the target as a constant, but it requires a gradient: pass a target that does not.");
        var b = tape.Backend;
        var probs = tape.Empty(logits.Shape, logits.DType);
        var loss = tape.Empty(new Shape(1), logits.DType);
        b.SoftmaxCrossEntropyForward(logits, target, probs, loss);
        if (tape.NeedsGrad(logits))
            tape.Record(loss, () => tape.AccumulateGrad(logits, dlogits => b.SoftmaxCrossEntropyBackward(probs, target, loss.Grad!, dlogits)));
        return loss;
    }

    // ---- softmax over channels ----

    /// <summary>probs = softmax over channels, per voxel. logits: [N,C,H,W] or [N,C].</summary>
    public static Tensor Softmax(Tape tape, Tensor logits)
    {
        var b = tape.Backend;
        var probs = tape.Empty(logits.Shape, logits.DType);
        b.SoftmaxForward(logits, probs);
        if (tape.NeedsGrad(logits))
            tape.Record(probs, () => tape.AccumulateGrad(logits, dlogits => SoftmaxBackward(b, probs, probs.Grad!, dlogits)));
        return probs;
    }

    // dlogits = p ⊙ (dp − Σ_c p·dp). The cross-entropy backward computes dloss·(p·Σ_c t − t)/M for any t;
    // with t = p ⊙ dp and dloss = −M it is exactly this, so softmax needs no op of its own.
    private static void SoftmaxBackward(IBackend b, Tensor probs, Tensor dprobs, Tensor dlogits)
    {
        using var t = b.Empty(probs.Shape, probs.DType);
        using var dloss = b.Empty(new Shape(1), probs.DType);
        b.Multiply(probs, dprobs, t);
        b.Fill(dloss, -(double)(probs.Numel / probs.Shape[1]));
        b.SoftmaxCrossEntropyBackward(probs, t, dloss, dlogits);
    }

    // ---- not differentiable: inference and label encoding ----

    /// <summary>labels [N,H,W] (Int32) = the most probable channel of x: [N,C,H,W]; ties go to the lowest channel.</summary>
    public static Tensor ArgmaxChannels(Tape tape, Tensor x)
    {
        if (x.Shape.Rank != 4) throw new ArgumentException($"ArgmaxChannels needs [N,C,H,W], got {x.Shape}.");
        var labels = tape.Empty(new Shape(x.Shape.N, x.Shape.H, x.Shape.W), DType.Int32);
        tape.Backend.ArgmaxChannels(x, labels);
        return labels;
    }

    /// <summary>One-hot encoding [N,C,H,W] in <paramref name="dtype"/> of Int32 labels [N,H,W] with values in [0, classes).</summary>
    public static Tensor OneHot(Tape tape, Tensor labels, int classes, DType dtype)
    {
        if (labels.Shape.Rank != 3 || labels.DType != DType.Int32)
            throw new ArgumentException($"OneHot needs Int32 labels [N,H,W], got {labels.Describe()}.");
        var y = tape.Empty(new Shape(labels.Shape[0], classes, labels.Shape[1], labels.Shape[2]), dtype);
        tape.Backend.OneHot(labels, y);
        return y;
    }
}
