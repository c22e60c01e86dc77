using System.CommandLine;
using BrainSeg.Mri;
using BrainSeg.Mri.Labels;
using BrainSeg.Mri.Phantom;
using BrainSeg.Seg.Experiments;

namespace BrainSeg.Cli.Commands;

/// <summary>
/// `brainseg demo [--out DIR] [--data IMAGE:LABELS --label-map ...]`: the whole pipeline in one command. Without
/// --data it trains on two synthetic phantoms and tests on three others, at settings that finish in minutes on
/// two CPU cores; with --data it holds out a slab of the given subject (or --exclude-slices) as the test.
/// </summary>
internal static class DemoCommand
{
    public const int PhantomSize = 40;

    public static Command Create()
    {
        var output = new Option<string>("--out", "-o") { Description = "Report folder", DefaultValueFactory = _ => "demo-out" };
        var data = new Option<string?>("--data") { Description = "A real subject as IMAGE:LABELS (needs --label-map); default: the built-in synthetic phantoms" };
        var labelMap = new Option<string?>("--label-map") { Description = $"Source labels to classes for --data: a preset ({string.Join(", ", LabelTable.PresetNames)}) or a .tsv table" };
        var options = SharedOptions.Create();
        var command = new Command("demo", "Run the whole experiment end to end (synthetic phantoms by default) and print where the report is");
        command.Options.Add(output);
        command.Options.Add(data);
        command.Options.Add(labelMap);
        options.AddTo(command);
        command.SetAction(parsed =>
        {
            var stdout = parsed.InvocationConfiguration.Output;
            string? subject = parsed.GetValue(data);
            if (subject is null)
            {
                // The phantoms need neither a label map nor a slab; saying so beats ignoring the option.
                foreach (Option o in new Option[] { labelMap, options.Exclude })
                    if (parsed.GetResult(o) is { Implicit: false })
                        throw new BadInputException($"{o.Name} applies to a real subject given with --data IMAGE:LABELS; the built-in phantoms need none. Drop {o.Name} or add --data.");
                var settings = options.Read(parsed, defaultEpochs: 1, defaultPatches: 45);
                var train = new[] { 1UL, 2UL }.Select(Phantom).ToList();
                var test = new[] { 3UL, 4UL, 5UL }.Select(Phantom).ToList();
                stdout.WriteLine($"Demo on synthetic phantoms ({PhantomSize}³ voxels of 1 mm): training on seeds 1-2, testing on seeds 3-5.");
                return SharedOptions.RunExperiment(parsed, options, train, test, SyntheticPhantom.ClassNames, parsed.GetValue(output)!, settings,
                    $"synthetic phantoms ({PhantomSize}^3, 1 mm), training seeds 1-2, test seeds 3-5");
            }
            string map = parsed.GetValue(labelMap) ?? throw new BadInputException("--data needs --label-map (source labels to classes), e.g. freesurfer-to-adult6.");
            var table = LabelTable.Load(map);
            var image = ExperimentCommand.Load(subject, table);
            var real = options.Read(parsed);
            var slab = options.ExcludedSlices(parsed) ?? MiddleSlab(image, real);
            var (training, heldOut) = ExperimentRunner.HoldOutSlab(image, real.Plane, slab.First, slab.Last);
            stdout.WriteLine($"Demo on {subject}: slices {slab.First}..{slab.Last} ({real.Plane.ToString().ToLowerInvariant()}) held out for testing, never sampled in training.");
            return SharedOptions.RunExperiment(parsed, options, training, [heldOut], table.ClassNames, parsed.GetValue(output)!, real,
                $"{subject}, label map {table.Name}, held-out slices {slab.First}..{slab.Last}");
        });
        return command;
    }

    static LabelledImage Phantom(ulong seed)
    {
        var p = SyntheticPhantom.Generate(PhantomSize, seed);
        return new LabelledImage($"phantom{seed}", p.Image, p.Classes);
    }

    /// <summary>Eight slices through the middle of the brain (the extent of the non-background labels).</summary>
    static (int First, int Last) MiddleSlab(LabelledImage image, ExperimentOptions options)
    {
        int axis = BrainSeg.Mri.Geometry.Orientation.SliceAxis(image.Image.Affine, options.Plane);
        int low = int.MaxValue, high = -1;
        for (int z = 0; z < image.Image.SizeZ; z++)
            for (int y = 0; y < image.Image.SizeY; y++)
                for (int x = 0; x < image.Image.SizeX; x++)
                    if (image.Classes[image.Image.IndexOf(x, y, z)] != 0)
                    {
                        int at = axis == 0 ? x : axis == 1 ? y : z;
                        low = Math.Min(low, at);
                        high = Math.Max(high, at);
                    }
        if (high < 0) throw new BadInputException($"{image.Id} has no labelled voxels under the label map; check --label-map.");
        int middle = (low + high) / 2;
        return (middle - 4, middle + 3);
    }
}
