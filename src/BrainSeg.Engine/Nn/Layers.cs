using BrainSeg.Engine.Autograd;

namespace BrainSeg.Engine.Nn;

/// <summary>Stride-1 2-D convolution with Glorot-uniform weights [K,C,R,R] and an optional zero-initialised bias [K].</summary>
public sealed class Conv2d : Layer
{
    public Conv2d(ParameterInit init, int inChannels, int outChannels, int kernel, int dilation = 1, int padding = 0, bool bias = false)
    {
        if (inChannels < 1 || outChannels < 1 || kernel < 1 || dilation < 1 || padding < 0)
            throw new ArgumentException($"Conv2d({inChannels}→{outChannels}, kernel {kernel}, dilation {dilation}, padding {padding}) is not a valid layer.");
        (InChannels, OutChannels, KernelSize, Spec) = (inChannels, outChannels, kernel, new Conv2dSpec(dilation, padding));
        var area = kernel * kernel;
        Weight = AddParameter("weight", init.GlorotUniform(new Shape(outChannels, inChannels, kernel, kernel), inChannels * area, outChannels * area));
        if (bias) Bias = AddParameter("bias", init.Constant(new Shape(outChannels), 0));
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int KernelSize { get; }
    public Conv2dSpec Spec { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public override string Kind => $"conv {KernelSize}×{KernelSize}" + (Spec.Dilation > 1 ? $" d{Spec.Dilation}" : "") + (Bias is null ? "" : " +bias");

    public override Tensor Forward(Tape tape, Tensor x) => F.Conv2d(tape, x, Weight, Bias, Spec);

    public override Shape OutputShape(Shape input) =>
        new(input[0], OutChannels, Spec.OutputSize(input[2], KernelSize), Spec.OutputSize(input[3], KernelSize));
}

/// <summary>Fully connected layer y = x·Wᵀ (+ b), W: [Out,In] Glorot-uniform, b zero.</summary>
public sealed class Linear : Layer
{
    public Linear(ParameterInit init, int inFeatures, int outFeatures, bool bias = true)
    {
        (InFeatures, OutFeatures) = (inFeatures, outFeatures);
        Weight = AddParameter("weight", init.GlorotUniform(new Shape(outFeatures, inFeatures), inFeatures, outFeatures));
        if (bias) Bias = AddParameter("bias", init.Constant(new Shape(outFeatures), 0));
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public override string Kind => $"fully connected {OutFeatures}" + (Bias is null ? "" : " +bias");
    public override Tensor Forward(Tape tape, Tensor x) => F.Linear(tape, x, Weight, Bias);
    public override Shape OutputShape(Shape input) => new(input[0], OutFeatures);
}

/// <summary>
/// Batch normalisation per channel over (N,H,W), for [N,C,H,W] or [N,C] inputs. Learnable shift β (zero
/// initialised); the scale γ is optional and off by default (the paper's networks have none). Running
/// statistics follow PyTorch's momentum convention: r ← (1 − momentum)·r + momentum·batch statistic.
/// eps = 1e-4 is Lasagne's default. With <see cref="FusedRelu"/> the layer is batch norm followed by ReLU in
/// one op (<see cref="F.BatchNorm"/> with relu): the same result and the same parameter names as a separate
/// <see cref="Relu"/> after it, one activation tensor fewer.
/// </summary>
public sealed class BatchNorm2d : Layer
{
    public BatchNorm2d(ParameterInit init, int channels, bool scale = false, double momentum = 0.1, double eps = 1e-4)
    {
        (Channels, Momentum, Eps) = (channels, momentum, eps);
        var c = new Shape(channels);
        if (scale) Gamma = AddParameter("gamma", init.Constant(c, 1));
        Beta = AddParameter("beta", init.Constant(c, 0));
        RunningMean = AddBuffer("running_mean", init.Constant(c, 0));
        RunningVar = AddBuffer("running_var", init.Constant(c, 1));
    }

    public int Channels { get; }

    /// <summary>Weight of a batch's statistics in the running ones; settable so that a calibration can average its passes equally.</summary>
    public double Momentum { get; set; }
    public double Eps { get; }
    public Tensor? Gamma { get; }
    public Tensor Beta { get; }
    public Tensor RunningMean { get; }
    public Tensor RunningVar { get; }

    /// <summary>Applies ReLU to the output in the same op.</summary>
    public bool FusedRelu { get; init; }

    public override string Kind => (Gamma is null ? "batch norm (shift)" : "batch norm (scale, shift)") + (FusedRelu ? " + ReLU" : "");

    public override Tensor Forward(Tape tape, Tensor x) =>
        F.BatchNorm(tape, x, Gamma, Beta, RunningMean, RunningVar, IsTraining, Momentum, Eps, FusedRelu);

    public override Shape OutputShape(Shape input) => input;
}

public sealed class Relu : Layer
{
    public override string Kind => "ReLU";
    public override Tensor Forward(Tape tape, Tensor x) => F.Relu(tape, x);
    public override Shape OutputShape(Shape input) => input;
}

/// <summary>Inverted dropout in training mode (masks drawn from <paramref name="random"/>); the identity in inference mode.</summary>
public sealed class Dropout(double p, RandomStream random) : Layer
{
    public double P { get; } = p is >= 0 and < 1 ? p : throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1).");
    public RandomStream Random { get; } = random;

    public override string Kind => $"dropout p={P}";
    public override Tensor Forward(Tape tape, Tensor x) => IsTraining ? F.Dropout(tape, x, P, Random) : x;
    public override Shape OutputShape(Shape input) => input;
}

public sealed class MaxPool2d(int window, int stride) : Layer
{
    public int Window { get; } = window;
    public int Stride { get; } = stride;

    public override string Kind => $"max pool {Window}×{Window} stride {Stride}";
    public override Tensor Forward(Tape tape, Tensor x) => F.MaxPool2d(tape, x, Window, Stride);
    public override Shape OutputShape(Shape input) =>
        new(input[0], input[1], (input[2] - Window) / Stride + 1, (input[3] - Window) / Stride + 1);
}

/// <summary>[N, …] → [N, features].</summary>
public sealed class Flatten : Layer
{
    public override string Kind => "flatten";
    public override Tensor Forward(Tape tape, Tensor x) => F.Flatten(tape, x);
    public override Shape OutputShape(Shape input) => new(input[0], (int)(input.Numel / input[0]));
}

/// <summary>Layers applied one after another; each is a named child.</summary>
public class Sequential : Layer
{
    private readonly List<Layer> _layers = [];

    public Sequential Add(string name, Layer layer)
    {
        _layers.Add(AddModule(name, layer));
        return this;
    }

    public IReadOnlyList<Layer> Layers => _layers;

    public override string Kind => string.Join(" → ", _layers.Select(l => l.Kind));

    public override Tensor Forward(Tape tape, Tensor x)
    {
        var input = x;
        foreach (var layer in _layers)
        {
            var y = layer.Forward(tape, x);
            // Without gradients a layer's input is dead once its output exists (the caller owns our input).
            if (!ReferenceEquals(x, input) && !ReferenceEquals(x, y)) tape.Release(x);
            x = y;
        }
        return x;
    }

    public override Shape OutputShape(Shape input)
    {
        foreach (var layer in _layers) input = layer.OutputShape(input);
        return input;
    }
}
