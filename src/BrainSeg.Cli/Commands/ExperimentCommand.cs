using System.CommandLine;
using System.Globalization;
using BrainSeg.Cli.Common;
using BrainSeg.Engine;
using BrainSeg.Mri;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.IO;
using BrainSeg.Mri.Labels;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Seg.Data;
using BrainSeg.Seg.Experiments;
using BrainSeg.Seg.Training;

namespace BrainSeg.Cli.Commands;

/// <summary>
/// `brainseg experiment --train IMG:LABELS... [--test IMG:LABELS...] --label-map ... --out DIR [--nets fcn,dilated] [--arms ...] [--quick] [--exclude-slices a:b] [--val ...]`:
/// the paper's protocol (each network in each arm, segment, evaluate, compare) with a report folder.
/// </summary>
internal static class ExperimentCommand
{
    public static Command Create() => Create(SharedOptions.Create(TrainingOptions.Paper, "the paper's"));

    internal static Command Create(SharedOptions options)
    {
        var train = new Option<string[]>("--train") { Description = "Training images as IMAGE:LABELS pairs (NIfTI or MGZ on one grid)", Required = true, AllowMultipleArgumentsPerToken = true };
        var test = new Option<string[]>("--test") { Description = "Test images as IMAGE:LABELS pairs; with --exclude-slices leave it out (the held-out slab is the test)", AllowMultipleArgumentsPerToken = true };
        var labelMap = new Option<string>("--label-map") { Description = $"Source labels to classes: a preset ({string.Join(", ", LabelTable.PresetNames)}) or a .tsv table", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Report folder: report.md, results.csv, comparison-NET-ARM-vs-adversarial.csv, figures, runs/", Required = true };
        var paper = TrainingOptions.Paper;
        var command = new Command("experiment",
            "Run the paper's protocol: each network in each arm (baseline, control, adversarial), segment and evaluate the test images, compare with paired t-tests, write a report. " +
            $"The defaults are the paper's ({paper.Epochs} epochs × {paper.PatchesPerClass:N0} patches per class per image, minibatch {paper.Batch} = 3 × {paper.Batch / 3}, RMSprop {paper.LearningRateSegmentation:0e0} / {paper.LearningRateDiscriminator:0e0}). " +
            $"What that costs, for one training image of 7 classes, both networks and three arms: {ExperimentOptions.Cost(paper, 7, 1, 6)}. --quick is a smoke run.");
        foreach (Option o in new Option[] { train, test, labelMap, output })
            command.Options.Add(o);
        options.AddTo(command);
        command.SetAction(parsed =>
        {
            var table = LabelTable.Load(parsed.GetValue(labelMap)!);
            var trainImages = parsed.GetValue(train)!.Select(p => LabelledImage.Load(p, table)).ToList();
            var testImages = (parsed.GetValue(test) ?? []).Select(p => LabelledImage.Load(p, table)).ToList();
            var settings = options.Read(parsed);
            var plane = settings.Training.Plane;
            var slab = options.Slices(parsed, options.Exclude);
            var valSlab = options.Slices(parsed, options.ValidationSlices);
            LabelledImage? validation = parsed.GetValue(options.Validation) is { } valPair ? LabelledImage.Load(valPair, table) : null;
            if (validation is not null && valSlab is not null)
                throw new BadInputException("Give --val IMAGE:LABELS or --val-slices a:b, not both.");
            if (slab is not null || valSlab is not null)
            {
                if (trainImages.Count != 1)
                    throw new BadInputException("--exclude-slices and --val-slices are for single-subject experiments: give exactly one --train IMAGE:LABELS.");
                var heldOutSlabs = new[] { slab, valSlab }.OfType<(int, int)>().ToList();
                (trainImages, var heldOut) = Slabs.HoldOut(trainImages[0], plane, heldOutSlabs);
                if (slab is not null)
                {
                    if (testImages.Count != 0)
                        throw new BadInputException("--exclude-slices holds out the test slab: leave out --test.");
                    testImages = [heldOut[0]];
                }
                if (valSlab is not null) validation = heldOut[^1];
            }
            if (testImages.Count == 0)
                throw new BadInputException("Give --test IMAGE:LABELS images, or --exclude-slices a:b to hold out a slab of the one training image.");
            if (validation is not null)
                settings = settings with { Validation = new Validation(validation, table.ClassNames, IntensityNormalisation.Default, plane, parsed.GetValue(options.ValidationEvery), connectivity: settings.Connectivity) };
            string data = $"train {string.Join(", ", parsed.GetValue(train)!)}; test {string.Join(", ", (parsed.GetValue(test) ?? []).DefaultIfEmpty("held-out slab"))}; label map {table.Name}";
            return SharedOptions.RunExperiment(parsed, options, trainImages, testImages, table.ClassNames, parsed.GetValue(output)!, settings, data);
        });
        return command;
    }
}

/// <summary>The training and evaluation settings that experiment and demo share; each command gives its own defaults.</summary>
internal sealed class SharedOptions
{
    private SharedOptions(TrainingOptions defaults, string name)
    {
        Defaults = defaults;
        var quick = ExperimentOptions.Quick;
        Epochs = Opt.OptionalInt("--epochs", $"Epochs per run (default {defaults.Epochs}, {name}; {quick.Epochs} with --quick)", 1, TrainingOptions.MaxEpochs);
        PatchesPerClass = Opt.OptionalInt("--patches-per-class", $"N: patches per class per training image in an epoch (default {defaults.PatchesPerClass:N0}; {quick.PatchesPerClass} with --quick)", 1, TrainingOptions.MaxPatchesPerClass);
        Batch = Opt.OptionalInt("--batch", $"Patches per iteration, a multiple of 3: the adversarial schedule's minibatches for Ls, Ld and La (default {defaults.Batch}; {quick.Batch} with --quick)", 3, TrainingOptions.MaxBatch);
        Quick = new("--quick") { Description = $"Smoke run: {quick.Epochs} epoch of {quick.PatchesPerClass} patches per class per image, batch {quick.Batch}" };
    }

    public TrainingOptions Defaults { get; }
    public Option<string> Nets { get; } = new("--nets") { Description = "Networks to run, comma-separated: fcn, dilated", DefaultValueFactory = _ => "fcn,dilated" };
    public Option<string> Arms { get; } = new("--arms") { Description = "Arms to run, comma-separated: baseline (Ls alone), control (the adversarial schedule with θs's La rate 0), adversarial", DefaultValueFactory = _ => "baseline,control,adversarial" };
    public Option<bool> Quick { get; }
    public Option<int?> Epochs { get; }
    public Option<int?> PatchesPerClass { get; }
    public Option<int?> Batch { get; }
    public Option<string> Plane { get; } = Opt.Choice("--plane", "Plane of training and segmentation", "axial", "axial", "coronal", "sagittal");
    public Option<string> Connectivity { get; } = Opt.Choice("--connectivity", "Connectivity of the 3-D components: 6, 18 or 26", "6", "6", "18", "26");
    public Option<string?> Exclude { get; } = new("--exclude-slices") { Description = "a:b — hold out slices a..b (inclusive, in --plane) of the single training image; they are never sampled and form the test set" };
    public Option<string?> Validation { get; } = new("--val") { Description = "IMAGE:LABELS segmented during training (mean Dice and 3-D components in log.csv and curve.png)", HelpName = "IMAGE:LABELS" };
    public Option<string?> ValidationSlices { get; } = new("--val-slices") { Description = $"a:b — validate on slices a..b of the single training image instead, held out of training and disjoint from --exclude-slices (at most {Seg.Training.Validation.DefaultMaxSlices} central slices are scored)" };
    public Option<int> ValidationEvery { get; } = Opt.Int("--val-every", $"Validate every K iterations (0: about {Seg.Training.Validation.DefaultPassesPerRun} times per run) and at the end", 0, TrainingOptions.MaxLogEvery, 0);
    public Option<ulong> Seed { get; } = Opt.Seed("--seed", "Seed of weights, dropout and sampling", 1);
    public Option<int> Threads { get; } = Devices.ThreadsOption();
    public Option<string> Device { get; } = DeviceOption.Create();

    public GpuMathOptions MathOptions { get; } = new();

    public static SharedOptions Create(TrainingOptions defaults, string name) => new(defaults, name);

    public void AddTo(Command command)
    {
        foreach (Option o in new Option[] { Nets, Arms, Quick, Epochs, PatchesPerClass, Batch, Plane, Connectivity, Exclude, Validation, ValidationSlices, ValidationEvery, Seed, Threads, Device })
            command.Options.Add(o);
        MathOptions.AddTo(command);
    }

    public ExperimentOptions Read(ParseResult parsed)
    {
        var nets = parsed.GetValue(Nets)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(n => n switch
        {
            "fcn" => NetworkKind.Fcn,
            "dilated" => NetworkKind.Dilated,
            _ => throw new BadInputException($"--nets: unknown network \"{n}\"; use fcn, dilated or fcn,dilated."),
        }).Distinct().ToArray();
        if (nets.Length == 0) throw new BadInputException("--nets names no network; use fcn, dilated or fcn,dilated.");
        var arms = parsed.GetValue(Arms)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(TrainingOptions.ParseArm).Distinct().ToArray();
        if (arms.Length == 0) throw new BadInputException("--arms names no arm; use baseline, control and/or adversarial, comma-separated.");
        var start = parsed.GetValue(Quick) ? ExperimentOptions.Quick : Defaults;
        var training = start with
        {
            Epochs = parsed.GetValue(Epochs) ?? start.Epochs,
            PatchesPerClass = parsed.GetValue(PatchesPerClass) ?? start.PatchesPerClass,
            Batch = parsed.GetValue(Batch) ?? start.Batch,
            Seed = parsed.GetValue(Seed),
            Plane = Orientation.ParsePlane(parsed.GetValue(Plane)!),
        };
        if (training.Batch < 3 || training.Batch % 3 != 0) throw new BadInputException($"--batch must be a positive multiple of 3 (adversarial minibatches for Ls, Ld and La), got {training.Batch}.");
        if (parsed.GetValue(Threads) < 0) throw new BadInputException($"--threads must be 0 (all cores) or positive, got {parsed.GetValue(Threads)}.");
        training.ForArm(Arm.Adversarial).Validate();
        return new ExperimentOptions { Networks = nets, Arms = arms, Training = training, Connectivity = int.Parse(parsed.GetValue(Connectivity)!, CultureInfo.InvariantCulture) };
    }

    /// <summary>The a:b range of <paramref name="option"/>, or null when it was not given.</summary>
    public (int First, int Last)? Slices(ParseResult parsed, Option<string?> option)
    {
        string? text = parsed.GetValue(option);
        if (text is null) return null;
        var parts = text.Split(':');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int a)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int b) && a <= b)
            return (a, b);
        throw new BadInputException($"{option.Name} \"{text}\" is not a:b with a ≤ b (slice numbers from 0, inclusive), e.g. 120:135.");
    }

    internal static int RunExperiment(ParseResult parsed, SharedOptions options, List<LabelledImage> train, List<LabelledImage> test,
        IReadOnlyList<string> classNames, string outDirectory, ExperimentOptions settings, string data)
    {
        var stdout = parsed.InvocationConfiguration.Output;
        OutputGuard.CheckFolder(outDirectory);
        using IBackend backend = Devices.Open(parsed.GetValue(options.Device)!, parsed.GetValue(options.Threads), options.MathOptions.Read(parsed));
        var result = ExperimentRunner.Run(backend, train, test, classNames, IntensityNormalisation.Default, outDirectory, settings, Figures(stdout), stdout, data);
        foreach (var network in result.Networks)
        {
            stdout.WriteLine();
            stdout.WriteLine(network.Network == NetworkKind.Fcn ? "Fully convolutional network" : "Dilated network");
            foreach (var (_, _, comparison) in network.Comparisons)
                stdout.WriteLine(comparison.ToText());
        }
        stdout.WriteLine();
        stdout.WriteLine($"Report: {Path.GetFullPath(result.ReportPath)}");
        return ExitCodes.Success;
    }

    internal static ExperimentFigures Figures(TextWriter log) => new(
        TrainingCurve: (csv, png) =>
        {
            try { TrainingCurve.Write(csv, png); return true; }
            catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or IOException)
            {
                log.WriteLine($"note: no training curve {png} ({e.GetType().Name}).");
                return false;
            }
        },
        DiceBoxplot: (title, classes, groups, marks, png) => DiceBoxplot.TryWrite(title, classes, groups, marks, png, log));
}
