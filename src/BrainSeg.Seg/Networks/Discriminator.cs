using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Nn;

namespace BrainSeg.Seg.Networks;

/// <summary>
/// The paper's discriminator: tells manual from generated segmentations of an image patch.
/// <code>
///   image [N,1,25,25] → conv 3×3 ×2 → [N,32,21,21] ┐
///   segmentation [N,C,21,21] (softmax or one-hot) ──┴ concat → [N,32+C,21,21]
///   → conv 3×3 ×3 → [N,32,15,15] → max pool 3×3 stride 3 → [N,32,5,5] → conv 3×3 ×2 → [N,32,1,1]
///   → flatten → fully connected 256 → fully connected 2 (logits: manual, generated)
/// </code>
/// Hidden layers are convolution (or linear) without bias → batch norm shift → ReLU; the output layer has
/// a bias. Dropout (p = <see cref="NetworkOptions.DropoutP"/>) is applied to the inputs of both fully
/// connected layers, the counterparts of the segmentation networks' 1×1 layers (the paper states dropout
/// only for those). 66,786 trainable parameters for C = 7.
/// </summary>
public sealed class Discriminator : Module, INetwork
{
    public const int PatchSize = 25;
    public const int SegmentationSize = 21;

    private readonly Sequential _image = new(), _joint = new(), _head = new();

    public Discriminator(IBackend backend, int classes, NetworkOptions? options = null)
    {
        Blocks.CheckClasses(classes);
        Options = options ?? new NetworkOptions();
        var init = Blocks.Init(backend, Options, out var random);
        (Classes, Random) = (classes, random);
        var scale = Options.BatchNormScale;

        _image.Add("conv1", Blocks.ConvBnRelu(init, Options.InputChannels, 32, 3, 1, scale))
              .Add("conv2", Blocks.ConvBnRelu(init, 32, 32, 3, 1, scale));
        _joint.Add("conv3", Blocks.ConvBnRelu(init, 32 + classes, 32, 3, 1, scale))
              .Add("conv4", Blocks.ConvBnRelu(init, 32, 32, 3, 1, scale))
              .Add("conv5", Blocks.ConvBnRelu(init, 32, 32, 3, 1, scale))
              .Add("pool", new MaxPool2d(3, 3))
              .Add("conv6", Blocks.ConvBnRelu(init, 32, 32, 3, 1, scale))
              .Add("conv7", Blocks.ConvBnRelu(init, 32, 32, 3, 1, scale))
              .Add("flatten", new Flatten());
        if (Options.DropoutP > 0) _head.Add("dropout8", new Dropout(Options.DropoutP, random));
        _head.Add("fc8", Blocks.LinearBnRelu(init, 32, 256, scale));
        if (Options.DropoutP > 0) _head.Add("dropout9", new Dropout(Options.DropoutP, random));
        _head.Add("fc9", new Linear(init, 256, 2, bias: true));

        AddModule("image", _image);
        AddModule("joint", _joint);
        AddModule("head", _head);
    }

    public string Title => "discriminator";
    public NetworkOptions Options { get; }
    public int Classes { get; }
    public int ReceptiveField => PatchSize;
    public int TrainingInputSize => PatchSize;
    public int TrainingOutputSize => 1;
    public long BatchNormScaleCount => Blocks.ScaleCount(this);
    public Module Module => this;
    public RandomStream Random { get; }

    /// <summary>
    /// Logits [N,2] (class 0: manual, class 1: generated — the trainer's convention) for image patches
    /// [N,Cin,25,25] and segmentations [N,C,21,21] (class probabilities or one-hot).
    /// </summary>
    public Tensor Forward(Tape tape, Tensor image, Tensor segmentation)
    {
        var n = image.Shape.Rank == 4 ? image.Shape.N : 0;
        if (image.Shape.Rank != 4 || image.Shape != new Shape(n, Options.InputChannels, PatchSize, PatchSize))
            throw new ArgumentException($"The discriminator needs image patches [N,{Options.InputChannels},{PatchSize},{PatchSize}], got {image.Shape}.");
        if (segmentation.Shape.Rank != 4 || segmentation.Shape != new Shape(n, Classes, SegmentationSize, SegmentationSize))
            throw new ArgumentException($"The discriminator needs segmentations [{n},{Classes},{SegmentationSize},{SegmentationSize}] (the centre of the patch), got {segmentation.Shape}.");
        var features = _image.Forward(tape, image);
        var joint = F.ConcatChannels(tape, features, segmentation);
        return _head.Forward(tape, _joint.Forward(tape, joint));
    }

    public IReadOnlyList<LayerSummary> Summarize(int batch = 1)
    {
        var rows = new List<LayerSummary>();
        var shape = new Shape(batch, Options.InputChannels, PatchSize, PatchSize);
        void Walk(Sequential part)
        {
            foreach (var (name, child) in part.Children)
            {
                var layer = (Layer)child;
                var next = layer.OutputShape(shape);
                rows.Add(new LayerSummary(name, layer.Kind, shape, next, layer.ParameterCount));
                shape = next;
            }
        }
        Walk(_image);
        var joined = new Shape(batch, 32 + Classes, SegmentationSize, SegmentationSize);
        rows.Add(new LayerSummary("concat", $"concatenate with the {Classes}-class segmentation", shape, joined, 0));
        shape = joined;
        Walk(_joint);
        Walk(_head);
        rows.Add(new LayerSummary("softmax", "softmax (manual, generated)", shape, shape, 0));
        return rows;
    }
}
