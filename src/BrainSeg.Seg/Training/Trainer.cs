using System.Diagnostics;
using System.Globalization;
using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Optim;
using BrainSeg.Seg.Checkpoints;
using BrainSeg.Seg.Networks;

namespace BrainSeg.Seg.Training;

/// <summary>The losses of one iteration; NaN where the scheme has no such loss (Ld and La in the baseline).</summary>
public readonly record struct Losses(double Segmentation, double Discriminator, double Adversarial)
{
    public static readonly Losses None = new(double.NaN, double.NaN, double.NaN);
}

/// <summary>Where a run stands, for progress bars.</summary>
public sealed record TrainingProgress(
    int Epoch, int Epochs, long Iteration, long IterationsPerEpoch, long GlobalIteration, long TotalIterations,
    long Patches, double PatchesPerSecond, Losses Last, TimeSpan Elapsed, TimeSpan Remaining);

/// <summary>How <see cref="Trainer.Run"/> ended.</summary>
public enum TrainingOutcome { Completed, Interrupted }

/// <summary>
/// Trains a segmentation network, alone (baseline) or against the discriminator (paper section 2.3), on any
/// backend. One iteration consumes <see cref="TrainingOptions.Batch"/> patches: the baseline takes one Ls step
/// on all of them; the adversarial scheme splits them into three minibatches and takes, in turn,
/// <list type="number">
/// <item>Ls(θs): cross-entropy of the segmentation; the segmentation optimiser updates θs;</item>
/// <item>Ld(θd): the discriminator is shown image patches with the MANUAL segmentation (one-hot) and learns to call them manual;</item>
/// <item>La(θs, θd): it is shown image patches with the GENERATED segmentation (softmax) and learns to call them
/// generated; the discriminator optimiser updates θd by descent and θs by ASCENT, the ascent being the
/// segmenter group's gradient scale of −1 in that optimiser.</item>
/// </list>
/// Discriminator logits are [N,2]: class 0 manual, class 1 generated.
/// </summary>
public sealed class Trainer : IDisposable
{
    public const string CheckpointFile = "checkpoint.safetensors";
    public const string ModelFile = "model.safetensors";
    public const string LogFile = "log.csv";
    public const string FormatTag = "brainseg-checkpoint/1";

    // Patch sampling has its own seed, and the sampler keys each epoch's draws by the epoch number, so an
    // epoch's patches never depend on what the networks drew before it (and a resumed run cuts the same ones).
    private const ulong SamplingSeedSalt = 0x5A3D_1E55_0C7A_B1E5;

    private readonly IBackend _backend;
    private readonly IPatchSource _data;
    private readonly ParamGroup _segmenterGroup;
    private readonly ParamGroup? _discriminatorGroup, _adversarialGroup;
    private readonly Dictionary<string, string> _description;
    private int[] _hostLabels = [];

    /// <param name="description">Run facts for the checkpoint metadata: class names, label map, normalisation, data.</param>
    /// <param name="segmenterFactory">Builds the segmenter instead of <see cref="TrainingOptions.Network"/> (small networks for tests).</param>
    public Trainer(IBackend backend, IPatchSource data, TrainingOptions options, IReadOnlyDictionary<string, string>? description = null,
        Func<IBackend, int, NetworkOptions, SegmentationNetwork>? segmenterFactory = null)
    {
        options.Validate();
        (_backend, _data, Options) = (backend, data, options);
        _description = description is null ? [] : new Dictionary<string, string>(description, StringComparer.Ordinal);
        Random = new RandomStream(options.Seed);
        var netOptions = options.NetworkOptions(Random);
        Segmenter = segmenterFactory?.Invoke(backend, data.Classes, netOptions)
            ?? (options.Network == NetworkKind.Fcn
                ? new FcnNetwork(backend, data.Classes, netOptions)
                : new DilatedNetwork(backend, data.Classes, netOptions));
        if (options.Adversarial && Segmenter.TrainingInputSize < Discriminator.PatchSize)
            throw new ArgumentException($"The {Segmenter.Title}'s training input ({Segmenter.TrainingInputSize}) is smaller than the discriminator's {Discriminator.PatchSize}×{Discriminator.PatchSize} image patch.");
        _segmenterGroup = new ParamGroup("segmenter", Segmenter.NamedParameters(), options.LearningRateSegmentation);
        SegmentationOptimizer = new RmsProp([_segmenterGroup]);
        if (options.Adversarial)
        {
            Discriminator = new Discriminator(backend, data.Classes, netOptions);
            _discriminatorGroup = new ParamGroup("discriminator", Discriminator.NamedParameters(), options.LearningRateDiscriminator, gradScale: 1);
            // The paper's La update: θs maximises the discriminator's loss. The explicit −1 makes the step an ascent.
            _adversarialGroup = new ParamGroup("segmenter_adversarial", Segmenter.NamedParameters(), options.AdversarialSegmentationRate,
                gradScale: options.NonSaturating ? 1 : -1);
            DiscriminatorOptimizer = new RmsProp([_discriminatorGroup, _adversarialGroup]);
        }
    }

    public TrainingOptions Options { get; }
    public SegmentationNetwork Segmenter { get; }
    public Discriminator? Discriminator { get; }
    public RmsProp SegmentationOptimizer { get; }

    /// <summary>Updates θd (Ld and La) and, in the La step only, θs through <see cref="AdversarialSegmenterGroup"/>.</summary>
    public RmsProp? DiscriminatorOptimizer { get; }

    /// <summary>θs inside the discriminator optimiser: rate <see cref="TrainingOptions.AdversarialSegmentationRate"/>, gradient scale −1 (ascent).</summary>
    public ParamGroup? AdversarialSegmenterGroup => _adversarialGroup;

    /// <summary>The run's generator: weights, then every dropout mask.</summary>
    public RandomStream Random { get; }

    /// <summary>Completed epochs (the epoch now running, counted from 0).</summary>
    public int Epoch { get; private set; }

    /// <summary>Completed iterations of the current epoch.</summary>
    public long Iteration { get; private set; }

    /// <summary>Completed iterations over the whole run.</summary>
    public long GlobalIteration { get; private set; }

    /// <summary>Training seconds before this process (from a resumed checkpoint).</summary>
    public double PreviousSeconds { get; private set; }

    public int Classes => _data.Classes;
    public ulong SamplingSeed => Options.Seed ^ SamplingSeedSalt;

    /// <summary>What the data must cut: the segmenter's input and output sizes, N, the plane and the sampling seed.</summary>
    public PatchRequest Request => new(Options.Plane, Segmenter.TrainingInputSize, Segmenter.TrainingOutputSize, Options.PatchesPerClass, Options.Batch, SamplingSeed);

    /// <summary>The minibatches of one epoch (<see cref="TrainingOptions.Batch"/> patches each, the last may be short).</summary>
    public IEnumerable<PatchBatch> EpochBatches(int epoch) => _data.Epoch(Request, epoch);

    public bool IsComplete => Epoch >= Options.Epochs;

    // ---- the three updates ----

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

    // ---- the run ----

    /// <summary>
    /// Trains from where the trainer stands to the last epoch, writing into <paramref name="runDirectory"/>:
    /// log.csv every <see cref="TrainingOptions.LogEvery"/> iterations, checkpoint.safetensors at the end of
    /// each epoch, every <see cref="TrainingOptions.CheckpointEvery"/> and on cancellation, and model.safetensors
    /// at the end. A NaN or infinite loss throws <see cref="TrainingDivergedException"/> and writes nothing more.
    /// </summary>
    public TrainingOutcome Run(string runDirectory, Action<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        // Checked before anything is written, so a run that cannot start leaves no folder or log behind.
        var perEpoch = _data.PatchesPerEpoch(Request) / Options.Batch;
        if (perEpoch == 0)
            throw new ArgumentException($"One epoch holds {_data.PatchesPerEpoch(Request)} patches ({Options.PatchesPerClass} per class per image), fewer than one iteration of {Options.Batch}: raise --patches-per-class or lower --batch.");
        Directory.CreateDirectory(runDirectory);
        var checkpointPath = Path.Combine(runDirectory, CheckpointFile);
        using var log = new TrainingLog(Path.Combine(runDirectory, LogFile), GlobalIteration);
        var startSeconds = PreviousSeconds;
        var wall = Stopwatch.StartNew();
        var lastCheckpoint = TimeSpan.Zero;
        string? lastGood = File.Exists(checkpointPath) ? checkpointPath : null;
        long patchesThisProcess = 0;
        var window = new LossWindow();

        void Save()
        {
            PreviousSeconds = startSeconds + wall.Elapsed.TotalSeconds;
            SaveCheckpoint(checkpointPath);
            lastGood = checkpointPath;
            lastCheckpoint = wall.Elapsed;
        }

        while (Epoch < Options.Epochs)
        {
            var total = perEpoch * Options.Epochs;
            // Batches already trained (before a resume) are drawn again and skipped, so the sampler's stream stays aligned.
            using var batches = EpochBatches(Epoch).Skip((int)Iteration).GetEnumerator();
            while (Iteration < perEpoch)
            {
                if (cancellation.IsCancellationRequested)
                {
                    Save();
                    return TrainingOutcome.Interrupted;
                }
                if (!batches.MoveNext() || batches.Current.Count != Options.Batch)
                    throw new InvalidOperationException($"The data produced fewer than {perEpoch} full minibatches in epoch {Epoch + 1}.");
                var losses = Iterate(batches.Current);
                CheckFinite(losses, lastGood);
                Iteration++;
                GlobalIteration++;
                patchesThisProcess += Options.Batch;
                window.Add(losses);

                var seconds = wall.Elapsed.TotalSeconds;
                if (GlobalIteration % Options.LogEvery == 0 || Iteration == perEpoch)
                    log.Append(Epoch + 1, GlobalIteration, GlobalIteration * Options.Batch, startSeconds + seconds, window.TakeMean());
                if (progress is not null)
                {
                    var rate = patchesThisProcess / Math.Max(seconds, 1e-9);
                    var remaining = (total - GlobalIteration) * Options.Batch / Math.Max(rate, 1e-9);
                    progress(new TrainingProgress(Epoch + 1, Options.Epochs, Iteration, perEpoch, GlobalIteration, total,
                        GlobalIteration * Options.Batch, rate, losses, TimeSpan.FromSeconds(startSeconds + seconds),
                        TimeSpan.FromSeconds(Math.Min(remaining, TimeSpan.MaxValue.TotalSeconds / 2))));
                }
                if (wall.Elapsed - lastCheckpoint >= Options.CheckpointEvery && Iteration < perEpoch) Save();
            }
            Epoch++;
            Iteration = 0;
            Save();
        }
        // The model file carries batch-norm statistics re-estimated with the final weights (the checkpoint keeps
        // the running averages, so a resumed run continues exactly).
        Inference.BatchNormCalibration.Recalibrate(Segmenter, _data, Request with { Seed = Request.Seed ^ 0xB17 }, Inference.BatchNormCalibration.DefaultPasses);
        SaveCheckpoint(Path.Combine(runDirectory, ModelFile));
        return TrainingOutcome.Completed;
    }

    private void CheckFinite(Losses losses, string? lastGood)
    {
        void Check(string name, double value)
        {
            if (double.IsNaN(value) && !Options.Adversarial && name != "Ls") return;
            if (!double.IsFinite(value))
                throw new TrainingDivergedException(
                    $"The {name} loss became {value} at iteration {GlobalIteration + 1} (epoch {Epoch + 1}); " +
                    (lastGood is null ? "no checkpoint was written yet: " : $"the last good checkpoint is {lastGood}: ") +
                    "lower the learning rates (--lr-seg, --lr-disc) and start again" + (lastGood is null ? "." : ", or --resume from it."));
        }
        Check("Ls", losses.Segmentation);
        Check("Ld", losses.Discriminator);
        Check("La", losses.Adversarial);
    }

    // ---- checkpoints ----

    /// <summary>Writes weights, batch-norm statistics, both optimisers' state and the run's metadata (atomically).</summary>
    public void SaveCheckpoint(string path) => SafeTensors.Write(path, CheckpointTensors(), CheckpointMetadata());

    public List<SafeTensor> CheckpointTensors()
    {
        var tensors = new List<SafeTensor>();
        void AddModule(string prefix, Engine.Nn.Module m)
        {
            foreach (var (name, t) in m.NamedParameters()) tensors.Add(SafeTensor.From($"{prefix}.{name}", t));
            foreach (var (name, t) in m.NamedBuffers()) tensors.Add(SafeTensor.From($"{prefix}.{name}", t));
        }
        AddModule("segmenter", Segmenter);
        if (Discriminator is not null) AddModule("discriminator", Discriminator);
        foreach (var (name, t) in SegmentationOptimizer.NamedState()) tensors.Add(SafeTensor.From($"optimizer.segmentation.{name}", t));
        if (DiscriminatorOptimizer is not null)
            foreach (var (name, t) in DiscriminatorOptimizer.NamedState()) tensors.Add(SafeTensor.From($"optimizer.discriminator.{name}", t));
        return tensors;
    }

    public Dictionary<string, string> CheckpointMetadata()
    {
        var m = new Dictionary<string, string>(_description, StringComparer.Ordinal) { ["format"] = FormatTag };
        Options.WriteTo(m);
        m["classes"] = I(Classes);
        m["segmenter_input"] = I(Segmenter.TrainingInputSize);
        m["segmenter_output"] = I(Segmenter.TrainingOutputSize);
        m["epoch"] = I(Epoch);
        m["iteration"] = I(Iteration);
        m["global_iteration"] = I(GlobalIteration);
        m["random_seed"] = I(Random.Seed);
        m["random_offset"] = I(Random.Offset);
        m["sampling_seed"] = I(SamplingSeed);
        m["sampling"] = "class-balanced, per epoch keyed by (sampling_seed, epoch)";
        m["elapsed_seconds"] = PreviousSeconds.ToString("R", CultureInfo.InvariantCulture);
        m["complete"] = IsComplete ? "true" : "false";
        m["rmsprop"] = $"rho={SegmentationOptimizer.Rho.ToString("R", CultureInfo.InvariantCulture)} eps={SegmentationOptimizer.Eps.ToString("R", CultureInfo.InvariantCulture)}";
        return m;
    }

    /// <summary>
    /// A trainer that continues the run saved in <paramref name="checkpoint"/>: the options, weights, statistics,
    /// optimiser state, generator offset and position are all the checkpoint's.
    /// </summary>
    public static Trainer Resume(IBackend backend, IPatchSource data, string checkpoint, IReadOnlyDictionary<string, string>? description = null,
        Func<IBackend, int, NetworkOptions, SegmentationNetwork>? segmenterFactory = null)
    {
        var (tensors, meta) = SafeTensors.Read(checkpoint);
        if (!meta.TryGetValue("format", out var format) || format != FormatTag)
            throw new InvalidDataException($"{checkpoint} is not a brainseg training checkpoint (format '{format}', expected '{FormatTag}').");
        var options = TrainingOptions.ReadFrom(meta, checkpoint);
        var classes = Long(meta, "classes", checkpoint);
        if (classes != data.Classes)
            throw new ArgumentException($"{checkpoint} was trained with {classes} classes but the data has {data.Classes}: use the same label map as the original run.");
        var merged = new Dictionary<string, string>(meta, StringComparer.Ordinal);
        if (description is not null) foreach (var (k, v) in description) merged[k] = v;
        var trainer = new Trainer(backend, data, options, merged, segmenterFactory);
        try
        {
            trainer.Load(tensors, meta, checkpoint);
            return trainer;
        }
        catch
        {
            trainer.Dispose();
            throw;
        }
    }

    private void Load(List<SafeTensor> tensors, Dictionary<string, string> meta, string file)
    {
        var byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        SafeTensor Take(string name) => byName.Remove(name, out var t) ? t
            : throw new InvalidDataException($"{file} lacks tensor '{name}'; it was written by another network or scheme.");
        void LoadModule(string prefix, Engine.Nn.Module m)
        {
            foreach (var (name, t) in m.NamedParameters().Concat(m.NamedBuffers())) Take($"{prefix}.{name}").CopyTo(t, file);
        }
        LoadModule("segmenter", Segmenter);
        if (Discriminator is not null) LoadModule("discriminator", Discriminator);
        void LoadOptimizer(string prefix, RmsProp opt)
        {
            foreach (var (name, t) in opt.NamedState()) Take($"{prefix}.{name}").CopyTo(t, file);
        }
        LoadOptimizer("optimizer.segmentation", SegmentationOptimizer);
        if (DiscriminatorOptimizer is not null) LoadOptimizer("optimizer.discriminator", DiscriminatorOptimizer);
        if (byName.Count > 0)
            throw new InvalidDataException($"{file} holds tensors this run does not have ({string.Join(", ", byName.Keys.Take(3))}…).");

        Epoch = (int)Long(meta, "epoch", file);
        Iteration = Long(meta, "iteration", file);
        GlobalIteration = Long(meta, "global_iteration", file);
        Random.Offset = (ulong)Long(meta, "random_offset", file);
        PreviousSeconds = meta.TryGetValue("elapsed_seconds", out var s) && double.TryParse(s, CultureInfo.InvariantCulture, out var v) ? v : 0;
    }

    private static long Long(IReadOnlyDictionary<string, string> meta, string key, string file) =>
        meta.TryGetValue(key, out var s) && long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v
        : ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var u) ? (long)u
        : throw new InvalidDataException($"{file}: checkpoint metadata '{key}' is missing or not a number.");

    // ---- helpers ----

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

    private static string I(long v) => v.ToString(CultureInfo.InvariantCulture);
    private static string I(ulong v) => v.ToString(CultureInfo.InvariantCulture);

    public void Dispose()
    {
        SegmentationOptimizer.Dispose();
        DiscriminatorOptimizer?.Dispose();
        Segmenter.Dispose();
        Discriminator?.Dispose();
    }

    /// <summary>Means of the losses since the last log row.</summary>
    private sealed class LossWindow
    {
        private double _ls, _ld, _la;
        private int _count;

        public void Add(Losses l) { _ls += l.Segmentation; _ld += l.Discriminator; _la += l.Adversarial; _count++; }

        public Losses TakeMean()
        {
            var mean = _count == 0 ? Losses.None : new Losses(_ls / _count, _ld / _count, _la / _count);
            (_ls, _ld, _la, _count) = (0, 0, 0, 0);
            return mean;
        }
    }
}

/// <summary>A loss became NaN or infinite; the message names the loss, the iteration and the last good checkpoint.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);
