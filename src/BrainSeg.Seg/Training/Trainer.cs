using System.Globalization;
using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Optim;
using BrainSeg.Mri;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Seg.Checkpoints;
using BrainSeg.Seg.Networks;

namespace BrainSeg.Seg.Training;

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
public sealed partial class Trainer : IDisposable
{
    public const string CheckpointFile = "checkpoint.safetensors";
    public const string ModelFile = "model.safetensors";
    public const string LogFile = "log.csv";
    public const string FormatTag = Checkpoints.CheckpointMetadata.FormatTag;

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
    /// <param name="dtype">The networks' element type: float32 for training, float64 for comparisons with the reference.</param>
    public Trainer(IBackend backend, IPatchSource data, TrainingOptions options, IReadOnlyDictionary<string, string>? description = null,
        Func<IBackend, int, NetworkOptions, SegmentationNetwork>? segmenterFactory = null, DType dtype = DType.Float32)
    {
        options.Validate();
        (_backend, _data, Options) = (backend, data, options);
        _description = description is null ? [] : new Dictionary<string, string>(description, StringComparer.Ordinal);
        Random = new RandomStream(options.Seed);
        var netOptions = options.NetworkOptions(Random) with { DType = dtype };
        Segmenter = segmenterFactory?.Invoke(backend, data.Classes, netOptions)
            ?? (options.Network == NetworkKind.Fcn
                ? new FcnNetwork(backend, data.Classes, netOptions)
                : new DilatedNetwork(backend, data.Classes, netOptions));
        if (options.Adversarial && Segmenter.TrainingInputSize < Discriminator.PatchSize)
            throw new BadInputException($"The {Segmenter.Title}'s training input ({Segmenter.TrainingInputSize}) is smaller than the discriminator's {Discriminator.PatchSize}×{Discriminator.PatchSize} image patch.");
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

    /// <summary>The checkpoint's metadata: the typed values of <see cref="Checkpoints.CheckpointMetadata"/>, the run's description and facts for readers.</summary>
    public Dictionary<string, string> CheckpointMetadata()
    {
        var names = _description.TryGetValue("class_names", out var n) && n.Split(',') is { } split && split.Length == Classes
            ? split : Checkpoints.CheckpointMetadata.DefaultNames(Classes);
        var normalisation = _description.TryGetValue("normalisation", out var text) ? IntensityNormalisation.Parse(text) : IntensityNormalisation.Default;
        var metadata = new Checkpoints.CheckpointMetadata
        {
            Options = Options,
            Classes = Classes,
            ClassNames = names,
            Normalisation = normalisation,
            Epoch = Epoch,
            Iteration = Iteration,
            GlobalIteration = GlobalIteration,
            RandomOffset = Random.Offset,
            ElapsedSeconds = PreviousSeconds,
        };
        return metadata.Write(_description, new Dictionary<string, string>
        {
            ["segmenter_input"] = I(Segmenter.TrainingInputSize),
            ["segmenter_output"] = I(Segmenter.TrainingOutputSize),
            ["random_seed"] = I(Random.Seed),
            ["sampling_seed"] = I(SamplingSeed),
            ["sampling"] = "class-balanced, per epoch keyed by (sampling_seed, epoch)",
            ["complete"] = IsComplete ? "true" : "false",
            ["precision"] = _backend.Precision,
            ["rmsprop"] = $"rho={SegmentationOptimizer.Rho.ToString("R", CultureInfo.InvariantCulture)} eps={SegmentationOptimizer.Eps.ToString("R", CultureInfo.InvariantCulture)}",
        });
    }

    /// <summary>
    /// A trainer that continues the run saved in <paramref name="checkpoint"/>: the options, weights, statistics,
    /// optimiser state, generator offset and position are all the checkpoint's.
    /// </summary>
    /// <param name="amend">Changes the saved options may take (more epochs, another log or checkpoint interval).</param>
    public static Trainer Resume(IBackend backend, IPatchSource data, string checkpoint, IReadOnlyDictionary<string, string>? description = null,
        Func<IBackend, int, NetworkOptions, SegmentationNetwork>? segmenterFactory = null, Func<TrainingOptions, TrainingOptions>? amend = null)
    {
        var (tensors, meta) = SafeTensors.Read(checkpoint);
        var saved = Checkpoints.CheckpointMetadata.Read(meta, checkpoint);
        var options = amend is null ? saved.Options : amend(saved.Options);
        if (saved.Classes != data.Classes)
            throw new BadInputException($"{checkpoint} was trained with {saved.Classes} classes but the data has {data.Classes}: use the same label map as the original run.");
        var merged = new Dictionary<string, string>(meta, StringComparer.Ordinal);
        if (description is not null) foreach (var (k, v) in description) merged[k] = v;
        var trainer = new Trainer(backend, data, options, merged, segmenterFactory);
        try
        {
            trainer.Load(tensors, saved, checkpoint);
            return trainer;
        }
        catch
        {
            trainer.Dispose();
            throw;
        }
    }

    private void Load(List<SafeTensor> tensors, Checkpoints.CheckpointMetadata saved, string file)
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

        Epoch = saved.Epoch;
        Iteration = saved.Iteration;
        GlobalIteration = saved.GlobalIteration;
        Random.Offset = saved.RandomOffset;
        PreviousSeconds = saved.ElapsedSeconds;
    }

    // ---- helpers ----

    private static string I(long v) => v.ToString(CultureInfo.InvariantCulture);
    private static string I(ulong v) => v.ToString(CultureInfo.InvariantCulture);

    public void Dispose()
    {
        DisposeStepState();
        SegmentationOptimizer.Dispose();
        DiscriminatorOptimizer?.Dispose();
        Segmenter.Dispose();
        Discriminator?.Dispose();
    }
}
