using BrainSeg.Engine.Autograd;

namespace BrainSeg.Engine.Nn;

/// <summary>
/// A convolution with the inference-mode batch norm after it folded in: y = x ⋆ w' + b' (then ReLU), with
/// w'[k] = w[k]·s[k], b'[k] = (bias[k] − μ[k])·s[k] + β[k] and s[k] = γ[k]/√(σ²[k] + eps) from the running
/// statistics. One op writes the activation once, where convolution, batch norm and ReLU were three passes;
/// the function is the same up to rounding (the fold itself is computed in double).
/// </summary>
public sealed class FoldedConv2d : Layer
{
    private readonly string _kind;

    internal FoldedConv2d(Tensor weight, Tensor? bias, Conv2dSpec spec, bool relu, string kind)
    {
        (Weight, Spec, Relu, _kind) = (AddBuffer("weight", weight), spec, relu, kind);
        if (bias is not null) Bias = AddBuffer("bias", bias);
    }

    public Tensor Weight { get; }
    public Tensor? Bias { get; }
    public Conv2dSpec Spec { get; }
    public bool Relu { get; }

    public override string Kind => _kind;
    public override Tensor Forward(Tape tape, Tensor x) => F.Conv2d(tape, x, Weight, Bias, Spec, Relu);

    public override Shape OutputShape(Shape input) =>
        new(input[0], Weight.Shape[0], Spec.OutputSize(input[2], Weight.Shape[2]), Spec.OutputSize(input[3], Weight.Shape[3]));
}

/// <summary>Turns a trained network into the layers inference computes.</summary>
public static class Folding
{
    /// <summary>
    /// The layers of <paramref name="network"/> (nested sequences flattened) as inference computes them: each
    /// <see cref="Conv2d"/> with the <see cref="BatchNorm2d"/> and ReLU after it as one <see cref="FoldedConv2d"/>;
    /// dropout, the identity in inference, left out. The result owns new tensors holding the parameters as they are
    /// now: fold again after more training or a recalibration of the running statistics. Throws
    /// <see cref="NotSupportedException"/> for a layer it cannot fold (anything but a convolution, the batch norm and ReLU
    /// right after one, and dropout).
    /// </summary>
    public static Sequential ForInference(Sequential network)
    {
        var layers = Flatten(network).ToList();
        var folded = new Sequential();
        try
        {
            for (var i = 0; i < layers.Count;)
            {
                var (name, layer) = layers[i++];
                switch (layer)
                {
                    case Dropout:
                        continue;
                    case Conv2d conv:
                        var norm = i < layers.Count ? layers[i].Layer as BatchNorm2d : null;
                        if (norm is not null) i++;
                        var relu = norm?.FusedRelu == true;
                        if (!relu && i < layers.Count && layers[i].Layer is Relu) (relu, i) = (true, i + 1);
                        folded.Add(name, Fold(conv, norm, relu));
                        break;
                    default:
                        throw new NotSupportedException(
                            $"Cannot fold layer '{name}' ({layer.Kind}) for inference: only convolutions (with the batch norm and ReLU after them) and dropout fold.");
                }
            }
            folded.Eval();
            return folded;
        }
        catch
        {
            folded.Dispose();
            throw;
        }
    }

    private static IEnumerable<(string Name, Layer Layer)> Flatten(Sequential sequence, string prefix = "")
    {
        foreach (var (name, child) in sequence.Children)
        {
            var path = prefix + name;
            if (child is Sequential inner)
                foreach (var layer in Flatten(inner, path + ".")) yield return layer;
            else yield return (path, (Layer)child);
        }
    }

    private static FoldedConv2d Fold(Conv2d conv, BatchNorm2d? norm, bool relu)
    {
        int k = conv.OutChannels, perFilter = (int)(conv.Weight.Numel / k);
        var w = conv.Weight.ToHostDoubles();
        var bias = conv.Bias is null ? norm is null ? null : new double[k] : conv.Bias.ToHostDoubles();
        if (norm is not null)
        {
            if (norm.Channels != k)
                throw new NotSupportedException($"Cannot fold a batch norm of {norm.Channels} channels into a convolution of {k} outputs.");
            double[] mean = norm.RunningMean.ToHostDoubles(), variance = norm.RunningVar.ToHostDoubles(), beta = norm.Beta.ToHostDoubles();
            var gamma = norm.Gamma?.ToHostDoubles();
            for (var o = 0; o < k; o++)
            {
                var scale = (gamma?[o] ?? 1) / Math.Sqrt(variance[o] + norm.Eps);
                for (var i = 0; i < perFilter; i++) w[o * perFilter + i] *= scale;
                bias![o] = (bias[o] - mean[o]) * scale + beta[o];
            }
        }
        var kind = conv.Kind + (norm is null ? "" : " + batch norm") + (relu ? " + ReLU" : "") + (norm is null ? "" : " (folded)");
        var weight = Upload(conv.Weight, w, conv.Weight.Shape);
        try
        {
            return new FoldedConv2d(weight, bias is null ? null : Upload(conv.Weight, bias, new Shape(k)), conv.Spec, relu, kind);
        }
        catch
        {
            weight.Dispose();
            throw;
        }
    }

    /// <summary>A new tensor beside <paramref name="like"/>, of its dtype, holding <paramref name="values"/>.</summary>
    private static Tensor Upload(Tensor like, double[] values, Shape shape)
    {
        var t = like.Backend.Empty(shape, like.DType);
        t.UploadDoubles(values);
        return t;
    }
}
