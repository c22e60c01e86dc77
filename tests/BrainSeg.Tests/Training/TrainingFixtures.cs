using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Cpu;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Mri.Phantom;
using BrainSeg.Mri.Sampling;
using BrainSeg.Seg.Networks;
using BrainSeg.Seg.Training;

namespace BrainSeg.Tests.Training;

/// <summary>
/// A three-layer segmenter (3×3 d1, 3×3 d2, 1×1 output; receptive field 7, 27×27 input → 21×21), so that
/// trainer tests run many iterations in a second while exercising every path the paper's networks take
/// (batch norm, dropout, the discriminator's 25×25 crop).
/// </summary>
internal sealed class TinyNetwork(IBackend backend, int classes, NetworkOptions options)
    : SegmentationNetwork(backend, classes, options, hidden: [1, 2], dense: [])
{
    public override string Title => "tiny test network";

    public static SegmentationNetwork Create(IBackend b, int classes, NetworkOptions o) => new TinyNetwork(b, classes, o);
}

internal static class TrainingFixtures
{
    public static readonly IBackend Host = CpuBackend.Instance;

    private static readonly Lazy<TrainingImage> PhantomImage = new(() =>
    {
        var p = SyntheticPhantom.Generate(size: 24, seed: 5);
        return new TrainingImage(IntensityNormalisation.Default.Apply(p.Image), p.Classes);
    });

    /// <summary>A 24³ synthetic brain with the seven classes of the adult set (background included).</summary>
    public static SampledPatchSource Phantom(int classes = 7) => new([PhantomImage.Value], classes);

    public static Trainer Tiny(TrainingOptions options, IPatchSource? data = null) =>
        new(Host, data ?? Phantom(), options, null, TinyNetwork.Create);

    public static float[] Flatten(IEnumerable<Tensor> tensors) => tensors.SelectMany(t => t.ToHost<float>()).ToArray();

    /// <summary>The discriminator's loss on (central 25×25 of images, softmax of the segmenter), target "generated", without any update.</summary>
    public static double AdversarialLoss(Trainer trainer, Tensor images)
    {
        using var tape = Tape.NoGrad(Host);
        return AdversarialLoss(trainer, tape, images).ToHost<float>()[0];
    }

    public static Tensor AdversarialLoss(Trainer trainer, Tape tape, Tensor images)
    {
        var n = images.Shape.N;
        var crops = F.CenterCrop(tape, images, Discriminator.PatchSize, Discriminator.PatchSize);
        var generated = trainer.Segmenter.Probabilities(tape, images);
        var target = new float[2 * n];
        for (var i = 0; i < n; i++) target[2 * i + 1] = 1; // class 1: generated
        var t = tape.Own(Tensor.FromHost(Host, target, n, 2));
        return F.SoftmaxCrossEntropy(tape, trainer.Discriminator!.Forward(tape, crops, generated), t);
    }

    public static double SegmentationLoss(Trainer trainer, Tensor images, Tensor labels)
    {
        using var tape = Tape.NoGrad(Host);
        var target = F.OneHot(tape, labels, trainer.Classes, DType.Float32);
        return F.SoftmaxCrossEntropy(tape, trainer.Segmenter.Forward(tape, images), target).ToHost<float>()[0];
    }

    public static void Upload(IEnumerable<Tensor> tensors, float[] values)
    {
        var at = 0;
        foreach (var t in tensors)
        {
            Host.Upload<float>(values.AsSpan(at, (int)t.Numel), t);
            at += (int)t.Numel;
        }
    }
}

/// <summary>A fresh folder under the system temp folder, removed on dispose.</summary>
internal sealed class RunFolder : IDisposable
{
    public RunFolder() => Directory.CreateDirectory(Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "brainseg-train-" + Guid.NewGuid().ToString("N")));

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
