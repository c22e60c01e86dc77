using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using BrainSeg.Mri;
using BrainSeg.Mri.Labels;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Mri.Phantom;
using BrainSeg.Seg.Data;
using BrainSeg.Seg.Experiments;
using BrainSeg.Seg.Training;

namespace BrainSeg.Cli.Commands;

/// <summary>
/// `brainseg demo [--out DIR] [--data IMAGE:LABELS --label-map ...]`: the whole pipeline in one command. Without
/// --data it trains on two synthetic phantoms, validates on a third and tests on three others, at settings that
/// finish within minutes on two CPU cores; with --data it holds out a slab of the given subject (or
/// --exclude-slices) as the test.
/// </summary>
internal static class DemoCommand
{
    public const int PhantomSize = 40;

    /// <summary>
    /// The demo's protocol: the paper's rates and schedule with far fewer patches, so that both networks in all three
    /// arms train, validate, segment and report in about 3.5 minutes on two CPU cores.
    /// </summary>
    public static TrainingOptions Settings { get; } = TrainingOptions.Paper with { Epochs = 3, PatchesPerClass = 45, Batch = 30, LogEvery = 1 };

    public static string ScaleNote(TrainingOptions o) =>
        $"**What the demo shows.** The demo's settings are chosen to end within minutes on two CPU cores: {o.Epochs} epochs of {o.PatchesPerClass} patches per class per " +
        $"image at batch {o.Batch} (the paper: {TrainingOptions.Paper.Epochs} epochs of {TrainingOptions.Paper.PatchesPerClass}, batch {TrainingOptions.Paper.Batch}), on {PhantomSize}³ synthetic phantoms " +
        "whose six classes are shaped and contrasted so that a 21×21-output network can learn them. It shows the whole pipeline working end to end: " +
        "training in three arms with validation curves, whole-volume segmentation, evaluation, paired tests and figures. It does not show whether adversarial " +
        "training helps: the networks are far from converged, the phantoms are not brains, and three test images give the t-tests little power.";

    public static Command Create()
    {
        var output = new Option<string>("--out", "-o") { Description = "Report folder", DefaultValueFactory = _ => "demo-out" };
        var data = new Option<string?>("--data") { Description = "A real subject as IMAGE:LABELS (needs --label-map); default: the built-in synthetic phantoms" };
        var labelMap = new Option<string?>("--label-map") { Description = $"Source labels to classes for --data: a preset ({string.Join(", ", LabelTable.PresetNames)}) or a .tsv table" };
        var options = SharedOptions.Create(Settings, "the demo's");
        var command = new Command("demo", "Run the whole experiment end to end (synthetic phantoms by default) and print where the report is and how long it took");
        command.Options.Add(output);
        command.Options.Add(data);
        command.Options.Add(labelMap);
        options.AddTo(command);
        command.SetAction(parsed =>
        {
            var stdout = parsed.InvocationConfiguration.Output;
            var wall = Stopwatch.StartNew();
            var settings = options.Read(parsed);
            settings = settings with { ScaleNote = ScaleNote(settings.Training) };
            string? subject = parsed.GetValue(data);
            int code;
            if (subject is null)
            {
                // The phantoms need neither a label map nor a slab; saying so beats ignoring the option.
                foreach (Option o in new Option[] { labelMap, options.Exclude })
                    if (parsed.GetResult(o) is { Implicit: false })
                        throw new BadInputException($"{o.Name} applies to a real subject given with --data IMAGE:LABELS; the built-in phantoms need none. Drop {o.Name} or add --data.");
                var train = new[] { 1UL, 2UL }.Select(Phantom).ToList();
                var test = new[] { 3UL, 4UL, 5UL }.Select(Phantom).ToList();
                settings = settings with { Validation = new Validation(Phantom(6), SyntheticPhantom.ClassNames, IntensityNormalisation.Default, settings.Training.Plane, parsed.GetValue(options.ValidationEvery)) };
                stdout.WriteLine($"Demo on synthetic phantoms ({PhantomSize}³ voxels of 1 mm): training on seeds 1-2, validating on seed 6, testing on seeds 3-5.");
                code = SharedOptions.RunExperiment(parsed, options, train, test, SyntheticPhantom.ClassNames, parsed.GetValue(output)!, settings,
                    $"synthetic phantoms ({PhantomSize}^3, 1 mm), training seeds 1-2, validation seed 6, test seeds 3-5");
            }
            else
            {
                string map = parsed.GetValue(labelMap) ?? throw new BadInputException("--data needs --label-map (source labels to classes), e.g. freesurfer-to-adult6.");
                var table = LabelTable.Load(map);
                var image = LabelledImage.Load(subject, table);
                var plane = settings.Training.Plane;
                var slab = options.Slices(parsed, options.Exclude) ?? Slabs.Centred(Slabs.LabelledExtent(image, plane), 8);
                var (training, heldOut) = Slabs.HoldOut(image, plane, slab.First, slab.Last);
                stdout.WriteLine($"Demo on {subject}: slices {slab.First}..{slab.Last} ({plane.ToString().ToLowerInvariant()}) held out for testing, never sampled in training.");
                code = SharedOptions.RunExperiment(parsed, options, training, [heldOut], table.ClassNames, parsed.GetValue(output)!, settings,
                    $"{subject}, label map {table.Name}, held-out slices {slab.First}..{slab.Last}");
            }
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Demo wall time: {wall.Elapsed.TotalSeconds:F0} s ({wall.Elapsed:m\\:ss})."));
            return code;
        });
        return command;
    }

    static LabelledImage Phantom(ulong seed)
    {
        var p = SyntheticPhantom.Generate(PhantomSize, seed);
        return new LabelledImage($"phantom{seed}", p.Image, p.Classes);
    }
}
