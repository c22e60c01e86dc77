using BrainSeg.Mri.Geometry;
using BrainSeg.Mri;
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
    // The largest values accepted from the command line or a checkpoint: far beyond any real run, small
    // enough that counts of patches and iterations stay exact in 64 bits and a time span stays representable.
    public const int MaxEpochs = 100_000;
    public const int MaxPatchesPerClass = 10_000_000;
    public const int MaxBatch = 100_000;
    /// <summary>The largest rate the command line accepts (the paper's are 1e-3 and 1e-5).</summary>
    public const double MaxLearningRate = 10;
    public const int MaxLogEvery = 10_000_000;
    public const double MaxCheckpointMinutes = 525_600; // a year
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
        _ => throw new BadInputException($"--arms: unknown arm \"{name}\"; use baseline, control and/or adversarial, comma-separated."),
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option out of range.</summary>
    public void Validate()
    {
        static void Require(bool ok, string message)
        {
            if (!ok) throw new BadInputException(message);
        }
        Require(Epochs is >= 1 and <= MaxEpochs, $"--epochs must be from 1 to {MaxEpochs}, got {Epochs}.");
        Require(PatchesPerClass is >= 1 and <= MaxPatchesPerClass, $"--patches-per-class must be from 1 to {MaxPatchesPerClass}, got {PatchesPerClass}.");
        Require(Batch is >= 1 and <= MaxBatch, $"--batch must be from 1 to {MaxBatch}, got {Batch}.");
        Require(!Adversarial || Batch >= 3 && Batch % 3 == 0, $"--batch must be a multiple of 3 in adversarial training (three minibatches of a third each), got {Batch}.");
        // Rates only need to be positive and finite here (an absurd one diverges, which the trainer reports);
        // the command line holds them to (0, MaxLearningRate].
        Require(LearningRateSegmentation > 0 && double.IsFinite(LearningRateSegmentation), $"--lr-seg must be positive, got {LearningRateSegmentation}.");
        Require(LearningRateDiscriminator > 0 && double.IsFinite(LearningRateDiscriminator), $"--lr-disc must be positive, got {LearningRateDiscriminator}.");
        Require(LearningRateSegmentationAdversarial is null or >= 0 and < double.PositiveInfinity, $"--lr-seg-adversarial must be 0 (the control arm) or positive, got {LearningRateSegmentationAdversarial}.");
        Require(DropoutP is >= 0 and < 1, $"--dropout must be in [0, 1), got {DropoutP}.");
        Require(LogEvery is >= 1 and <= MaxLogEvery, $"--log-every must be from 1 to {MaxLogEvery}, got {LogEvery}.");
        Require(CheckpointEvery > TimeSpan.Zero && CheckpointEvery.TotalMinutes <= MaxCheckpointMinutes, $"--checkpoint-minutes must be above 0 and at most {MaxCheckpointMinutes}.");
    }

    internal NetworkOptions NetworkOptions(Engine.Autograd.RandomStream random) => new() { DropoutP = DropoutP, Random = random, Seed = Seed };
}
