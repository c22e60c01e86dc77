using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Nn;

namespace BrainSeg.Seg.Networks;

/// <summary>
/// A fully convolutional segmentation network without subsampling: hidden layers (valid 3×3
/// convolution → batch norm → ReLU), then 1×1 layers with dropout on their inputs, and a 1×1 output
/// convolution with bias over the C classes. <see cref="Layer.Forward"/> returns the logits; the softmax
/// is applied by <see cref="Probabilities"/> or inside <see cref="F.SoftmaxCrossEntropy"/>.
/// </summary>
public abstract class SegmentationNetwork : Sequential, INetwork
{
    /// <summary>Output side during training, as in the paper.</summary>
    public const int TrainingOutput = 21;

    /// <param name="hidden">The 3×3 layers as dilation factors, 32 kernels each.</param>
    /// <param name="dense">Widths of the 1×1 hidden layers before the output layer.</param>
    protected SegmentationNetwork(IBackend backend, int classes, NetworkOptions? options, int[] hidden, int[] dense)
    {
        Blocks.CheckClasses(classes);
        Options = options ?? new NetworkOptions();
        var init = Blocks.Init(backend, Options, out var random);
        (Classes, Random) = (classes, random);

        var channels = Options.InputChannels;
        var layer = 0;
        foreach (var dilation in hidden)
        {
            Add($"conv{++layer}", Blocks.ConvBnRelu(init, channels, 32, 3, dilation, Options.BatchNormScale));
            channels = 32;
            ReceptiveField += 2 * dilation;
        }
        foreach (var width in dense)
        {
            AddDropout(++layer, random);
            Add($"conv{layer}", Blocks.ConvBnRelu(init, channels, width, 1, 1, Options.BatchNormScale));
            channels = width;
        }
        AddDropout(++layer, random);
        Add($"conv{layer}", new Conv2d(init, channels, classes, 1, bias: true));
        ReceptiveField += 1;
    }

    private void AddDropout(int layer, RandomStream random)
    {
        if (Options.DropoutP > 0) Add($"dropout{layer}", new Dropout(Options.DropoutP, random));
    }

    public abstract string Title { get; }
    public NetworkOptions Options { get; }
    public int Classes { get; }
    public int ReceptiveField { get; }
    public int TrainingInputSize => TrainingOutput + ReceptiveField - 1;
    public int TrainingOutputSize => TrainingOutput;
    public long BatchNormScaleCount => Blocks.ScaleCount(this);
    public Module Module => this;

    /// <summary>The generator the dropout layers draw from (save its offset with a checkpoint).</summary>
    public RandomStream Random { get; }

    /// <summary>Class probabilities: softmax over channels of the logits. x: [N,Cin,H,W] → [N,C,H−RF+1,W−RF+1].</summary>
    public Tensor Probabilities(Tape tape, Tensor x) => F.Softmax(tape, Forward(tape, x));

    public override Tensor Forward(Tape tape, Tensor x)
    {
        if (x.Shape.Rank != 4 || x.Shape.C != Options.InputChannels || x.Shape.H < ReceptiveField || x.Shape.W < ReceptiveField)
            throw new ArgumentException($"{Title} needs input [N,{Options.InputChannels},H,W] with H, W ≥ {ReceptiveField} (its receptive field), got {x.Shape}.");
        return base.Forward(tape, x);
    }

    public IReadOnlyList<LayerSummary> Summarize(int batch = 1)
    {
        var rows = new List<LayerSummary>();
        var shape = new Shape(batch, Options.InputChannels, TrainingInputSize, TrainingInputSize);
        foreach (var (name, child) in Children)
        {
            var layer = (Layer)child;
            var next = layer.OutputShape(shape);
            rows.Add(new LayerSummary(name, layer.Kind, shape, next, layer.ParameterCount));
            shape = next;
        }
        rows.Add(new LayerSummary("softmax", "softmax over classes", shape, shape, 0));
        return rows;
    }
}

/// <summary>
/// The paper's fully convolutional network: 15 valid 3×3 convolutions of 32 kernels, a 1×1 layer of 256
/// and a 1×1 output layer of C. Receptive field 31; a 51×51 input gives 21×21 outputs; 140,039
/// trainable parameters for C = 7 and 140,296 for C = 8.
/// </summary>
public sealed class FcnNetwork(IBackend backend, int classes, NetworkOptions? options = null)
    : SegmentationNetwork(backend, classes, options, hidden: Enumerable.Repeat(1, 15).ToArray(), dense: [256])
{
    public override string Title => "fully convolutional network";
}

/// <summary>
/// The paper's dilated network (Yu and Koltun's context module): valid 3×3 convolutions of 32 kernels with
/// dilations 1, 1, 2, 4, 8, 16, 1 and a 1×1 output layer of C. Receptive field 67; an 87×87 input gives
/// 21×21 outputs; 56,039 trainable parameters for C = 7 and 56,072 for C = 8.
/// </summary>
public sealed class DilatedNetwork(IBackend backend, int classes, NetworkOptions? options = null)
    : SegmentationNetwork(backend, classes, options, hidden: [1, 1, 2, 4, 8, 16, 1], dense: [])
{
    public override string Title => "dilated network";
}
