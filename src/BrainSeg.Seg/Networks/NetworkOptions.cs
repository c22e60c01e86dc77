using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Nn;
using BrainSeg.Mri;

namespace BrainSeg.Seg.Networks;

/// <summary>Settings shared by the three networks. The defaults are the paper's.</summary>
public sealed record NetworkOptions
{
    /// <summary>Image channels (one T1-weighted image in the paper).</summary>
    public int InputChannels { get; init; } = 1;

    /// <summary>Dropout probability on the inputs of the 1×1 (and fully connected) layers; 0 turns dropout off.</summary>
    public double DropoutP { get; init; } = 0.5;

    /// <summary>
    /// Adds a learnable batch-norm scale γ to every hidden layer (one per channel). Off in the paper,
    /// whose parameter counts include only the shift β.
    /// </summary>
    public bool BatchNormScale { get; init; }

    /// <summary>Float32 to train; Float64 for gradient checks.</summary>
    public DType DType { get; init; } = DType.Float32;

    /// <summary>Seed of the network's generator (used when <see cref="Random"/> is not given).</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>The run's generator, shared by weight initialisation and dropout; null: a new stream from <see cref="Seed"/>.</summary>
    public RandomStream? Random { get; init; }
}

/// <summary>One row of a network's layer table: shapes at the training input size.</summary>
public sealed record LayerSummary(string Name, string Kind, Shape Input, Shape Output, long Parameters);

/// <summary>What the model command and reports say about a network.</summary>
public interface INetwork : IDisposable
{
    string Title { get; }
    int Classes { get; }

    /// <summary>Side of the square input region that one output voxel sees.</summary>
    int ReceptiveField { get; }

    /// <summary>Side of the training input patch (the image patch for the discriminator).</summary>
    int TrainingInputSize { get; }

    /// <summary>Side of the output for a training input.</summary>
    int TrainingOutputSize { get; }

    /// <summary>All trainable values, including batch-norm scales when enabled.</summary>
    long ParameterCount { get; }

    /// <summary>How many of <see cref="ParameterCount"/> are batch-norm scales γ (0 with the paper's settings).</summary>
    long BatchNormScaleCount { get; }

    /// <summary>The per-layer table for a batch of <paramref name="batch"/> training inputs.</summary>
    IReadOnlyList<LayerSummary> Summarize(int batch = 1);

    Module Module { get; }

    /// <summary>The run's generator that the network's dropout layers draw from.</summary>
    RandomStream Random { get; }
}

internal static class Blocks
{
    /// <summary>
    /// A hidden layer: convolution without bias → batch norm (shift β, optional scale γ) → ReLU, the ReLU fused
    /// into the batch norm so that the step keeps two activations per layer, not three.
    /// </summary>
    public static Sequential ConvBnRelu(ParameterInit init, int inChannels, int outChannels, int kernel, int dilation, bool scale) =>
        new Sequential()
            .Add("conv", new Conv2d(init, inChannels, outChannels, kernel, dilation))
            .Add("bn", new BatchNorm2d(init, outChannels, scale) { FusedRelu = true });

    /// <summary>A hidden fully connected layer: linear without bias → batch norm → ReLU (fused as above).</summary>
    public static Sequential LinearBnRelu(ParameterInit init, int inFeatures, int outFeatures, bool scale) =>
        new Sequential()
            .Add("fc", new Linear(init, inFeatures, outFeatures, bias: false))
            .Add("bn", new BatchNorm2d(init, outFeatures, scale) { FusedRelu = true });

    public static ParameterInit Init(IBackend backend, NetworkOptions o, out RandomStream random)
    {
        if (o.InputChannels < 1) throw new ArgumentException($"InputChannels must be at least 1, got {o.InputChannels}.");
        if (!(o.DropoutP is >= 0 and < 1)) throw new ArgumentException($"DropoutP must be in [0, 1), got {o.DropoutP}.");
        if (!o.DType.IsFloatingPoint()) throw new ArgumentException($"Networks hold Float32 or Float64 parameters, not {o.DType}.");
        random = o.Random ?? new RandomStream(o.Seed);
        return new ParameterInit(backend, o.DType, random);
    }

    public static long ScaleCount(Module m) => m.NamedParameters().Where(p => p.Name.EndsWith(".gamma", StringComparison.Ordinal)).Sum(p => p.Tensor.Numel);

    public static void CheckClasses(int classes)
    {
        if (classes < 2) throw new BadInputException($"A segmentation needs at least 2 classes (background and one tissue), got {classes}.");
    }
}
