using System.CommandLine;
using System.Globalization;
using BrainSeg.Cli.Common;
using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.Labels;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Seg.Data;
using BrainSeg.Seg.Training;
using Spectre.Console;

namespace BrainSeg.Cli.Commands;

/// <summary>
/// `brainseg train`: the baseline or adversarial scheme of the paper from the command line, with
/// safetensors checkpoints, --resume, a progress bar, RUN_DIR/log.csv and a training-curve PNG.
/// </summary>
internal static class TrainCommand
{
    /// <summary>Patches per class per image of a --quick smoke run (raised so that an epoch holds 3 iterations).</summary>
    public const int QuickPatchesPerClass = 20;

    /// <summary>N for a --quick run: 20, or enough for three minibatches of --batch from the data at hand.</summary>
    internal static int QuickPatches(int batch, int classes, int images) =>
        Math.Max(QuickPatchesPerClass, (3 * batch + classes * images - 1) / (classes * images));

    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "Training data: a dataset folder (MRBrainS13 or MICCAI 2012 layout), a manifest.csv (image,label,split), an image (NIfTI or MGZ) with --labels, or 'phantom' (the built-in synthetic brain).", HelpName = "folder|manifest.csv|image|phantom" };
        var labels = new Option<string?>("--labels") { Description = "The label map of the --data image, on the same grid.", HelpName = "labels.nii.gz" };
        var labelMap = new Option<string?>("--label-map") { Description = $"Source labels to classes: a preset ({string.Join(", ", LabelTable.PresetNames)}) or a TSV of 'label-or-range<TAB>class' lines.", HelpName = "preset|file.tsv" };
        var normalisation = new Option<string>("--normalisation") { Description = "Image intensities: percentile[:LOW:HIGH] (brain percentiles to 0 and 1) or zscore.", DefaultValueFactory = _ => IntensityNormalisation.Default.ToString() };
        var net = new Option<string>("--net") { Description = "Segmentation network: fcn (15 conv layers, 51×51 input) or dilated (87×87 input).", DefaultValueFactory = _ => "dilated" };
        net.AcceptOnlyFromAmong("fcn", "dilated");
        var adversarial = new Option<bool>("--adversarial") { Description = "Alternate Ls, Ld and La updates (paper section 2.3) instead of Ls alone." };
        var output = new Option<string>("--out", "-o") { Description = "Run folder: checkpoint.safetensors, model.safetensors, log.csv, curve.png.", HelpName = "RUN_DIR" };
        var d = new TrainingOptions();
        var epochs = new Option<int>("--epochs") { Description = "Epochs.", DefaultValueFactory = _ => d.Epochs };
        var perClass = new Option<int?>("--patches-per-class") { Description = $"N: patches per class per image in an epoch (default {d.PatchesPerClass}; {QuickPatchesPerClass} with --quick)." };
        var batch = new Option<int>("--batch") { Description = "Patches per iteration (adversarial: three minibatches of a third for Ls, Ld and La).", DefaultValueFactory = _ => d.Batch };
        var lrSeg = new Option<double>("--lr-seg") { Description = "RMSprop rate of the segmentation loss Ls.", DefaultValueFactory = _ => d.LearningRateSegmentation };
        var lrDisc = new Option<double>("--lr-disc") { Description = "RMSprop rate of the discriminator losses Ld and La.", DefaultValueFactory = _ => d.LearningRateDiscriminator };
        var lrSegAdv = new Option<double?>("--lr-seg-adversarial") { Description = "Rate at which θs ascends La (default: --lr-disc, the literal reading; 1e-3 is the other; 0 with --adversarial is the control arm: the adversarial schedule without its gradient)." };
        var nonSaturating = new Option<bool>("--non-saturating") { Description = "θs descends La with flipped labels instead of ascending it (not the paper's)." };
        var ldGenerated = new Option<bool>("--ld-with-generated") { Description = "Ld minibatches also hold generated segmentations labelled generated (not the paper's wording)." };
        var seed = new Option<ulong>("--seed") { Description = "Seed of weights, dropout and patch sampling.", DefaultValueFactory = _ => d.Seed };
        var device = DeviceOption.Create();
        var plane = new Option<string>("--plane") { Description = "Plane of the 2-D patches.", DefaultValueFactory = _ => "axial" };
        plane.AcceptOnlyFromAmong("axial", "coronal", "sagittal");
        var threads = new Option<int>("--threads") { Description = "CPU worker threads (0: one per core).", DefaultValueFactory = _ => 0 };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its last checkpoint (its options win)." };
        var quick = new Option<bool>("--quick") { Description = $"Smoke run: N = {QuickPatchesPerClass} (or enough for three minibatches) unless --patches-per-class is given." };
        var logEvery = new Option<int>("--log-every") { Description = "A log.csv row every K iterations.", DefaultValueFactory = _ => d.LogEvery };
        var validation = new Option<string?>("--val") { Description = "IMAGE:LABELS segmented during training (needs --label-map): mean Dice and 3-D components in log.csv and curve.png.", HelpName = "IMAGE:LABELS" };
        var validateEvery = new Option<int>("--val-every") { Description = $"Validate every K iterations (0: about {Validation.DefaultPassesPerRun} times per run) and at the end.", DefaultValueFactory = _ => 0 };
        var checkpointMinutes = new Option<double>("--checkpoint-minutes") { Description = "Also checkpoint this often (and at each epoch's end).", DefaultValueFactory = _ => d.CheckpointEvery.TotalMinutes };

        var command = new Command("train", "Train a segmentation network, baseline or adversarial (Moeskops et al. 2017, sections 2.3 and 3.1).");
        foreach (Option o in new Option[] { data, labels, labelMap, normalisation, net, adversarial, output, epochs, perClass, batch, lrSeg, lrDisc, lrSegAdv,
                     nonSaturating, ldGenerated, seed, device, plane, threads, resume, quick, logEvery, checkpointMinutes, validation, validateEvery })
            command.Options.Add(o);

        command.Validators.Add(result =>
        {
            if (result.GetValue(output) is null) result.AddError("--out is required: the folder that receives the checkpoints and logs.");
            if (result.GetValue(data) is null) result.AddError("--data is required: an image with --labels, or 'phantom'.");
            else if (result.GetValue(data) != "phantom" && result.GetValue(labelMap) is null)
                result.AddError("--data needs --label-map (source labels to classes): a preset or a .tsv table.");
            else if (IsImage(result.GetValue(data)!) && result.GetValue(labels) is null)
                result.AddError("--data with one image needs --labels, its label map on the same grid.");
            void Positive<T>(Option<T> o, Func<T, bool> ok) where T : notnull
            {
                var r = result.GetResult(o);
                if (r is not null && !ok(result.GetValue(o)!)) result.AddError($"{o.Name} must be positive, got {result.GetValue(o)}.");
            }
            Positive(epochs, v => v >= 1);
            Positive(batch, v => v >= 1);
            Positive(lrSeg, v => v > 0);
            Positive(lrDisc, v => v > 0);
            Positive(logEvery, v => v >= 1);
            Positive(checkpointMinutes, v => v > 0);
            if (result.GetValue(perClass) is < 1) result.AddError($"--patches-per-class must be positive, got {result.GetValue(perClass)}.");
            if (result.GetValue(lrSegAdv) is < 0) result.AddError($"--lr-seg-adversarial must be 0 (the control arm) or positive, got {result.GetValue(lrSegAdv)}.");
            if (result.GetValue(validation) is not null && result.GetValue(labelMap) is null)
                result.AddError("--val needs --label-map (source labels to classes) for its label map.");
            if (result.GetValue(validateEvery) < 0) result.AddError($"--val-every must be 0 (about {Validation.DefaultPassesPerRun} times per run) or positive, got {result.GetValue(validateEvery)}.");
            if (result.GetValue(threads) < 0) result.AddError($"--threads must be 0 (all cores) or positive, got {result.GetValue(threads)}.");
            if (result.GetValue(adversarial) && result.GetValue(batch) % 3 != 0)
                result.AddError($"--batch must be a multiple of 3 with --adversarial (minibatches for Ls, Ld and La), got {result.GetValue(batch)}.");
        });

        command.SetAction(parsed =>
        {
            var options = new TrainingOptions
            {
                Network = parsed.GetValue(net) == "fcn" ? NetworkKind.Fcn : NetworkKind.Dilated,
                Adversarial = parsed.GetValue(adversarial),
                Epochs = parsed.GetValue(epochs),
                PatchesPerClass = parsed.GetValue(perClass) ?? d.PatchesPerClass,
                Batch = parsed.GetValue(batch),
                LearningRateSegmentation = parsed.GetValue(lrSeg),
                LearningRateDiscriminator = parsed.GetValue(lrDisc),
                LearningRateSegmentationAdversarial = parsed.GetValue(lrSegAdv),
                NonSaturating = parsed.GetValue(nonSaturating),
                DiscriminatorSeesGenerated = parsed.GetValue(ldGenerated),
                Seed = parsed.GetValue(seed),
                Plane = Enum.Parse<Plane>(parsed.GetValue(plane)!, ignoreCase: true),
                LogEvery = parsed.GetValue(logEvery),
                CheckpointEvery = TimeSpan.FromMinutes(parsed.GetValue(checkpointMinutes)),
            };
            return Run(options, parsed.GetValue(data)!, parsed.GetValue(labels), parsed.GetValue(labelMap), parsed.GetValue(normalisation)!, parsed.GetValue(output)!,
                parsed.GetValue(device)!, parsed.GetValue(threads), parsed.GetValue(resume), parsed.InvocationConfiguration.Output,
                quick: parsed.GetValue(quick) && parsed.GetValue(perClass) is null, validation: parsed.GetValue(validation), validateEvery: parsed.GetValue(validateEvery));
        });
        return command;
    }

    internal static int Run(TrainingOptions options, string data, string? labels, string? labelMap, string normalisation, string runDir,
        string device, int threads, bool resume, TextWriter stdout, bool quick = false, string? validation = null, int validateEvery = 0)
    {
        options.Validate();
        var checkpoint = Path.Combine(runDir, Trainer.CheckpointFile);
        // A resumed run normalises its images as the run it continues did.
        if (resume && File.Exists(checkpoint) && Seg.Checkpoints.SafeTensors.Read(checkpoint).Metadata.TryGetValue("normalisation", out var saved))
            normalisation = saved;
        if (!resume && File.Exists(checkpoint))
            throw new ArgumentException($"{runDir} already holds a run ({Trainer.CheckpointFile}): pass --resume to continue it, or another --out.");
        if (resume && !File.Exists(checkpoint))
            throw new FileNotFoundException($"--resume: {checkpoint} does not exist; start the run without --resume.", checkpoint);
        var (source, description) = TrainingData.Load(data, labels, labelMap, IntensityNormalisation.Parse(normalisation));
        Validation? validator = null;
        if (validation is not null)
        {
            var table = LabelTable.Load(labelMap!);
            if (table.ClassCount != source.Classes)
                throw new ArgumentException($"--val: the label map gives {table.ClassCount} classes but the training data has {source.Classes}.");
            validator = new Validation(LabelledImage.Load(validation, table), table.ClassNames, IntensityNormalisation.Parse(normalisation), options.Plane, validateEvery);
        }
        if (quick) options = options with { PatchesPerClass = QuickPatches(options.Batch, source.Classes, source.ImageCount) };

        using var backend = OpenBackend(device, threads);
        using var trainer = resume
            ? Trainer.Resume(backend, source, checkpoint, description)
            : new Trainer(backend, source, options, description);
        if (trainer.IsComplete)
        {
            stdout.WriteLine($"{runDir}: the run already finished all {trainer.Options.Epochs} epochs; the model is {Path.Combine(runDir, Trainer.ModelFile)}.");
            return ExitCodes.Success;
        }
        var o = trainer.Options;
        stdout.WriteLine($"Training the {trainer.Segmenter.Title} ({TrainingOptions.ArmName(o.Arm)}) on {backend.Name}: " +
            $"{source.Classes} classes, {source.ImageCount} image(s), N = {o.PatchesPerClass}, batch {o.Batch}, {o.Epochs} epoch(s)" +
            (resume ? $", resuming at epoch {trainer.Epoch + 1} iteration {trainer.Iteration}" : "") + ".");

        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true; // finish the iteration, write a checkpoint, then exit
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        TrainingOutcome outcome;
        try
        {
            outcome = RunWithProgress(trainer, runDir, stdout, cancel.Token, validator);
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }

        if (outcome == TrainingOutcome.Interrupted)
        {
            stdout.WriteLine($"Interrupted: checkpoint written to {checkpoint}; continue with --resume.");
            return ExitCodes.Failure;
        }
        stdout.WriteLine($"Done: {Path.Combine(runDir, Trainer.ModelFile)}");
        TrainingCurve.TryWrite(Path.Combine(runDir, Trainer.LogFile), Path.Combine(runDir, "curve.png"), stdout);
        return ExitCodes.Success;
    }

    private static TrainingOutcome RunWithProgress(Trainer trainer, string runDir, TextWriter stdout, CancellationToken cancel, Validation? validation)
    {
        static string Line(TrainingProgress p)
        {
            var ci = CultureInfo.InvariantCulture;
            var adversarial = double.IsNaN(p.Last.Discriminator) ? "" : string.Create(ci, $"  Ld {p.Last.Discriminator:F4}  La {p.Last.Adversarial:F4}");
            var validated = p.LastValidation is { } v ? string.Create(ci, $"  val Dice {v.MeanDice:F3} ({v.Components} components)") : "";
            return string.Create(ci, $"epoch {p.Epoch}/{p.Epochs}  it {p.Iteration}/{p.IterationsPerEpoch}  {p.PatchesPerSecond:F1} patches/s  Ls {p.Last.Segmentation:F4}{adversarial}{validated}  ETA {(int)p.Remaining.TotalHours}:{p.Remaining:mm\\:ss}");
        }

        // A live bar on a terminal; plain lines (one per epoch and at the end) when the output is a file or pipe.
        if (Console.IsOutputRedirected || !ReferenceEquals(stdout, Console.Out))
        {
            var lastEpoch = 0;
            return trainer.Run(runDir, p =>
            {
                if (p.Epoch != lastEpoch || p.Iteration == p.IterationsPerEpoch)
                {
                    lastEpoch = p.Epoch;
                    stdout.WriteLine(Line(p));
                }
            }, cancel, validation);
        }
        var outcome = TrainingOutcome.Interrupted;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new ProgressBarColumn(), new PercentageColumn(), new TaskDescriptionColumn { Alignment = Justify.Left })
            .Start(ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: 1);
                outcome = trainer.Run(runDir, p =>
                {
                    task.MaxValue = p.TotalIterations;
                    task.Value = p.GlobalIteration;
                    task.Description = Markup.Escape(Line(p));
                }, cancel, validation);
            });
        return outcome;
    }

    internal static IBackend OpenBackend(string device, int threads) =>
        DeviceSpec.Parse(device).Kind == DeviceKind.Cpu && threads > 0 ? new CpuBackend(threads) : Devices.Open(device);

    private static bool IsImage(string path) =>
        !Directory.Exists(path) && !path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) && path != "phantom";
}
