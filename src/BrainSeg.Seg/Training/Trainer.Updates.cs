using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Optim;
using BrainSeg.Seg.Networks;

namespace BrainSeg.Seg.Training;

/// <summary>The three updates of the paper (Ls, Ld, La) and how one iteration splits its patches among them.</summary>
public sealed partial class Trainer
{
    /// <summary>Ls: one segmentation-optimiser step on images [n,1,S,S] and labels [n,21,21] (Int32). Returns Ls before the step.</summary>
    public double SegmentationStep(Tensor images, Tensor labels)
    {
        using var tape = new Tape(_backend);
        var target = F.OneHot(tape, labels, Classes, Segmenter.Options.DType);
        var loss = F.SoftmaxCrossEntropy(tape, Segmenter.Forward(tape, images), target);
        SegmentationOptimizer.ZeroGrad();
        tape.Backward(loss);
        SegmentationOptimizer.Step();
        return Scalar(loss);
    }

    /// <summary>
    /// Ld: the discriminator learns to call (image, manual segmentation) manual; θd descends, θs is untouched.
    /// With <see cref="TrainingOptions.DiscriminatorSeesGenerated"/> the same minibatch also holds the
    /// segmenter's current output for these patches (no gradient to θs), labelled generated; that extra forward
    /// pass runs in training mode, so it also moves the segmenter's batch-norm running statistics and draws dropout masks.
    /// <paramref name="images"/> are the segmenter's input patches; the discriminator sees their central 25×25.
    /// </summary>
    public double DiscriminatorStep(Tensor images, Tensor labels)
    {
        var (disc, opt) = RequireAdversarial();
        using var tape = new Tape(_backend);
        var n = images.Shape.N;
        var crops = F.CenterCrop(tape, images, Discriminator.PatchSize, Discriminator.PatchSize);
        var manual = F.OneHot(tape, labels, Classes, Segmenter.Options.DType);
        Tensor segmentations = manual, discImages = crops, target;
        if (Options.DiscriminatorSeesGenerated)
        {
            using var noGrad = Tape.NoGrad(_backend);
            var generated = Segmenter.Probabilities(noGrad, images);
            segmentations = StackBatch(tape, manual, generated);
            discImages = StackBatch(tape, crops, crops);
            target = DiscriminatorTargets(tape, n, n);
        }
        else target = DiscriminatorTargets(tape, n, 0);
        var loss = F.SoftmaxCrossEntropy(tape, disc.Forward(tape, discImages, segmentations), target);
        opt.ZeroGrad();
        tape.Backward(loss);
        opt.Step(_discriminatorGroup!);
        return Scalar(loss);
    }

    /// <summary>
    /// La: the discriminator sees (image, softmax of the segmenter) and learns to call it generated. In one
    /// backward pass θd gets ∂La/∂θd and θs gets ∂La/∂θs; the discriminator optimiser then steps both groups:
    /// θd with gradient scale +1 (descent), θs with −1 (ascent). With <see cref="TrainingOptions.NonSaturating"/>
    /// θd descends La as before, but θs instead descends the loss of the flipped label (generated called manual),
    /// in a second pass. Returns La before the step.
    /// </summary>
    public double AdversarialStep(Tensor images)
    {
        var (disc, opt) = RequireAdversarial();
        var n = images.Shape.N;
        if (!Options.NonSaturating)
        {
            using var tape = new Tape(_backend);
            var crops = F.CenterCrop(tape, images, Discriminator.PatchSize, Discriminator.PatchSize);
            var generated = Segmenter.Probabilities(tape, images);
            var loss = F.SoftmaxCrossEntropy(tape, disc.Forward(tape, crops, generated), DiscriminatorTargets(tape, 0, n));
            opt.ZeroGrad();
            tape.Backward(loss);
            opt.Step(); // both groups: θd scale +1, θs scale −1
            return Scalar(loss);
        }

        double la;
        using (var tape = new Tape(_backend))
        {
            var crops = F.CenterCrop(tape, images, Discriminator.PatchSize, Discriminator.PatchSize);
            Tensor generated;
            using (var noGrad = Tape.NoGrad(_backend))
                generated = tape.Own(noGrad.Keep(Segmenter.Probabilities(noGrad, images)));
            var loss = F.SoftmaxCrossEntropy(tape, disc.Forward(tape, crops, generated), DiscriminatorTargets(tape, 0, n));
            opt.ZeroGrad();
            tape.Backward(loss);
            opt.Step(_discriminatorGroup!);
            la = Scalar(loss);
        }
        using (var tape = new Tape(_backend))
        {
            var crops = F.CenterCrop(tape, images, Discriminator.PatchSize, Discriminator.PatchSize);
            var generated = Segmenter.Probabilities(tape, images);
            var fooled = F.SoftmaxCrossEntropy(tape, disc.Forward(tape, crops, generated), DiscriminatorTargets(tape, n, 0));
            opt.ZeroGrad();
            tape.Backward(fooled);
            opt.Step(_adversarialGroup!); // scale +1: descent on the flipped label
        }
        return la;
    }

    /// <summary>One iteration on a minibatch of <see cref="TrainingOptions.Batch"/> patches.</summary>
    public Losses Iterate(PatchBatch batch)
    {
        if (!Options.Adversarial)
        {
            var (images, labels) = UploadPatches(batch, 0, batch.Count);
            using (images)
            using (labels)
                return new Losses(SegmentationStep(images, labels), double.NaN, double.NaN);
        }
        var third = batch.Count / 3;
        double ls, ld, la;
        {
            var (images, labels) = UploadPatches(batch, 0, third);
            using (images) using (labels) ls = SegmentationStep(images, labels);
        }
        {
            var (images, labels) = UploadPatches(batch, third, third);
            using (images) using (labels) ld = DiscriminatorStep(images, labels);
        }
        {
            var (images, labels) = UploadPatches(batch, 2 * third, third);
            using (images) using (labels) la = AdversarialStep(images);
        }
        return new Losses(ls, ld, la);
    }

    /// <summary>Uploads patches [start, start + count) of a minibatch: images [n,1,S,S] and labels [n,21,21] (Int32).</summary>
    public (Tensor Images, Tensor Labels) UploadPatches(PatchBatch batch, int start, int count)
    {
        int s = Segmenter.TrainingInputSize, o = Segmenter.TrainingOutputSize;
        if (batch.Images.Length < (start + count) * s * s || batch.Labels.Length < (start + count) * o * o)
            throw new ArgumentException($"The minibatch holds patches of another size than the {Segmenter.Title}'s {s}×{s} input and {o}×{o} output.");
        if (_hostLabels.Length != count * o * o) _hostLabels = new int[count * o * o];
        var labels = batch.Labels.AsSpan(start * o * o, count * o * o);
        for (var i = 0; i < labels.Length; i++) _hostLabels[i] = labels[i];
        return (Tensor.FromHost(_backend, batch.Images.AsSpan(start * s * s, count * s * s), count, 1, s, s),
                Tensor.FromHost(_backend, _hostLabels, count, o, o));
    }

    private (Discriminator, RmsProp) RequireAdversarial() =>
        Discriminator is null || DiscriminatorOptimizer is null
            ? throw new InvalidOperationException("This trainer runs the baseline scheme: Ld and La need TrainingOptions.Adversarial.")
            : (Discriminator, DiscriminatorOptimizer);

    /// <summary>[manual, generated] one-hot rows: <paramref name="manual"/> rows (1,0), then <paramref name="generated"/> rows (0,1).</summary>
    private Tensor DiscriminatorTargets(Tape tape, int manual, int generated)
    {
        var values = new int[manual + generated];
        values.AsSpan(manual).Fill(1);
        var labels = tape.Own(Tensor.FromHost(_backend, values, manual + generated, 1, 1));
        var oneHot = F.OneHot(tape, labels, 2, Segmenter.Options.DType);
        return F.Reshape(tape, oneHot, manual + generated, 2);
    }

    /// <summary>[a; b] along the batch.</summary>
    private static Tensor StackBatch(Tape tape, Tensor a, Tensor b) => F.ConcatBatch(tape, a, b);

    private static double Scalar(Tensor loss) =>
        loss.DType == DType.Float64 ? loss.ToHost<double>()[0] : loss.ToHost<float>()[0];
}
