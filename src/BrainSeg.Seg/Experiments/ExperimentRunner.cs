using System.Globalization;
using System.Text;
using BrainSeg.Engine;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Mri.Sampling;
using BrainSeg.Mri;
using BrainSeg.Seg.Evaluation;
using BrainSeg.Seg.Inference;
using BrainSeg.Seg.Networks;
using BrainSeg.Seg.Reports;
using BrainSeg.Seg.Statistics;
using BrainSeg.Seg.Training;

namespace BrainSeg.Seg.Experiments;

/// <summary>An image with its reference class map; <see cref="Slices"/> restricts evaluation to a slab (single-subject experiments).</summary>
public sealed record LabelledImage(string Id, Volume Image, byte[] Classes, (int First, int Last)? Slices = null);

/// <summary>The paper's protocol at a chosen size.</summary>
public sealed record ExperimentOptions
{
    public IReadOnlyList<NetworkKind> Networks { get; init; } = [NetworkKind.Fcn, NetworkKind.Dilated];
    public int Epochs { get; init; } = 1;
    public int PatchesPerClass { get; init; } = 200;
    public int Batch { get; init; } = 60;
    public ulong Seed { get; init; } = 1;
    public Plane Plane { get; init; } = Plane.Axial;
    public int Connectivity { get; init; } = 6;
    public int BatchSlices { get; init; } = 8;
    public double LearningRateSegmentation { get; init; } = 1e-3;
    public double LearningRateDiscriminator { get; init; } = 1e-5;
    /// <summary>Builds the segmenter instead of the paper's networks (tiny networks in tests).</summary>
    public Func<IBackend, int, NetworkOptions, SegmentationNetwork>? NetworkFactory { get; init; }
}

/// <summary>Figures drawn by the caller's plotting library; each returns false when it could not draw.</summary>
public sealed record ExperimentFigures(
    Func<string, string, bool>? TrainingCurve = null,
    Func<string, IReadOnlyList<string>, IReadOnlyList<double[]>, IReadOnlyList<double[]>, string, string, bool>? DiceBoxplot = null);

/// <summary>What one experiment produced: per network, the evaluations without and with adversarial training and their comparison.</summary>
public sealed record ExperimentResult(string ReportPath, IReadOnlyList<(NetworkKind Network, IReadOnlyList<EvaluationResult> Without, IReadOnlyList<EvaluationResult> With, MethodComparison Comparison)> Networks);

/// <summary>
/// Each network trained without and with adversarial training on the training images, every test image
/// segmented and evaluated, the two schemes compared with paired t-tests, and a report folder written:
/// report.md, results.csv (per image), comparison-NET.csv, runs/NET-SCHEME/ (model, log, curve) and figures.
/// </summary>
public static class ExperimentRunner
{
    public static ExperimentResult Run(IBackend backend, IReadOnlyList<LabelledImage> training, IReadOnlyList<LabelledImage> test,
        IReadOnlyList<string> classNames, IntensityNormalisation normalisation, string outDirectory, ExperimentOptions options,
        ExperimentFigures? figures = null, TextWriter? log = null, string dataDescription = "")
    {
        log ??= TextWriter.Null;
        if (training.Count == 0) throw new BadInputException("The experiment needs at least one training image.");
        if (test.Count == 0) throw new BadInputException("The experiment needs at least one test image.");
        // A paired t-test needs two images; a single test slab is cut into parts that stand in for images.
        var evaluationUnits = test.Count >= 2 ? test.ToList() : SplitSlab(test[0], 4, options.Plane);
        if (evaluationUnits.Count < 2)
            throw new BadInputException("The test slab is too thin to compare methods: give at least 2 test images or a slab of at least 2 slices.");
        Directory.CreateDirectory(outDirectory);
        var trainingImages = training.Select(t => new TrainingImage(normalisation.Apply(t.Image), t.Classes)).ToList();
        var source = new SampledPatchSource(trainingImages, classNames.Count);
        var description = new Dictionary<string, string>
        {
            ["data"] = dataDescription,
            ["class_names"] = string.Join(",", classNames),
            ["label_map"] = "experiment classes",
            ["normalisation"] = normalisation.ToString(),
        };

        var results = new List<(NetworkKind, IReadOnlyList<EvaluationResult>, IReadOnlyList<EvaluationResult>, MethodComparison)>();
        var csv = new StringBuilder("network,scheme,image,class,dice,components_predicted,components_reference,volume_ml_predicted,volume_ml_reference\n");
        var overlays = new List<(string Title, string File)>();
        var curves = new List<(string Title, string File)>();
        var boxplots = new List<(string Title, string File)>();
        var timings = new List<string>();

        foreach (var network in options.Networks)
        {
            string net = network == NetworkKind.Fcn ? "fcn" : "dilated";
            var evaluations = new List<EvaluationResult>[2];
            var segmentations = new List<byte[]>[2];
            for (int scheme = 0; scheme < 2; scheme++)
            {
                bool adversarial = scheme == 1;
                string schemeName = adversarial ? "adversarial" : "baseline";
                string runDirectory = Path.Combine(outDirectory, "runs", $"{net}-{schemeName}");
                if (Directory.Exists(runDirectory)) Directory.Delete(runDirectory, recursive: true);
                var trainingOptions = new TrainingOptions
                {
                    Network = network,
                    Adversarial = adversarial,
                    Epochs = options.Epochs,
                    PatchesPerClass = options.PatchesPerClass,
                    Batch = options.Batch,
                    Seed = options.Seed,
                    Plane = options.Plane,
                    LearningRateSegmentation = options.LearningRateSegmentation,
                    LearningRateDiscriminator = options.LearningRateDiscriminator,
                    LogEvery = 1,
                };
                log.WriteLine($"[{net} {schemeName}] training: {trainingImages.Count} image(s), {options.PatchesPerClass} patches per class, {options.Epochs} epoch(s), batch {options.Batch}");
                var watch = System.Diagnostics.Stopwatch.StartNew();
                using (var trainer = new Trainer(backend, source, trainingOptions, description, options.NetworkFactory))
                    trainer.Run(runDirectory);
                double trainSeconds = watch.Elapsed.TotalSeconds;
                if (figures?.TrainingCurve is { } drawCurve && drawCurve(Path.Combine(runDirectory, Trainer.LogFile), Path.Combine(runDirectory, "curve.png")))
                    curves.Add(($"{net} {schemeName}", $"runs/{net}-{schemeName}/curve.png"));

                string modelFile = Path.Combine(runDirectory, Trainer.ModelFile);
                using var model = SegmentationModel.Load(backend, modelFile, options.NetworkFactory);
                evaluations[scheme] = [];
                segmentations[scheme] = [];
                watch.Restart();
                foreach (var unit in evaluationUnits)
                {
                    var slices = unit.Slices is { } s ? Enumerable.Range(s.First, s.Last - s.First + 1).ToHashSet() : null;
                    var predicted = VolumeSegmenter.Segment(model, unit.Image, options.BatchSlices, onlySlices: slices).Classes;
                    segmentations[scheme].Add(predicted);
                    var evaluation = EvaluateUnit(unit, predicted, classNames, options, $"{net}-{schemeName}/{unit.Id}");
                    evaluations[scheme].Add(evaluation);
                    AtomicFile.WriteAllText(Path.Combine(outDirectory, "evaluations", $"{net}-{schemeName}", $"{unit.Id}.json"), evaluation.ToJson());
                    foreach (var c in evaluation.Classes)
                        csv.Append(string.Create(CultureInfo.InvariantCulture,
                            $"{net},{schemeName},{unit.Id},{c.Name},{c.Dice:R},{c.PredictedComponents},{c.ReferenceComponents},{c.PredictedVolumeMl:R},{c.ReferenceVolumeMl:R}\n"));
                }
                timings.Add(string.Create(CultureInfo.InvariantCulture, $"{net} {schemeName}: training {trainSeconds:F1} s, segmenting {evaluationUnits.Count} image(s) {watch.Elapsed.TotalSeconds:F1} s"));
                log.WriteLine($"[{net} {schemeName}] mean Dice {evaluations[scheme].Average(e => e.MeanDice):F4}");
            }

            var comparison = MethodComparison.Compare(evaluations[0], evaluations[1], "without adversarial", "with adversarial");
            results.Add((network, evaluations[0], evaluations[1], comparison));
            AtomicFile.WriteAllText(Path.Combine(outDirectory, $"comparison-{net}.csv"), comparison.ToCsv());
            AtomicFile.WriteAllText(Path.Combine(outDirectory, $"comparison-{net}.json"), comparison.ToJson());

            // Figure 2: the first test unit's middle slice (of its slab): image, reference, without, with.
            var first = evaluationUnits[0];
            int sliceCount = first.Image.SliceCount(options.Plane);
            int middle = first.Slices is { } range ? (range.First + range.Last) / 2 : sliceCount / 2;
            string overlayFile = $"overlay-{net}.png";
            AtomicFile.WriteAllBytes(Path.Combine(outDirectory, overlayFile),
                Overlay.RenderPng(first.Image, [first.Classes, segmentations[0][0], segmentations[1][0]], classNames, options.Plane, middle));
            overlays.Add(($"{net}: {first.Id}, {options.Plane.ToString().ToLowerInvariant()} slice {middle} — image, reference, without, with adversarial training", overlayFile));

            // Figure 3: Dice per class, without vs with.
            if (figures?.DiceBoxplot is { } drawBoxplot)
            {
                var tissue = classNames.Skip(1).ToArray();
                var without = tissue.Select((_, k) => evaluations[0].Select(e => e.Classes[k + 1].Dice).ToArray()).ToArray();
                var with = tissue.Select((_, k) => evaluations[1].Select(e => e.Classes[k + 1].Dice).ToArray()).ToArray();
                string boxFile = $"dice-boxplot-{net}.png";
                if (drawBoxplot($"Dice per class, {net} network ({evaluationUnits.Count} test images)", tissue, without, with,
                        comparison.Rows.Take(tissue.Length).Select(r => r.Test.Mark).Aggregate("", (a, m) => a + (a.Length > 0 ? "," : "") + m), Path.Combine(outDirectory, boxFile)))
                    boxplots.Add(($"Dice per class, {net}: without (left) vs with (right) adversarial training; * p < 0.05, ** p < 0.01", boxFile));
            }
        }

        AtomicFile.WriteAllText(Path.Combine(outDirectory, "results.csv"), csv.ToString());
        string report = Path.Combine(outDirectory, "report.md");
        AtomicFile.WriteAllText(report, Report(results, training, evaluationUnits, test.Count, classNames, options, dataDescription, overlays, boxplots, curves, timings, backend.Name));
        return new ExperimentResult(report, results.Select(r => (r.Item1, r.Item2, r.Item3, r.Item4)).ToList());
    }

    static EvaluationResult EvaluateUnit(LabelledImage unit, byte[] predicted, IReadOnlyList<string> classNames, ExperimentOptions options, string name)
    {
        var image = unit.Image;
        if (unit.Slices is not { } s)
            return SegmentationEvaluation.Evaluate(predicted, unit.Classes, (image.SizeX, image.SizeY, image.SizeZ),
                SegmentationEvaluation.VoxelVolumeMl(image.Affine), classNames, options.Connectivity, name, unit.Id);
        // Only the slab: crop both maps along the slice axis.
        int axis = Orientation.SliceAxis(image.Affine, options.Plane);
        var (p, sizes) = Crop(predicted, image, axis, s.First, s.Last);
        var (r, _) = Crop(unit.Classes, image, axis, s.First, s.Last);
        return SegmentationEvaluation.Evaluate(p, r, sizes, SegmentationEvaluation.VoxelVolumeMl(image.Affine), classNames, options.Connectivity, name, unit.Id);
    }

    /// <summary>Voxels with index <paramref name="first"/>..<paramref name="last"/> along <paramref name="axis"/>, in Fortran order.</summary>
    public static (byte[] Values, (int X, int Y, int Z) Sizes) Crop(byte[] values, Volume grid, int axis, int first, int last)
    {
        int[] size = grid.Shape;
        int[] from = [0, 0, 0];
        from[axis] = first;
        size[axis] = last - first + 1;
        var result = new byte[size[0] * size[1] * size[2]];
        int i = 0;
        for (int z = 0; z < size[2]; z++)
            for (int y = 0; y < size[1]; y++)
                for (int x = 0; x < size[0]; x++)
                    result[i++] = values[grid.IndexOf(x + from[0], y + from[1], z + from[2])];
        return (result, (size[0], size[1], size[2]));
    }

    /// <summary>
    /// For single-subject experiments: the image without the slices <paramref name="first"/>..<paramref name="last"/>
    /// of <paramref name="plane"/>, as the one or two blocks on either side (training never sees the slab), and the
    /// whole image with evaluation restricted to the slab.
    /// </summary>
    public static (List<LabelledImage> Training, LabelledImage Test) HoldOutSlab(LabelledImage subject, Plane plane, int first, int last)
    {
        var image = subject.Image;
        int axis = Orientation.SliceAxis(image.Affine, plane), count = image.Size(axis);
        if (first < 0 || last >= count || first > last)
            throw new BadInputException($"--exclude-slices {first}:{last} is outside the {count} {plane.ToString().ToLowerInvariant()} slices of {subject.Id} (0..{count - 1}).");
        var blocks = new List<LabelledImage>();
        if (first > 0) blocks.Add(Block(subject, axis, 0, first - 1, "below"));
        if (last < count - 1) blocks.Add(Block(subject, axis, last + 1, count - 1, "above"));
        if (blocks.Count == 0)
            throw new BadInputException($"--exclude-slices {first}:{last} holds out every slice of {subject.Id}; leave some for training.");
        return (blocks, subject with { Slices = (first, last) });
    }

    static LabelledImage Block(LabelledImage subject, int axis, int first, int last, string side)
    {
        var image = subject.Image;
        var (classes, sizes) = Crop(subject.Classes, image, axis, first, last);
        var voxels = new float[classes.Length];
        int[] from = [0, 0, 0];
        from[axis] = first;
        int i = 0;
        for (int z = 0; z < sizes.Z; z++)
            for (int y = 0; y < sizes.Y; y++)
                for (int x = 0; x < sizes.X; x++)
                    voxels[i++] = image[x + from[0], y + from[1], z + from[2]];
        var (ox, oy, oz) = image.Affine.Apply(from[0], from[1], from[2]);
        var a = image.Affine;
        var affine = Affine.FromRows([a[0, 0], a[0, 1], a[0, 2], ox], [a[1, 0], a[1, 1], a[1, 2], oy], [a[2, 0], a[2, 1], a[2, 2], oz]);
        return new LabelledImage($"{subject.Id}-{side}", new Volume(voxels, sizes.X, sizes.Y, sizes.Z, affine), classes);
    }

    /// <summary>A slab cut into up to <paramref name="parts"/> contiguous parts, each evaluated as an image.</summary>
    static List<LabelledImage> SplitSlab(LabelledImage subject, int parts, Plane plane)
    {
        var (first, last) = subject.Slices ?? (0, subject.Image.SliceCount(plane) - 1);
        int count = last - first + 1;
        parts = Math.Min(parts, count);
        var result = new List<LabelledImage>();
        for (int k = 0; k < parts; k++)
        {
            int a = first + k * count / parts, b = first + (k + 1) * count / parts - 1;
            result.Add(subject with { Id = $"{subject.Id}-slices{a}-{b}", Slices = (a, b) });
        }
        return result;
    }

    static string Report(List<(NetworkKind, IReadOnlyList<EvaluationResult>, IReadOnlyList<EvaluationResult>, MethodComparison)> results,
        IReadOnlyList<LabelledImage> training, IReadOnlyList<LabelledImage> units, int testImages, IReadOnlyList<string> classNames, ExperimentOptions o,
        string data, List<(string Title, string File)> overlays, List<(string Title, string File)> boxplots, List<(string Title, string File)> curves,
        List<string> timings, string device)
    {
        var md = new StringBuilder();
        md.AppendLine("# Segmentation with and without adversarial training");
        md.AppendLine();
        md.AppendLine($"Data: {data}");
        md.AppendLine($"Training images: {string.Join(", ", training.Select(t => $"{t.Id} ({string.Join("x", t.Image.Shape)})"))}.");
        md.AppendLine(testImages >= 2
            ? $"Test images: {string.Join(", ", units.Select(u => u.Id))}."
            : $"Test: one held-out slab, evaluated in {units.Count} contiguous parts ({string.Join(", ", units.Select(u => u.Id))}); the parts are not independent subjects, so read the p-values as descriptive.");
        md.AppendLine($"Classes: {string.Join(", ", classNames.Select((n, i) => $"{i} {n}"))}.");
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Settings: {o.Epochs} epoch(s), {o.PatchesPerClass} patches per class per image, batch {o.Batch}, RMSprop lr {o.LearningRateSegmentation} (segmenter) / {o.LearningRateDiscriminator} (discriminator), {o.Plane.ToString().ToLowerInvariant()} plane, seed {o.Seed}, device {device}. Components use {o.Connectivity}-connectivity. Batch-norm statistics re-estimated by the trainer after training over {BatchNormCalibration.DefaultPasses} forward-only training minibatches (in each model.safetensors)."));
        var paper = new TrainingOptions();
        if (o.Epochs < paper.Epochs || o.PatchesPerClass < paper.PatchesPerClass)
        {
            // At smoke scale the networks are far from converged: which scheme wins depends on how far each
            // got, not on the adversarial loss (on the demo's phantoms the dilated baseline goes from about
            // 0.03 mean Dice after 1 epoch to about 0.78 after 3, overtaking the adversarial run).
            md.AppendLine();
            md.AppendLine($"**Smoke scale.** These runs are far shorter than the paper's ({paper.Epochs} epochs of {paper.PatchesPerClass:N0} patches per class per image): " +
                "the networks are not converged, and differences between the two schemes here are not evidence for or against adversarial training. " +
                "Use `brainseg experiment` with the default settings for that.");
        }
        md.AppendLine();
        foreach (var (network, without, with, comparison) in results)
        {
            md.AppendLine($"## {(network == NetworkKind.Fcn ? "Fully convolutional network" : "Dilated network")}");
            md.AppendLine();
            md.AppendLine(comparison.ToMarkdown());
            md.AppendLine();
        }
        md.AppendLine("## Figures");
        md.AppendLine();
        foreach (var (title, file) in boxplots.Concat(overlays).Concat(curves))
        {
            md.AppendLine($"![{title}]({file})");
            md.AppendLine();
            md.AppendLine($"*{title}*");
            md.AppendLine();
        }
        if (boxplots.Count == 0) md.AppendLine("(No Dice boxplots: the plotting library was not available; the numbers are in results.csv.)\n");
        md.AppendLine("## Files");
        md.AppendLine();
        md.AppendLine("- results.csv: Dice, components and volumes per network, scheme, image and class");
        md.AppendLine("- comparison-NET.csv / .json: mean ± sd and paired t-tests per class");
        md.AppendLine("- evaluations/NET-SCHEME/IMAGE.json: inputs of 'brainseg compare'");
        md.AppendLine("- runs/NET-SCHEME/: model.safetensors, log.csv, curve.png");
        md.AppendLine();
        md.AppendLine("## Timings");
        md.AppendLine();
        foreach (var t in timings) md.AppendLine($"- {t}");
        return md.ToString();
    }
}
