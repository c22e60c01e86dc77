using System.Globalization;
using BrainSeg.Mri;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.Labels;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Seg.Training;

namespace BrainSeg.Seg.Checkpoints;

/// <summary>
/// The typed metadata of a brainseg checkpoint or model: the run's options, the class count and names, the
/// normalisation and where the run stands. <see cref="Read"/> is the one reader (every value parsed and
/// range-checked, so nothing is built from an absurd class count or epoch) and <see cref="Write"/> the one
/// writer. Other keys (data, label_map, ...) describe the run and are kept as they are.
/// </summary>
public sealed record CheckpointMetadata
{
    public const string FormatTag = "brainseg-checkpoint/1";

    public required TrainingOptions Options { get; init; }
    public required int Classes { get; init; }
    /// <summary>Class names by number (generic names when the file has none, or not one per class).</summary>
    public required IReadOnlyList<string> ClassNames { get; init; }
    public IntensityNormalisation Normalisation { get; init; } = IntensityNormalisation.Default;
    /// <summary>Completed epochs, iterations of the current epoch, iterations over the run.</summary>
    public int Epoch { get; init; }
    public long Iteration { get; init; }
    public long GlobalIteration { get; init; }
    /// <summary>Where the run's generator stands.</summary>
    public ulong RandomOffset { get; init; }
    public double ElapsedSeconds { get; init; }

    /// <summary>The largest iteration count accepted: far beyond a real run, small enough that sums stay exact.</summary>
    public const long MaxIterations = 1L << 50;

    /// <summary>The metadata of <paramref name="file"/>; an <see cref="InvalidDataException"/> names the first key that is missing, malformed or out of range.</summary>
    public static CheckpointMetadata Read(IReadOnlyDictionary<string, string> m, string file)
    {
        string Bad(string problem) => $"{file}: {problem}; it was not written by this version of 'brainseg train', or it was altered. Give RUN_DIR/model.safetensors or checkpoint.safetensors of a brainseg run.";
        string Get(string key) => m.TryGetValue(key, out var v) ? v : throw new InvalidDataException(Bad($"the metadata lacks '{key}'"));
        T Parse<T>(string key, T min, T max) where T : struct, System.Numerics.INumber<T>
        {
            string text = Get(key);
            if (T.TryParse(text, NumberStyles.Float & ~NumberStyles.AllowLeadingWhite, CultureInfo.InvariantCulture, out T v)
                && v >= min && v <= max && (v is not double d || double.IsFinite(d)))
                return v;
            throw new InvalidDataException(Bad($"metadata '{key}' is '{Shorten(text)}', not a number from {min} to {max}"));
        }
        string OneOf(string key, params string[] values) =>
            values.Contains(Get(key)) ? Get(key) : throw new InvalidDataException(Bad($"metadata '{key}' is '{Shorten(Get(key))}', not one of {string.Join(", ", values)}"));

        if (!m.TryGetValue("format", out var format) || format != FormatTag)
            throw new InvalidDataException($"{file} is not a brainseg model or checkpoint (format '{Shorten(format ?? "")}', expected '{FormatTag}'); give RUN_DIR/model.safetensors written by 'brainseg train'.");
        var options = new TrainingOptions
        {
            Network = OneOf("network", "fcn", "dilated") == "fcn" ? NetworkKind.Fcn : NetworkKind.Dilated,
            Adversarial = OneOf("scheme", "baseline", "adversarial") == "adversarial",
            Epochs = Parse("epochs", 1, TrainingOptions.MaxEpochs),
            PatchesPerClass = Parse("patches_per_class", 1, TrainingOptions.MaxPatchesPerClass),
            Batch = Parse("batch", 1, TrainingOptions.MaxBatch),
            LearningRateSegmentation = Parse("lr_seg", double.Epsilon, double.MaxValue),
            LearningRateDiscriminator = Parse("lr_disc", double.Epsilon, double.MaxValue),
            LearningRateSegmentationAdversarial = OneOf("lr_seg_adversarial_follows", "lr_disc", "option") == "option"
                ? Parse("lr_seg_adversarial", 0.0, double.MaxValue) : null,  // 0: the control arm
            NonSaturating = Get("adversarial_update").StartsWith("non-saturating", StringComparison.Ordinal),
            DiscriminatorSeesGenerated = OneOf("ld_inputs", "manual", "manual+generated") == "manual+generated",
            Plane = Enum.Parse<Plane>(OneOf("plane", "axial", "coronal", "sagittal"), ignoreCase: true),
            Seed = Parse("seed", 0UL, ulong.MaxValue),
            DropoutP = Parse("dropout", 0.0, Math.BitDecrement(1.0)),
            LogEvery = Parse("log_every", 1, TrainingOptions.MaxLogEvery),
            CheckpointEvery = TimeSpan.FromMinutes(Parse("checkpoint_minutes", 1e-6, TrainingOptions.MaxCheckpointMinutes)),
        };
        try
        {
            options.Validate(); // the rules between options, e.g. an adversarial batch splits in three
        }
        catch (BadInputException e)
        {
            throw new InvalidDataException(Bad($"its options do not agree ({e.Message})"), e);
        }
        int classes = Parse("classes", 2, LabelTable.MaxClasses);
        IReadOnlyList<string> names = m.TryGetValue("class_names", out var n) && n.Split(',') is { } split && split.Length == classes ? split : DefaultNames(classes);
        IntensityNormalisation normalisation = IntensityNormalisation.Default;
        if (m.TryGetValue("normalisation", out var norm))
        {
            try { normalisation = IntensityNormalisation.Parse(norm); }
            catch (BadInputException e) { throw new InvalidDataException(Bad($"metadata 'normalisation' is not valid ({e.Message})"), e); }
        }
        int epoch = Parse("epoch", 0, options.Epochs);
        return new CheckpointMetadata
        {
            Options = options,
            Classes = classes,
            ClassNames = names,
            Normalisation = normalisation,
            Epoch = epoch,
            Iteration = Parse("iteration", 0L, MaxIterations),
            GlobalIteration = Parse("global_iteration", 0L, MaxIterations),
            RandomOffset = Parse("random_offset", 0UL, ulong.MaxValue),
            ElapsedSeconds = m.ContainsKey("elapsed_seconds") ? Parse("elapsed_seconds", 0.0, double.MaxValue) : 0,
        };
    }

    /// <summary>
    /// The metadata as stored (invariant culture, round-trippable): <paramref name="description"/> (data, label
    /// map, ...), then every typed value, then the facts a reader may show but this reader does not need.
    /// </summary>
    public Dictionary<string, string> Write(IReadOnlyDictionary<string, string> description, IReadOnlyDictionary<string, string> facts)
    {
        var m = new Dictionary<string, string>(description, StringComparer.Ordinal) { ["format"] = FormatTag };
        var o = Options;
        m["network"] = o.Network == NetworkKind.Fcn ? "fcn" : "dilated";
        m["scheme"] = o.Adversarial ? "adversarial" : "baseline";
        m["epochs"] = I(o.Epochs);
        m["patches_per_class"] = I(o.PatchesPerClass);
        m["batch"] = I(o.Batch);
        m["lr_seg"] = R(o.LearningRateSegmentation);
        m["lr_disc"] = R(o.LearningRateDiscriminator);
        m["lr_seg_adversarial"] = R(o.AdversarialSegmentationRate);
        m["lr_seg_adversarial_follows"] = o.LearningRateSegmentationAdversarial is null ? "lr_disc" : "option";
        m["adversarial_update"] = o.NonSaturating ? "non-saturating (theta_s descends La with flipped labels)" : "ascent (theta_s ascends La, grad scale -1)";
        m["ld_inputs"] = o.DiscriminatorSeesGenerated ? "manual+generated" : "manual";
        m["plane"] = o.Plane.ToString().ToLowerInvariant();
        m["seed"] = I(o.Seed);
        m["dropout"] = R(o.DropoutP);
        m["log_every"] = I(o.LogEvery);
        m["checkpoint_minutes"] = R(o.CheckpointEvery.TotalMinutes);
        m["classes"] = I(Classes);
        m["class_names"] = string.Join(",", ClassNames);
        m["normalisation"] = Normalisation.ToString();
        m["epoch"] = I(Epoch);
        m["iteration"] = I(Iteration);
        m["global_iteration"] = I(GlobalIteration);
        m["random_offset"] = I(RandomOffset);
        m["elapsed_seconds"] = R(ElapsedSeconds);
        foreach (var (key, value) in facts) m[key] = value;
        return m;
    }

    public static string[] DefaultNames(int classes) => Enumerable.Range(0, classes).Select(i => i == 0 ? "background" : $"class{i}").ToArray();

    static string I<T>(T v) where T : IFormattable => v.ToString(null, CultureInfo.InvariantCulture);
    static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);
    static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";
}
