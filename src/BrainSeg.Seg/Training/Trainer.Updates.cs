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
        QueueSegmentationStep(images, labels);
        return LossNow(SegmentationLoss);
    }

    private void QueueSegmentationStep(Tensor images, Tensor labels)
    {
        using var tape = new Tape(_backend);
        var target = F.OneHot(tape, labels, Classes, Segmenter.Options.DType);
        var loss = F.SoftmaxCrossEntropy(tape, Segmenter.Forward(tape, images), target);
        SegmentationOptimizer.ZeroGrad();
        tape.Backward(loss);
        SegmentationOptimizer.Step();
        KeepLoss(loss, SegmentationLoss);
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
        QueueDiscriminatorStep(images, labels);
        return LossNow(DiscriminatorLoss);
    }

    private void QueueDiscriminatorStep(Tensor images, Tensor labels)
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
            target = DiscriminatorTargets(n, n);
        }
        else target = DiscriminatorTargets(n, 0);
        var loss = F.SoftmaxCrossEntropy(tape, disc.Forward(tape, discImages, segmentations), target);
        opt.ZeroGrad();
        tape.Backward(loss);
        opt.Step(_discriminatorGroup!);
        KeepLoss(loss, DiscriminatorLoss);
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
        QueueAdversarialStep(images);
        return LossNow(AdversarialLoss);
    }

    private void QueueAdversarialStep(Tensor images)
    {
        var (disc, opt) = RequireAdversarial();
        var n = images.Shape.N;
        if (!Options.NonSaturating)
        {
            using var tape = new Tape(_backend);
            var crops = F.CenterCrop(tape, images, Discriminator.PatchSize, Discriminator.PatchSize);
            var generated = Segmenter.Probabilities(tape, images);
            var loss = F.SoftmaxCrossEntropy(tape, disc.Forward(tape, crops, generated), DiscriminatorTargets(0, n));
            opt.ZeroGrad();
            tape.Backward(loss);
            opt.Step(); // both groups: θd scale +1, θs scale −1
            KeepLoss(loss, AdversarialLoss);
            return;
        }

        using (var tape = new Tape(_backend))
        {
            var crops = F.CenterCrop(tape, images, Discriminator.PatchSize, Discriminator.PatchSize);
            Tensor generated;
            using (var noGrad = Tape.NoGrad(_backend))
                generated = tape.Own(noGrad.Keep(Segmenter.Probabilities(noGrad, images)));
            var loss = F.SoftmaxCrossEntropy(tape, disc.Forward(tape, crops, generated), DiscriminatorTargets(0, n));
            opt.ZeroGrad();
            tape.Backward(loss);
            opt.Step(_discriminatorGroup!);
            KeepLoss(loss, AdversarialLoss);
        }
        using (var tape = new Tape(_backend))
        {
            var crops = F.CenterCrop(tape, images, Discriminator.PatchSize, Discriminator.PatchSize);
            var generated = Segmenter.Probabilities(tape, images);
            var fooled = F.SoftmaxCrossEntropy(tape, disc.Forward(tape, crops, generated), DiscriminatorTargets(n, 0));
            opt.ZeroGrad();
            tape.Backward(fooled);
            opt.Step(_adversarialGroup!); // scale +1: descent on the flipped label
        }
    }

    /// <summary>One iteration on a minibatch of <see cref="TrainingOptions.Batch"/> patches; waits for its losses.</summary>
    public Losses Iterate(PatchBatch batch) => Enqueue(batch).Read();

    /// <summary>
    /// Queues one iteration on a minibatch of <see cref="TrainingOptions.Batch"/> patches and returns without waiting:
    /// the patches go up through the backend's staging path, the updates are queued, and the losses are copied back
    /// behind them. Read them after queuing the next iteration, so the device is never idle while the host waits.
    /// </summary>
    public PendingLosses Enqueue(PatchBatch batch)
    {
        if (!Options.Adversarial) StageInputs(batch, 0, batch.Count, SegmentationLoss);
        else
        {
            var third = batch.Count / 3;
            StageInputs(batch, 0, third, SegmentationLoss);
            StageInputs(batch, third, third, DiscriminatorLoss);
            StageInputs(batch, 2 * third, third, AdversarialLoss, labels: false);   // La needs no labels
        }
        RunUpdates();
        return StartLossReadback();
    }

    /// <summary>The iteration's updates on the staged inputs: Ls alone, or Ls, Ld and La. Nothing here waits or uploads.</summary>
    private void QueueUpdates()
    {
        QueueSegmentationStep(Staged(SegmentationLoss).Images, Staged(SegmentationLoss).Labels);
        if (!Options.Adversarial) return;
        QueueDiscriminatorStep(Staged(DiscriminatorLoss).Images, Staged(DiscriminatorLoss).Labels);
        QueueAdversarialStep(Staged(AdversarialLoss).Images);
    }

    private (Tensor Images, Tensor Labels) Staged(int update) =>
        _inputs[update] is (Tensor images, Tensor labels) ? (images, labels)
            : throw new InvalidOperationException($"Update {update}'s inputs were not staged before its step.");

    /// <summary>Uploads patches [start, start + count) of a minibatch: images [n,1,S,S] and labels [n,21,21] (Int32), as new tensors.</summary>
    public (Tensor Images, Tensor Labels) UploadPatches(PatchBatch batch, int start, int count)
    {
        var (s, o) = CheckPatches(batch, start, count);
        var images = _backend.Empty(new Shape(count, 1, s, s), Segmenter.Options.DType);
        UploadImages(batch, start, count, images, async: false);
        return (images, Tensor.FromHost(_backend, WidenLabels(batch, start, count), count, o, o));
    }

    /// <summary>As <see cref="UploadPatches"/>, into the trainer's own input tensors of update <paramref name="update"/> (kept from step to step).</summary>
    private void StageInputs(PatchBatch batch, int start, int count, int update, bool labels = true)
    {
        var (s, o) = CheckPatches(batch, start, count);
        ref var inputs = ref _inputs[update];
        if (inputs.Images is null || inputs.Images.Shape.N != count)
        {
            DropRecording();
            inputs.Images?.Dispose();
            inputs.Labels?.Dispose();
            inputs = (_backend.Empty(new Shape(count, 1, s, s), Segmenter.Options.DType), _backend.Empty(new Shape(count, o, o), DType.Int32));
        }
        UploadImages(batch, start, count, inputs.Images, async: true);
        if (labels) _backend.UploadAsync<int>(WidenLabels(batch, start, count), inputs.Labels!);
    }

    /// <summary>The patches' images into <paramref name="images"/>, widened to float64 for a float64 network.</summary>
    private void UploadImages(PatchBatch batch, int start, int count, Tensor images, bool async)
    {
        var values = batch.Images.AsSpan(start * (int)(images.Numel / count), (int)images.Numel);
        if (images.DType == DType.Float32)
        {
            if (async) _backend.UploadAsync<float>(values, images);
            else _backend.Upload<float>(values, images);
            return;
        }
        var wide = new double[values.Length];
        for (var i = 0; i < wide.Length; i++) wide[i] = values[i];
        if (async) _backend.UploadAsync<double>(wide, images);
        else _backend.Upload<double>(wide, images);
    }

    private (int Input, int Output) CheckPatches(PatchBatch batch, int start, int count)
    {
        int s = Segmenter.TrainingInputSize, o = Segmenter.TrainingOutputSize;
        if (batch.Images.Length < (start + count) * s * s || batch.Labels.Length < (start + count) * o * o)
            throw new ArgumentException($"The minibatch holds patches of another size than the {Segmenter.Title}'s {s}×{s} input and {o}×{o} output.");
        return (s, o);
    }

    /// <summary>The labels of the patches as Int32, in a buffer reused from call to call (uploads copy it before they return).</summary>
    private ReadOnlySpan<int> WidenLabels(PatchBatch batch, int start, int count)
    {
        var o = Segmenter.TrainingOutputSize;
        if (_hostLabels.Length != count * o * o) _hostLabels = new int[count * o * o];
        var labels = batch.Labels.AsSpan(start * o * o, count * o * o);
        for (var i = 0; i < labels.Length; i++) _hostLabels[i] = labels[i];
        return _hostLabels;
    }

    private (Discriminator, RmsProp) RequireAdversarial() =>
        Discriminator is null || DiscriminatorOptimizer is null
            ? throw new InvalidOperationException("This trainer runs the baseline scheme: Ld and La need TrainingOptions.Adversarial.")
            : (Discriminator, DiscriminatorOptimizer);

    /// <summary>
    /// [manual, generated] one-hot rows: <paramref name="manual"/> rows (1,0), then <paramref name="generated"/> rows (0,1).
    /// Made once per pair of counts and kept, so a step uploads nothing but its patches.
    /// </summary>
    private Tensor DiscriminatorTargets(int manual, int generated)
    {
        if (_targets.TryGetValue((manual, generated), out var cached)) return cached;
        var rows = manual + generated;
        var values = new double[rows * 2];
        for (var r = 0; r < rows; r++) values[r * 2 + (r < manual ? 0 : 1)] = 1;
        var targets = Segmenter.Options.DType == DType.Float64
            ? Tensor.FromHost(_backend, values, rows, 2)
            : Tensor.FromHost(_backend, Array.ConvertAll(values, v => (float)v), rows, 2);
        _targets[(manual, generated)] = targets;
        return targets;
    }

    /// <summary>[a; b] along the batch.</summary>
    private static Tensor StackBatch(Tape tape, Tensor a, Tensor b) => F.ConcatBatch(tape, a, b);
}
