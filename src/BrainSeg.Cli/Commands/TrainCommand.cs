using System.CommandLine;
using System.Globalization;
using BrainSeg.Cli.Common;
using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;
using BrainSeg.Mri;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.IO;
using BrainSeg.Mri.Labels;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Seg.Checkpoints;
using BrainSeg.Seg.Data;
using BrainSeg.Seg.Reports;
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
        var net = Opt.Choice("--net", "Segmentation network: fcn (15 conv layers, 51×51 input) or dilated (87×87 input).", "dilated", "fcn", "dilated");
        var adversarial = new Option<bool>("--adversarial") { Description = "Alternate Ls, Ld and La updates (paper section 2.3) instead of Ls alone." };
        var output = new Option<string>("--out", "-o") { Description = "Run folder: checkpoint.safetensors, model.safetensors, log.csv, curve.png.", HelpName = "RUN_DIR" };
        var d = new TrainingOptions();
        var epochs = Opt.Int("--epochs", "Epochs", 1, TrainingOptions.MaxEpochs, d.Epochs);
        var perClass = Opt.OptionalInt("--patches-per-class", $"N: patches per class per image in an epoch (default {d.PatchesPerClass}; {QuickPatchesPerClass} with --quick)", 1, TrainingOptions.MaxPatchesPerClass);
        var batch = Opt.Int("--batch", "Patches per iteration (adversarial: three minibatches of a third for Ls, Ld and La)", 1, TrainingOptions.MaxBatch, d.Batch);
        var lrSeg = Opt.Real("--lr-seg", "RMSprop rate of the segmentation loss Ls", 0, TrainingOptions.MaxLearningRate, d.LearningRateSegmentation, minExclusive: true);
        var lrDisc = Opt.Real("--lr-disc", "RMSprop rate of the discriminator losses Ld and La", 0, TrainingOptions.MaxLearningRate, d.LearningRateDiscriminator, minExclusive: true);
        var lrSegAdv = Opt.OptionalReal("--lr-seg-adversarial", "Rate at which θs ascends La (default: --lr-disc, the literal reading; 1e-3 is the other; 0 with --adversarial is the control arm: the adversarial schedule without its gradient)", 0, TrainingOptions.MaxLearningRate);
        var nonSaturating = new Option<bool>("--non-saturating") { Description = "θs descends La with flipped labels instead of ascending it (not the paper's)." };
        var ldGenerated = new Option<bool>("--ld-with-generated") { Description = "Ld minibatches also hold generated segmentations labelled generated (not the paper's wording)." };
        var seed = Opt.Seed("--seed", "Seed of weights, dropout and patch sampling", d.Seed);
        var device = DeviceOption.Create();
        var plane = Opt.Choice("--plane", "Plane of the 2-D patches.", "axial", "axial", "coronal", "sagittal");
        var threads = Devices.ThreadsOption();
        var resume = new Option<bool>("--resume") { Description = $"Continue the run in --out from its last checkpoint with its saved options; only {string.Join(", ", ResumeMayChange)} may be given to change them." };
        var quick = new Option<bool>("--quick") { Description = $"Smoke run: N = {QuickPatchesPerClass} (or enough for three minibatches) unless --patches-per-class is given." };
        var logEvery = Opt.Int("--log-every", "A log.csv row every K iterations", 1, TrainingOptions.MaxLogEvery, d.LogEvery);
        var validation = new Option<string?>("--val") { Description = "IMAGE:LABELS segmented during training (needs --label-map): mean Dice and 3-D components in log.csv and curve.png.", HelpName = "IMAGE:LABELS" };
        var validateEvery = Opt.Int("--val-every", $"Validate every K iterations (0: about {Validation.DefaultPassesPerRun} times per run) and at the end", 0, TrainingOptions.MaxLogEvery, 0);
        var graphs = Opt.Choice("--graphs", "on: after two eager iterations each iteration's updates are replayed as one recorded CUDA graph (the same results bit for bit, far fewer launches); off: every iteration eager. CUDA only; ignored on the CPU.", "on", "on", "off");
        var checkpointMinutes = Opt.Real("--checkpoint-minutes", "Also checkpoint this often (and at each epoch's end)", 0, TrainingOptions.MaxCheckpointMinutes, d.CheckpointEvery.TotalMinutes, minExclusive: true);

        var command = new Command("train", "Train a segmentation network, baseline or adversarial (Moeskops et al. 2017, sections 2.3 and 3.1).");
        foreach (Option o in new Option[] { data, labels, labelMap, normalisation, net, adversarial, output, epochs, perClass, batch, lrSeg, lrDisc, lrSegAdv,
                     nonSaturating, ldGenerated, seed, device, plane, threads, resume, quick, logEvery, checkpointMinutes, validation, validateEvery, graphs })
            command.Options.Add(o);
        var math = new GpuMathOptions();
        math.AddTo(command);

        command.Validators.Add(result =>
        {
            // Values that failed to parse are already errors; reading them here would throw.
            if (result.GetResult(output) is null) result.AddError("--out is required: the folder that receives the checkpoints and logs.");
            if (result.GetResult(data)?.Tokens is not [{ } dataToken]) { result.AddError("--data is required: an image with --labels, or 'phantom'."); return; }
            if (dataToken.Value != "phantom" && result.GetResult(labelMap) is null)
                result.AddError("--data needs --label-map (source labels to classes): a preset or a .tsv table.");
            else if (IsImage(dataToken.Value) && result.GetResult(labels) is null)
                result.AddError("--data with one image needs --labels, its label map on the same grid.");
            if (result.GetResult(resume) is not null)
                foreach (Option o in new Option[] { normalisation, net, adversarial, perClass, batch, lrSeg, lrDisc, lrSegAdv, nonSaturating, ldGenerated, seed, plane, quick })
                    if (result.GetResult(o) is { Implicit: false })
                        result.AddError($"{o.Name} cannot change when a run resumes (it continues with its saved options); drop it, or start a new run in another --out. With --resume only {string.Join(", ", ResumeMayChange)} may be given.");
            if (result.GetResult(validation) is not null && result.GetResult(labelMap) is null)
                result.AddError("--val needs --label-map (source labels to classes) for its label map.");
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
            if (parsed.GetValue(adversarial) && parsed.GetValue(batch) % 3 != 0)
                throw new BadInputException($"--batch must be a multiple of 3 with --adversarial (minibatches for Ls, Ld and La), got {parsed.GetValue(batch)}.");
            // A resumed run keeps its saved options except those given again that may change.
            bool Given(Option o) => parsed.GetResult(o) is { Implicit: false };
            TrainingOptions Amend(TrainingOptions saved) => saved with
            {
                Epochs = Given(epochs) ? options.Epochs : saved.Epochs,
                LogEvery = Given(logEvery) ? options.LogEvery : saved.LogEvery,
                CheckpointEvery = Given(checkpointMinutes) ? options.CheckpointEvery : saved.CheckpointEvery,
            };
            return Run(options, parsed.GetValue(data)!, parsed.GetValue(labels), parsed.GetValue(labelMap), parsed.GetValue(normalisation)!, parsed.GetValue(output)!,
                parsed.GetValue(device)!, parsed.GetValue(threads), parsed.GetValue(resume), parsed.InvocationConfiguration.Output,
                quick: parsed.GetValue(quick) && parsed.GetValue(perClass) is null, amend: Amend,
                validation: parsed.GetValue(validation), validateEvery: parsed.GetValue(validateEvery), gpuMath: math.Read(parsed),
                replaySteps: parsed.GetValue(graphs) == "on");
        });
        return command;
    }

    /// <summary>What a resumed run may change; every other option is the checkpoint's.</summary>
    internal static readonly string[] ResumeMayChange = ["--epochs", "--checkpoint-minutes", "--log-every", "--device", "--threads", "--precision", "--deterministic", "--graphs"];

    internal static int Run(TrainingOptions options, string data, string? labels, string? labelMap, string normalisation, string runDir,
        string device, int threads, bool resume, TextWriter stdout, bool quick = false,
        Func<TrainingOptions, TrainingOptions>? amend = null, string? validation = null, int validateEvery = 0, GpuMath? gpuMath = null,
        bool replaySteps = true)
    {
        options.Validate();
        Devices.CheckThreads(device, threads);
        var checkpoint = Path.Combine(runDir, Trainer.CheckpointFile);
        // The checkpoint is read when resuming; the files the run writes are never its inputs.
        OutputGuard.Check([IsImage(data) ? data : null, labels, labelMap is not null && File.Exists(labelMap) ? labelMap : null],
            new[] { Trainer.ModelFile, Trainer.LogFile, "curve.png" }.Select(f => Path.Combine(runDir, f)));
        OutputGuard.CheckFolder(runDir);
        AtomicFile.RemoveStale(runDir);
        // A resumed run normalises its images as the run it continues did.
        if (resume && File.Exists(checkpoint))
            normalisation = CheckpointMetadata.Read(SafeTensors.ReadMetadata(checkpoint), checkpoint).Normalisation.ToString();
        if (!resume && File.Exists(checkpoint))
            throw new BadInputException($"{runDir} already holds a run ({Trainer.CheckpointFile}): pass --resume to continue it, or another --out.");
        if (resume && !File.Exists(checkpoint))
            throw new FileNotFoundException($"--resume: {checkpoint} does not exist; start the run without --resume.", checkpoint);
        var (source, description) = TrainingData.Load(data, labels, labelMap, IntensityNormalisation.Parse(normalisation));
        Validation? validator = null;
        if (validation is not null)
        {
            var table = LabelTable.Load(labelMap!);
            if (table.ClassCount != source.Classes)
                throw new BadInputException($"--val: the label map gives {table.ClassCount} classes but the training data has {source.Classes}.");
            validator = new Validation(LabelledImage.Load(validation, table), table.ClassNames, IntensityNormalisation.Parse(normalisation), options.Plane, validateEvery);
        }
        if (quick) options = options with { PatchesPerClass = QuickPatches(options.Batch, source.Classes, source.ImageCount) };

        using var backend = Devices.Open(device, threads, gpuMath);
        using var trainer = resume
            ? Trainer.Resume(backend, source, checkpoint, description,
                amend: amend)
            : new Trainer(backend, source, options, description);
        trainer.ReplaySteps = replaySteps;
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
        if (trainer.ReplayRefused is { } why)
            Console.Error.WriteLine($"brainseg: note: the device would not record the iterations as a CUDA graph, so they ran eagerly: {why}");

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
            // Losses are read an iteration late, so the first line has none yet.
            var losses = double.IsNaN(p.Last.Segmentation) ? "Ls …" : string.Create(ci, $"Ls {p.Last.Segmentation:F4}{adversarial}");
            return string.Create(ci, $"epoch {p.Epoch}/{p.Epochs}  it {p.Iteration}/{p.IterationsPerEpoch}  {p.PatchesPerSecond:F1} patches/s  {losses}{validated}  ETA {(int)p.Remaining.TotalHours}:{p.Remaining:mm\\:ss}");
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

    private static bool IsImage(string path) =>
        !Directory.Exists(path) && !path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) && path != "phantom";
}
