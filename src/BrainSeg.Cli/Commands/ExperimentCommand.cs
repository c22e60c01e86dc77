using System.CommandLine;
using System.Globalization;
using BrainSeg.Cli.Common;
using BrainSeg.Engine;
using BrainSeg.Mri;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.IO;
using BrainSeg.Mri.Labels;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Seg.Experiments;
using BrainSeg.Seg.Training;

namespace BrainSeg.Cli.Commands;

/// <summary>
/// `brainseg experiment --train IMG:LABELS... [--test IMG:LABELS...] --label-map ... --out DIR [--nets fcn,dilated] [--quick] [--exclude-slices a:b]`:
/// the paper's protocol (each network without and with adversarial training, segment, evaluate, compare) with a report folder.
/// </summary>
internal static class ExperimentCommand
{
    public static Command Create()
    {
        var train = new Option<string[]>("--train") { Description = "Training images as IMAGE:LABELS pairs (NIfTI or MGZ on one grid)", Required = true, AllowMultipleArgumentsPerToken = true };
        var test = new Option<string[]>("--test") { Description = "Test images as IMAGE:LABELS pairs; with --exclude-slices leave it out (the held-out slab is the test)", AllowMultipleArgumentsPerToken = true };
        var labelMap = new Option<string>("--label-map") { Description = $"Source labels to classes: a preset ({string.Join(", ", LabelTable.PresetNames)}) or a .tsv table", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Report folder: report.md, results.csv, comparison-NET.csv, figures, runs/", Required = true };
        var options = SharedOptions.Create();
        var command = new Command("experiment", "Run the paper's protocol: each network without and with adversarial training, segment and evaluate the test images, compare with paired t-tests, write a report");
        foreach (Option o in new Option[] { train, test, labelMap, output })
            command.Options.Add(o);
        options.AddTo(command);
        command.SetAction(parsed =>
        {
            var table = LabelTable.Load(parsed.GetValue(labelMap)!);
            var trainImages = parsed.GetValue(train)!.Select(p => Load(p, table)).ToList();
            var testImages = (parsed.GetValue(test) ?? []).Select(p => Load(p, table)).ToList();
            var settings = options.Read(parsed);
            if (options.ExcludedSlices(parsed) is { } slab)
            {
                if (trainImages.Count != 1 || testImages.Count != 0)
                    throw new BadInputException("--exclude-slices is for single-subject experiments: give exactly one --train IMAGE:LABELS and no --test (the held-out slab is the test).");
                (trainImages, var heldOut) = ExperimentRunner.HoldOutSlab(trainImages[0], settings.Plane, slab.First, slab.Last);
                testImages = [heldOut];
            }
            if (testImages.Count == 0)
                throw new BadInputException("Give --test IMAGE:LABELS images, or --exclude-slices a:b to hold out a slab of the one training image.");
            string data = $"train {string.Join(", ", parsed.GetValue(train)!)}; test {string.Join(", ", (parsed.GetValue(test) ?? []).DefaultIfEmpty("held-out slab"))}; label map {table.Name}";
            return SharedOptions.RunExperiment(parsed, options, trainImages, testImages, table.ClassNames, parsed.GetValue(output)!, settings, data);
        });
        return command;
    }

    internal static LabelledImage Load(string pair, LabelTable table)
    {
        int split = pair.LastIndexOf(':');
        if (split <= 0 || split == pair.Length - 1)
            throw new BadInputException($"\"{pair}\" is not IMAGE:LABELS; give the image and its label map joined by a colon, e.g. t1.nii.gz:aseg.nii.gz.");
        string imagePath = pair[..split], labelPath = pair[(split + 1)..];
        var image = ImageReader.ReadVolume(imagePath);
        InputWarnings.NonFinite(imagePath, image.Voxels);
        var labels = ImageReader.ReadVolume(labelPath);
        if (!image.SameGridAs(labels))
            throw new BadInputException($"{imagePath} and {labelPath} are on different grids; the label map must share the image's shape and affine.");
        string id = Path.GetFileName(imagePath);
        foreach (var ext in new[] { ".nii.gz", ".nii", ".mgz", ".mgh" })
            if (id.EndsWith(ext, StringComparison.OrdinalIgnoreCase)) { id = id[..^ext.Length]; break; }
        string folder = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(imagePath))) ?? "";
        return new LabelledImage(folder.Length > 0 ? $"{folder}-{id}" : id, image, table.Apply(labels.Voxels, labelPath));
    }
}

/// <summary>The training and evaluation settings that experiment and demo share.</summary>
internal sealed class SharedOptions
{
    public Option<string> Nets { get; } = new("--nets") { Description = "Networks to run, comma-separated: fcn, dilated", DefaultValueFactory = _ => "fcn,dilated" };
    public Option<bool> Quick { get; } = new("--quick") { Description = "Smoke-test settings: 1 epoch, 60 patches per class" };
    public Option<int?> Epochs { get; } = Opt.OptionalInt("--epochs", "Epochs per run (default 2; 1 with --quick)", 1, TrainingOptions.MaxEpochs);
    public Option<int?> PatchesPerClass { get; } = Opt.OptionalInt("--patches-per-class", "Patches per class per training image in an epoch (default 300; 60 with --quick)", 1, TrainingOptions.MaxPatchesPerClass);
    public Option<int> Batch { get; } = Opt.Int("--batch", "Patches per iteration, a multiple of 3", 3, TrainingOptions.MaxBatch, 30);
    public Option<string> Plane { get; } = Opt.Choice("--plane", "Plane of training and segmentation", "axial", "axial", "coronal", "sagittal");
    public Option<string> Connectivity { get; } = Opt.Choice("--connectivity", "Connectivity of the 3-D components: 6, 18 or 26", "6", "6", "18", "26");
    public Option<string?> Exclude { get; } = new("--exclude-slices") { Description = "a:b — hold out slices a..b (inclusive, in --plane) of the single training image; they are never sampled and form the test set" };
    public Option<ulong> Seed { get; } = Opt.Seed("--seed", "Seed of weights, dropout and sampling", 1);
    public Option<string> Device { get; } = DeviceOption.Create();

    public static SharedOptions Create() => new();

    public void AddTo(Command command)
    {
        foreach (Option o in new Option[] { Nets, Quick, Epochs, PatchesPerClass, Batch, Plane, Connectivity, Exclude, Seed, Device })
            command.Options.Add(o);
    }

    public ExperimentOptions Read(ParseResult parsed, int defaultEpochs = 2, int defaultPatches = 300)
    {
        bool quick = parsed.GetValue(Quick);
        var nets = parsed.GetValue(Nets)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(n => n switch
        {
            "fcn" => NetworkKind.Fcn,
            "dilated" => NetworkKind.Dilated,
            _ => throw new BadInputException($"--nets: unknown network \"{n}\"; use fcn, dilated or fcn,dilated."),
        }).Distinct().ToArray();
        if (nets.Length == 0) throw new BadInputException("--nets names no network; use fcn, dilated or fcn,dilated.");
        int batch = parsed.GetValue(Batch);
        if (batch % 3 != 0) throw new BadInputException($"--batch must be a positive multiple of 3 (adversarial minibatches for Ls, Ld and La), got {batch}.");
        int epochs = parsed.GetValue(Epochs) ?? (quick ? 1 : defaultEpochs);
        int patches = parsed.GetValue(PatchesPerClass) ?? (quick ? 60 : defaultPatches);
        return new ExperimentOptions
        {
            Networks = nets,
            Epochs = epochs,
            PatchesPerClass = patches,
            Batch = batch,
            Seed = parsed.GetValue(Seed),
            Plane = Orientation.ParsePlane(parsed.GetValue(Plane)!),
            Connectivity = int.Parse(parsed.GetValue(Connectivity)!, CultureInfo.InvariantCulture),
        };
    }

    public (int First, int Last)? ExcludedSlices(ParseResult parsed)
    {
        string? text = parsed.GetValue(Exclude);
        if (text is null) return null;
        var parts = text.Split(':');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int a)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int b) && a <= b)
            return (a, b);
        throw new BadInputException($"--exclude-slices \"{text}\" is not a:b with a ≤ b (slice numbers from 0, inclusive), e.g. 120:135.");
    }

    internal static int RunExperiment(ParseResult parsed, SharedOptions options, List<LabelledImage> train, List<LabelledImage> test,
        IReadOnlyList<string> classNames, string outDirectory, ExperimentOptions settings, string data)
    {
        var stdout = parsed.InvocationConfiguration.Output;
        OutputGuard.CheckFolder(outDirectory);
        using IBackend backend = Devices.Open(parsed.GetValue(options.Device)!);
        var result = ExperimentRunner.Run(backend, train, test, classNames, IntensityNormalisation.Default, outDirectory, settings, Figures(stdout), stdout, data);
        foreach (var (network, _, _, comparison) in result.Networks)
        {
            stdout.WriteLine();
            stdout.WriteLine(network == NetworkKind.Fcn ? "Fully convolutional network" : "Dilated network");
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
        DiceBoxplot: (title, classes, without, with, marks, png) => DiceBoxplot.TryWrite(title, classes, without, with, marks, png, log));
}
