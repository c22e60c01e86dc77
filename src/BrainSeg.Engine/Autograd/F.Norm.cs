namespace BrainSeg.Engine.Autograd;

public static partial class F
{
    // ---- batch normalisation over (N,H,W) per channel ----

    /// <summary>
    /// Batch normalisation of x: [N,C,H,W] (or [N,C], treated as [N,C,1,1]) with shift β: [C] and optional
    /// scale γ: [C]. Training mode normalises with the batch statistics, differentiates through them (the
    /// op is a function of the whole batch) and updates the running statistics in place; inference mode
    /// uses the running statistics. With <paramref name="relu"/> the result is max(BN(x), 0), equal to
    /// <see cref="Relu"/> applied afterwards, but in one pass and without keeping the un-rectified tensor:
    /// the training backward recomputes the ReLU's mask from x and the saved statistics (no read of the output).
    /// </summary>
    public static Tensor BatchNorm(Tape tape, Tensor x, Tensor? gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        bool training, double momentum, double eps, bool relu = false)
    {
        if (x.Shape.Rank == 2)
        {
            var x4 = Reshape(tape, x, x.Shape[0], x.Shape[1], 1, 1);
            var y4 = BatchNorm(tape, x4, gamma, beta, runningMean, runningVar, training, momentum, eps, relu);
            return Reshape(tape, y4, x.Shape[0], x.Shape[1]);
        }
        if (x.Shape.Rank != 4 || beta.Shape != new Shape(x.Shape.C))
            throw new ArgumentException($"BatchNorm needs x [N,C,H,W] or [N,C] and β [C]; got x {x.Shape}, β {beta.Shape}.");

        var b = tape.Backend;
        var y = tape.Empty(x.Shape, x.DType);
        if (!training)
        {
            b.BatchNormForwardInference(x, gamma, beta, y, runningMean, runningVar, eps, relu);
            if (tape.NeedsGrad(x, gamma, beta))
                tape.Record(y, () => BatchNormInferenceBackward(tape, x, y.Grad!, relu ? y : null, gamma, beta, runningMean, runningVar, eps));
            return y;
        }

        if (x.Numel / x.Shape.C < 2)
            throw new ArgumentException($"BatchNorm in training mode needs more than one value per channel, got {x.Shape}: use a batch of 2 or more, or eval mode.");
        var c = new Shape(x.Shape.C);
        var saveMean = tape.Empty(c, x.DType);
        var saveInvStd = tape.Empty(c, x.DType);
        b.BatchNormForwardTraining(x, gamma, beta, y, runningMean, runningVar, saveMean, saveInvStd, momentum, eps, relu);

        if (tape.NeedsGrad(x, gamma, beta))
            tape.Record(y, () =>
            {
                // One backend call yields all three gradients; buffers that nobody wants are scratch.
                var dx = tape.GradBufferOrScratch(x);
                var dgamma = gamma is null ? null : tape.GradBufferOrScratch(gamma);
                var dbeta = tape.GradBufferOrScratch(beta);
                b.BatchNormBackward(x, y.Grad!, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta, relu);
                tape.CommitGrad(x, dx);
                if (gamma is not null) tape.CommitGrad(gamma, dgamma);
                tape.CommitGrad(beta, dbeta);
            });
        return y;
    }

    // Inference mode is affine per channel: y = γ·(x − m)/√(v + eps) + β, so
    // dx = γ·dy/√(v + eps) (the same op applied to dy with zero mean and shift), dβ = Σ dy, dγ = Σ dy·x̂.
    // Behind a fused ReLU, dy is masked by its output first (rare: only eval-mode gradients get here).
    private static void BatchNormInferenceBackward(Tape tape, Tensor x, Tensor outputGrad, Tensor? reluOutput, Tensor? gamma, Tensor beta,
        Tensor runningMean, Tensor runningVar, double eps)
    {
        var b = tape.Backend;
        using var masked = reluOutput is null ? null : b.Empty(outputGrad.Shape, outputGrad.DType);
        if (masked is not null) b.ReluBackward(reluOutput!, outputGrad, masked);
        var dy = masked ?? outputGrad;
        using var zeros = b.Empty(beta.Shape, beta.DType);
        b.Fill(zeros, 0);
        tape.AccumulateGrad(x, dx => b.BatchNormForwardInference(dy, gamma, zeros, dx, zeros, runningVar, eps));
        tape.AccumulateGrad(beta, dbeta => b.ChannelSum(dy, dbeta));
        if (gamma is not null)
            tape.AccumulateGrad(gamma, dgamma =>
            {
                using var xhat = b.Empty(x.Shape, x.DType);
                using var product = b.Empty(x.Shape, x.DType);
                b.BatchNormForwardInference(x, null, zeros, xhat, runningMean, runningVar, eps);
                b.Multiply(xhat, dy, product);
                b.ChannelSum(product, dgamma);
            });
    }
}
