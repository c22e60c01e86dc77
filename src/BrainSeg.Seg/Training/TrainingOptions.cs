using System.Globalization;
using BrainSeg.Mri.Geometry;
using BrainSeg.Seg.Networks;

namespace BrainSeg.Seg.Training;

public enum NetworkKind { Fcn, Dilated }

/// <summary>
/// The experiment's arms. Control runs the adversarial schedule (the same minibatches, Ld and La passes and
/// discriminator training) with θs's La rate 0, so adversarial vs control isolates the adversarial gradient
/// and control vs baseline the schedule.
/// </summary>
public enum Arm { Baseline, Control, Adversarial }

/// <summary>
/// Everything that decides how a run trains. The defaults are the paper's (sections 2.3 and 3.1): 5 epochs of
/// 50,000 patches per class per image, minibatch 300 (3 × 100 in adversarial training), RMSprop 1e-3 / 1e-5.
/// train, experiment and the demo start from these.
/// </summary>
public sealed record TrainingOptions
{
    /// <summary>The paper's protocol.</summary>
    public static TrainingOptions Paper { get; } = new();

    public NetworkKind Network { get; init; } = NetworkKind.Dilated;

    /// <summary>Alternate Ls, Ld and La updates (paper 2.3) instead of Ls alone (the baseline).</summary>
    public bool Adversarial { get; init; }

    public int Epochs { get; init; } = 5;

    /// <summary>N: training patches per class per image in one epoch (paper: 50,000).</summary>
    public int PatchesPerClass { get; init; } = 50_000;

    /// <summary>
    /// Patches per iteration: one minibatch of this size in the baseline; in adversarial training split into
    /// three minibatches of a third each, one for Ls, one for Ld and one for La (paper: 300 = 3 × 100).
    /// </summary>
    public int Batch { get; init; } = 300;

    /// <summary>RMSprop rate of the segmentation loss Ls (paper: 1e-3).</summary>
    public double LearningRateSegmentation { get; init; } = 1e-3;

    /// <summary>RMSprop rate of the discriminator losses Ld and La (paper: 1e-5).</summary>
    public double LearningRateDiscriminator { get; init; } = 1e-5;

    /// <summary>
    /// The rate at which θs ascends La. Null (default) follows the loss: the discriminator's rate, the literal
    /// reading of the paper; 1e-3 is the other reading (θs always moves at the segmentation rate); 0 is the control arm.
    /// </summary>
    public double? LearningRateSegmentationAdversarial { get; init; }

    /// <summary>θs DESCENDS La with the labels flipped (generated called manual) instead of ascending it. Off in the paper.</summary>
    public bool NonSaturating { get; init; }

    /// <summary>
    /// The Ld minibatch also holds the generated segmentations of the same patches (labelled generated), not
    /// only the manual ones as the paper words it; batch norm could otherwise tell the two apart by batch statistics.
    /// </summary>
    public bool DiscriminatorSeesGenerated { get; init; }

    public Plane Plane { get; init; } = Plane.Axial;

    /// <summary>Seed of the run's generator (weights, dropout) and of patch sampling.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Dropout probability of the 1×1 and fully connected layers (paper: used, rate not stated; Lasagne's default 0.5).</summary>
    public double DropoutP { get; init; } = 0.5;

    /// <summary>A row of log.csv every this many iterations.</summary>
    public int LogEvery { get; init; } = 10;

    /// <summary>A checkpoint at least this often (and at the end of each epoch).</summary>
    public TimeSpan CheckpointEvery { get; init; } = TimeSpan.FromMinutes(10);

    public int SegmentationBatch => Adversarial ? Batch / 3 : Batch;

    public double AdversarialSegmentationRate => LearningRateSegmentationAdversarial ?? LearningRateDiscriminator;

    /// <summary>Which arm of the experiment these options train.</summary>
    public Arm Arm => !Adversarial ? Arm.Baseline : AdversarialSegmentationRate == 0 ? Arm.Control : Arm.Adversarial;

    /// <summary>These options set to train <paramref name="arm"/>; the adversarial arm keeps the chosen La rate of θs.</summary>
    public TrainingOptions ForArm(Arm arm) => this with
    {
        Adversarial = arm != Arm.Baseline,
        LearningRateSegmentationAdversarial = arm == Arm.Control ? 0 : LearningRateSegmentationAdversarial is 0 ? null : LearningRateSegmentationAdversarial,
    };

    public static string ArmName(Arm arm) => arm.ToString().ToLowerInvariant();

    /// <summary>"baseline", "control" or "adversarial" (also the names --arms accepts).</summary>
    public static Arm ParseArm(string name) => name.Trim().ToLowerInvariant() switch
    {
        "baseline" => Arm.Baseline,
        "control" => Arm.Control,
        "adversarial" => Arm.Adversarial,
        _ => throw new ArgumentException($"--arms: unknown arm \"{name}\"; use baseline, control and/or adversarial, comma-separated."),
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option out of range.</summary>
    public void Validate()
    {
        static void Require(bool ok, string message)
        {
            if (!ok) throw new ArgumentException(message);
        }
        Require(Epochs >= 1, $"--epochs must be at least 1, got {Epochs}.");
        Require(PatchesPerClass >= 1, $"--patches-per-class must be at least 1, got {PatchesPerClass}.");
        Require(Batch >= 1, $"--batch must be at least 1, got {Batch}.");
        Require(!Adversarial || Batch >= 3 && Batch % 3 == 0, $"--batch must be a multiple of 3 in adversarial training (three minibatches of a third each), got {Batch}.");
        Require(LearningRateSegmentation > 0 && double.IsFinite(LearningRateSegmentation), $"--lr-seg must be positive, got {LearningRateSegmentation}.");
        Require(LearningRateDiscriminator > 0 && double.IsFinite(LearningRateDiscriminator), $"--lr-disc must be positive, got {LearningRateDiscriminator}.");
        Require(LearningRateSegmentationAdversarial is null or >= 0, $"--lr-seg-adversarial must be 0 (the control arm) or positive, got {LearningRateSegmentationAdversarial}.");
        Require(DropoutP is >= 0 and < 1, $"--dropout must be in [0, 1), got {DropoutP}.");
        Require(LogEvery >= 1, $"--log-every must be at least 1, got {LogEvery}.");
        Require(CheckpointEvery > TimeSpan.Zero, "--checkpoint-minutes must be positive.");
    }

    internal NetworkOptions NetworkOptions(Engine.Autograd.RandomStream random) => new() { DropoutP = DropoutP, Random = random, Seed = Seed };

    /// <summary>The options as checkpoint metadata (invariant culture, round-trippable).</summary>
    public void WriteTo(IDictionary<string, string> m)
    {
        m["network"] = Network == NetworkKind.Fcn ? "fcn" : "dilated";
        m["scheme"] = Adversarial ? "adversarial" : "baseline";
        m["epochs"] = I(Epochs);
        m["patches_per_class"] = I(PatchesPerClass);
        m["batch"] = I(Batch);
        m["lr_seg"] = R(LearningRateSegmentation);
        m["lr_disc"] = R(LearningRateDiscriminator);
        m["lr_seg_adversarial"] = R(AdversarialSegmentationRate);
        m["lr_seg_adversarial_follows"] = LearningRateSegmentationAdversarial is null ? "lr_disc" : "option";
        m["adversarial_update"] = NonSaturating ? "non-saturating (theta_s descends La with flipped labels)" : "ascent (theta_s ascends La, grad scale -1)";
        m["ld_inputs"] = DiscriminatorSeesGenerated ? "manual+generated" : "manual";
        m["plane"] = Plane.ToString().ToLowerInvariant();
        m["seed"] = Seed.ToString(CultureInfo.InvariantCulture);
        m["dropout"] = R(DropoutP);
        m["log_every"] = I(LogEvery);
        m["checkpoint_minutes"] = R(CheckpointEvery.TotalMinutes);
    }

    /// <summary>The options a checkpoint was written with (the inverse of <see cref="WriteTo"/>).</summary>
    public static TrainingOptions ReadFrom(IReadOnlyDictionary<string, string> m, string file)
    {
        string Get(string key) => m.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"{file}: checkpoint metadata lacks '{key}'; it was not written by brainseg train.");
        try
        {
            return new TrainingOptions
            {
                Network = Get("network") == "fcn" ? NetworkKind.Fcn : NetworkKind.Dilated,
                Adversarial = Get("scheme") == "adversarial",
                Epochs = int.Parse(Get("epochs"), CultureInfo.InvariantCulture),
                PatchesPerClass = int.Parse(Get("patches_per_class"), CultureInfo.InvariantCulture),
                Batch = int.Parse(Get("batch"), CultureInfo.InvariantCulture),
                LearningRateSegmentation = double.Parse(Get("lr_seg"), CultureInfo.InvariantCulture),
                LearningRateDiscriminator = double.Parse(Get("lr_disc"), CultureInfo.InvariantCulture),
                LearningRateSegmentationAdversarial = Get("lr_seg_adversarial_follows") == "option" ? double.Parse(Get("lr_seg_adversarial"), CultureInfo.InvariantCulture) : null,
                NonSaturating = Get("adversarial_update").StartsWith("non-saturating", StringComparison.Ordinal),
                DiscriminatorSeesGenerated = Get("ld_inputs") == "manual+generated",
                Plane = Enum.Parse<Plane>(Get("plane"), ignoreCase: true),
                Seed = ulong.Parse(Get("seed"), CultureInfo.InvariantCulture),
                DropoutP = double.Parse(Get("dropout"), CultureInfo.InvariantCulture),
                LogEvery = int.Parse(Get("log_every"), CultureInfo.InvariantCulture),
                CheckpointEvery = TimeSpan.FromMinutes(double.Parse(Get("checkpoint_minutes"), CultureInfo.InvariantCulture)),
            };
        }
        catch (FormatException e)
        {
            throw new InvalidDataException($"{file}: checkpoint metadata has a malformed value ({e.Message}).", e);
        }
    }

    private static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
    private static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
