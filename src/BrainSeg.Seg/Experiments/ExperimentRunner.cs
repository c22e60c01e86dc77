using System.Globalization;
using System.Text;
using BrainSeg.Engine;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Mri.Sampling;
using BrainSeg.Mri;
using BrainSeg.Seg.Data;
using BrainSeg.Seg.Evaluation;
using BrainSeg.Seg.Inference;
using BrainSeg.Seg.Networks;
using BrainSeg.Seg.Reports;
using BrainSeg.Seg.Statistics;
using BrainSeg.Seg.Training;

namespace BrainSeg.Seg.Experiments;

/// <summary>The paper's protocol at a chosen size; by default the paper's own (<see cref="TrainingOptions.Paper"/>), all three arms.</summary>
public sealed record ExperimentOptions
{
    public IReadOnlyList<NetworkKind> Networks { get; init; } = [NetworkKind.Fcn, NetworkKind.Dilated];
    public IReadOnlyList<Arm> Arms { get; init; } = [Arm.Baseline, Arm.Control, Arm.Adversarial];

    /// <summary>How every run trains; each arm changes only what makes it that arm (<see cref="TrainingOptions.ForArm"/>).</summary>
    public TrainingOptions Training { get; init; } = TrainingOptions.Paper;

    /// <summary>The smoke setting (--quick): 1 epoch of 60 patches per class per image, batch 30, a log row per iteration.</summary>
    public static TrainingOptions Quick { get; } = TrainingOptions.Paper with { Epochs = 1, PatchesPerClass = 60, Batch = 30, LogEvery = 1 };

    public int Connectivity { get; init; } = 6;
    public int BatchSlices { get; init; } = 8;

    /// <summary>Scored during training and logged with the losses; none by default.</summary>
    public Validation? Validation { get; init; }

    /// <summary>Why the runs are smaller than the paper's, when they are (the demo names its settings here); printed in the report.</summary>
    public string? ScaleNote { get; init; }

    /// <summary>Builds the segmenter instead of the paper's networks (tiny networks in tests).</summary>
    public Func<IBackend, int, NetworkOptions, SegmentationNetwork>? NetworkFactory { get; init; }

    // Throughput measured on this project's reference machines (benchmarks/RESULTS.md): training patches per second.
    public const double CpuPatchesPerSecond = 70;      // 2 CPU cores, dilated step at batch 32 (FCN: about 90)
    public const double GpuPatchesPerSecond = 3_800;   // NVIDIA H200, dilated step at batch 300 (FCN: about 6,400)

    /// <summary>Patches one run trains on: epochs × N × classes × training images.</summary>
    public static long PatchesPerRun(TrainingOptions o, int classes, int images) => (long)o.Epochs * o.PatchesPerClass * classes * images;

    /// <summary>What the protocol costs, for --help and the report.</summary>
    public static string Cost(TrainingOptions o, int classes, int images, int runs)
    {
        long patches = PatchesPerRun(o, classes, images) * runs;
        static string Hours(double seconds) => seconds >= 3600 ? string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:F1} h") : string.Create(CultureInfo.InvariantCulture, $"{seconds / 60:F0} min");
        return string.Create(CultureInfo.InvariantCulture,
            $"{o.Epochs} epochs × {o.PatchesPerClass:N0} patches × {classes} classes × {images} image(s) × {runs} runs = {patches:N0} patches: " +
            $"about {Hours(patches / CpuPatchesPerSecond)} at the {CpuPatchesPerSecond:N0} patches/s measured on 2 CPU cores, " +
            $"{Hours(patches / GpuPatchesPerSecond)} at the {GpuPatchesPerSecond:N0} measured on an H200 GPU (dilated network; segmentation and validation extra)");
    }
}

/// <summary>Figures drawn by the caller's plotting library; each returns false when it could not draw.</summary>
public sealed record ExperimentFigures(
    Func<string, string, bool>? TrainingCurve = null,
    Func<string, IReadOnlyList<string>, IReadOnlyList<(string Name, double[][] PerClass)>, string, string, bool>? DiceBoxplot = null);

/// <summary>One network's evaluations per arm and the paired comparisons of the adversarial arm with each other arm.</summary>
public sealed record NetworkResult(NetworkKind Network, IReadOnlyDictionary<Arm, IReadOnlyList<EvaluationResult>> Evaluations,
    IReadOnlyList<(Arm Other, Arm Reference, MethodComparison Comparison)> Comparisons);

/// <summary>What one experiment produced.</summary>
public sealed record ExperimentResult(string ReportPath, IReadOnlyList<NetworkResult> Networks);

/// <summary>
/// Each network trained in every arm (baseline; control: the adversarial schedule without θs's La gradient;
/// adversarial) on the training images, every test image segmented and evaluated, the adversarial arm compared
/// with each other arm by paired t-tests, and a report folder written: report.md, results.csv (per image),
/// comparison-NET-ARM-vs-adversarial.csv, runs/NET-ARM/ (model, log, curve) and figures.
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
        if (options.Arms.Count == 0) throw new BadInputException("--arms names no arm; use baseline, control and/or adversarial.");
        var plane = options.Training.Plane;
        // A paired t-test needs two images; a single test slab is cut into parts that stand in for images.
        var evaluationUnits = test.Count >= 2 ? test.ToList() : Slabs.Split(test[0], 4, plane);
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
        // Compared with the adversarial arm when it runs; otherwise with the last arm named.
        var reference = options.Arms.Contains(Arm.Adversarial) ? Arm.Adversarial : options.Arms[^1];

        var results = new List<NetworkResult>();
        var csv = new StringBuilder("network,arm,image,class,dice,components_predicted,components_reference,volume_ml_predicted,volume_ml_reference\n");
        var overlays = new List<(string Title, string File)>();
        var curves = new List<(string Title, string File)>();
        var boxplots = new List<(string Title, string File)>();
        var timings = new List<string>();
        var validations = new List<string>();

        foreach (var network in options.Networks)
        {
            string net = NetworkName(network);
            var evaluations = new Dictionary<Arm, IReadOnlyList<EvaluationResult>>();
            var segmentations = new Dictionary<Arm, List<byte[]>>();
            foreach (var arm in options.Arms)
            {
                string armName = TrainingOptions.ArmName(arm), run = $"{net}-{armName}";
                string runDirectory = Path.Combine(outDirectory, "runs", run);
                if (Directory.Exists(runDirectory)) Directory.Delete(runDirectory, recursive: true);
                var trainingOptions = options.Training.ForArm(arm) with { Network = network };
                var o = trainingOptions;
                log.WriteLine($"[{net} {armName}] training: {trainingImages.Count} image(s), {o.PatchesPerClass} patches per class, {o.Epochs} epoch(s), batch {o.Batch}");
                var watch = System.Diagnostics.Stopwatch.StartNew();
                using (var trainer = new Trainer(backend, source, trainingOptions, description, options.NetworkFactory))
                    trainer.Run(runDirectory, validation: options.Validation);
                double trainSeconds = watch.Elapsed.TotalSeconds;
                string logFile = Path.Combine(runDirectory, Trainer.LogFile);
                if (options.Validation is not null && TrainingLog.Read(logFile).LastOrDefault(r => double.IsFinite(r.ValidationDice)) is { } last)
                    validations.Add(string.Create(CultureInfo.InvariantCulture, $"{net} {armName}: mean Dice {last.ValidationDice:F4}, {last.Components:F0} components at iteration {last.Iteration}"));
                if (figures?.TrainingCurve is { } drawCurve && drawCurve(logFile, Path.Combine(runDirectory, "curve.png")))
                    curves.Add(($"{net} {armName}", $"runs/{run}/curve.png"));

                using var model = SegmentationModel.Load(backend, Path.Combine(runDirectory, Trainer.ModelFile), options.NetworkFactory);
                var scores = new List<EvaluationResult>();
                segmentations[arm] = [];
                watch.Restart();
                foreach (var unit in evaluationUnits)
                {
                    var slices = unit.Slices is { } sl ? Enumerable.Range(sl.First, sl.Last - sl.First + 1).ToHashSet() : null;
                    var predicted = VolumeSegmenter.Segment(model, unit.Image, options.BatchSlices, onlySlices: slices).Classes;
                    segmentations[arm].Add(predicted);
                    var evaluation = EvaluateUnit(unit, predicted, classNames, plane, options.Connectivity, $"{run}/{unit.Id}");
                    scores.Add(evaluation);
                    AtomicFile.WriteAllText(Path.Combine(outDirectory, "evaluations", run, $"{unit.Id}.json"), evaluation.ToJson());
                    foreach (var c in evaluation.Classes)
                        csv.Append(string.Create(CultureInfo.InvariantCulture,
                            $"{net},{armName},{unit.Id},{c.Name},{c.Dice:R},{c.PredictedComponents},{c.ReferenceComponents},{c.PredictedVolumeMl:R},{c.ReferenceVolumeMl:R}\n"));
                }
                evaluations[arm] = scores;
                timings.Add(string.Create(CultureInfo.InvariantCulture, $"{net} {armName}: training {trainSeconds:F1} s, segmenting {evaluationUnits.Count} image(s) {watch.Elapsed.TotalSeconds:F1} s"));
                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{net} {armName}] mean Dice {scores.Average(e => e.MeanDice):F4}"));
            }

            var comparisons = new List<(Arm, Arm, MethodComparison)>();
            foreach (var other in options.Arms.Where(a => a != reference))
            {
                var comparison = MethodComparison.Compare(evaluations[other], evaluations[reference], TrainingOptions.ArmName(other), TrainingOptions.ArmName(reference));
                comparisons.Add((other, reference, comparison));
                string stem = $"comparison-{net}-{TrainingOptions.ArmName(other)}-vs-{TrainingOptions.ArmName(reference)}";
                AtomicFile.WriteAllText(Path.Combine(outDirectory, $"{stem}.csv"), comparison.ToCsv());
                AtomicFile.WriteAllText(Path.Combine(outDirectory, $"{stem}.json"), comparison.ToJson());
            }
            results.Add(new NetworkResult(network, evaluations, comparisons));

            // Figure 2: the first test unit's middle slice (of its slab): image, reference, then each arm.
            var first = evaluationUnits[0];
            int middle = first.Slices is { } range ? (range.First + range.Last) / 2 : first.Image.SliceCount(plane) / 2;
            string overlayFile = $"overlay-{net}.png";
            AtomicFile.WriteAllBytes(Path.Combine(outDirectory, overlayFile),
                Overlay.RenderPng(first.Image, [first.Classes, .. options.Arms.Select(a => segmentations[a][0])], classNames, plane, middle));
            overlays.Add(($"{net}: {first.Id}, {plane.ToString().ToLowerInvariant()} slice {middle} — image, reference, {string.Join(", ", options.Arms.Select(TrainingOptions.ArmName))}", overlayFile));

            // Figure 3: Dice per class in each arm; the marks test the adversarial gradient (against the control arm when it runs).
            if (figures?.DiceBoxplot is { } drawBoxplot)
            {
                var tissue = classNames.Skip(1).ToArray();
                var groups = options.Arms.Select(a => (TrainingOptions.ArmName(a),
                    tissue.Select((_, k) => evaluations[a].Select(e => e.Classes[k + 1].Dice).ToArray()).ToArray())).ToList();
                var marked = comparisons.FirstOrDefault(c => c.Item1 == Arm.Control);
                if (marked.Item3 is null) marked = comparisons.FirstOrDefault();
                string marks = marked.Item3 is null ? "" : string.Join(",", marked.Item3.Rows.Take(tissue.Length).Select(r => r.Test.Mark));
                string boxFile = $"dice-boxplot-{net}.png";
                if (drawBoxplot($"Dice per class, {net} network ({evaluationUnits.Count} test images)", tissue, groups, marks, Path.Combine(outDirectory, boxFile)))
                    boxplots.Add(($"Dice per class, {net}: {string.Join(", ", options.Arms.Select(TrainingOptions.ArmName))} (left to right)" +
                        (marked.Item3 is null ? "" : $"; marks: paired t-test of {TrainingOptions.ArmName(marked.Item1)} vs {TrainingOptions.ArmName(marked.Item2)}, * p < 0.05, ** p < 0.01"), boxFile));
            }
        }

        AtomicFile.WriteAllText(Path.Combine(outDirectory, "results.csv"), csv.ToString());
        string report = Path.Combine(outDirectory, "report.md");
        AtomicFile.WriteAllText(report, Report(results, training, evaluationUnits, test.Count, classNames, options, dataDescription, overlays, boxplots, curves, timings, validations, backend.Name));
        return new ExperimentResult(report, results);
    }

    public static string NetworkName(NetworkKind network) => network == NetworkKind.Fcn ? "fcn" : "dilated";

    static EvaluationResult EvaluateUnit(LabelledImage unit, byte[] predicted, IReadOnlyList<string> classNames, Plane plane, int connectivity, string name)
    {
        var image = unit.Image;
        if (unit.Slices is not { } s)
            return SegmentationEvaluation.Evaluate(predicted, unit.Classes, (image.SizeX, image.SizeY, image.SizeZ),
                SegmentationEvaluation.VoxelVolumeMl(image.Affine), classNames, connectivity, name, unit.Id);
        // Only the slab: crop both maps along the slice axis.
        int axis = Orientation.SliceAxis(image.Affine, plane);
        var (p, sizes) = Slabs.Crop(predicted, image, axis, s.First, s.Last);
        var (r, _) = Slabs.Crop(unit.Classes, image, axis, s.First, s.Last);
        return SegmentationEvaluation.Evaluate(p, r, sizes, SegmentationEvaluation.VoxelVolumeMl(image.Affine), classNames, connectivity, name, unit.Id);
    }

    static string Report(List<NetworkResult> results, IReadOnlyList<LabelledImage> training, IReadOnlyList<LabelledImage> units, int testImages,
        IReadOnlyList<string> classNames, ExperimentOptions options, string data, List<(string Title, string File)> overlays,
        List<(string Title, string File)> boxplots, List<(string Title, string File)> curves, List<string> timings, List<string> validations, string device)
    {
        var o = options.Training;
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
            $"Settings: {o.Epochs} epoch(s), {o.PatchesPerClass} patches per class per image, batch {o.Batch}, RMSprop lr {o.LearningRateSegmentation} (segmenter) / {o.LearningRateDiscriminator} (discriminator; θs's La rate {o.AdversarialSegmentationRate} in the adversarial arm), {o.Plane.ToString().ToLowerInvariant()} plane, seed {o.Seed}, device {device}. Components use {options.Connectivity}-connectivity. Batch-norm statistics re-estimated by the trainer after training over {BatchNormCalibration.DefaultPasses} forward-only training minibatches (in each model.safetensors)."));
        md.AppendLine($"Cost: {ExperimentOptions.Cost(o, classNames.Count, training.Count, options.Networks.Count * options.Arms.Count)}.");
        md.AppendLine();
        md.AppendLine("## Method notes");
        md.AppendLine();
        md.AppendLine("- **baseline**: Ls alone, one RMSprop step per iteration on all of its patches.");
        md.AppendLine("- **control**: the adversarial schedule without the adversarial gradient. Each iteration splits its patches into three minibatches (Ls, Ld, La), runs the same training-mode forward passes, draws the same dropout masks and trains the discriminator exactly as the adversarial arm does, but θs's La rate is 0.");
        md.AppendLine("- **adversarial**: the paper's scheme, θs ascends La at the rate above.");
        md.AppendLine("- adversarial vs control isolates the effect of the adversarial gradient; control vs baseline the effect of the schedule (Ls on a third of each iteration's patches, the extra passes).");
        md.AppendLine("- A gap between baseline and adversarial at smoke scale used to come from stale batch-norm statistics in the saved model, not from adversarial training: the adversarial schedule's extra training-mode passes refreshed the running averages twice as often. Calibration now weights its passes equally and the control arm runs the same passes, so adversarial vs control is the comparison that speaks for the adversarial gradient (benchmarks/REPRODUCTION.md, section 2).");
        if (options.Validation is { } v)
            md.AppendLine($"- Validation during training: {v.Describe()}, every {(v.Every > 0 ? $"{v.Every} iterations" : $"1/{Validation.DefaultPassesPerRun} of the run")} and at the end; log.csv columns val_dice and val_components, the second panel of curve.png.");
        if (options.ScaleNote is { } note)
        {
            md.AppendLine();
            md.AppendLine(note);
        }
        var paper = TrainingOptions.Paper;
        if (o.Epochs < paper.Epochs || o.PatchesPerClass < paper.PatchesPerClass)
        {
            md.AppendLine();
            md.AppendLine($"**Smaller than the paper's protocol.** These runs are shorter than the paper's ({paper.Epochs} epochs of {paper.PatchesPerClass:N0} patches per class per image): " +
                "the networks are not converged, and differences between the arms here are not evidence for or against adversarial training. " +
                "`brainseg experiment` with its default settings runs the paper's protocol.");
        }
        md.AppendLine();
        foreach (var result in results)
        {
            md.AppendLine($"## {(result.Network == NetworkKind.Fcn ? "Fully convolutional network" : "Dilated network")}");
            md.AppendLine();
            md.AppendLine("Mean Dice per arm: " + string.Join(", ", result.Evaluations.Select(kv => string.Create(CultureInfo.InvariantCulture,
                $"{TrainingOptions.ArmName(kv.Key)} {kv.Value.Average(e => e.MeanDice):F3}"))) + ".");
            md.AppendLine();
            foreach (var (_, _, comparison) in result.Comparisons)
            {
                md.AppendLine(comparison.ToMarkdown());
                md.AppendLine();
            }
        }
        if (validations.Count > 0)
        {
            md.AppendLine("## Last validation of each run");
            md.AppendLine();
            foreach (var line in validations) md.AppendLine($"- {line}");
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
        md.AppendLine("- results.csv: Dice, components and volumes per network, arm, image and class");
        md.AppendLine("- comparison-NET-ARM-vs-REFERENCE.csv / .json: mean ± sd and paired t-tests per class");
        md.AppendLine("- evaluations/NET-ARM/IMAGE.json: inputs of 'brainseg compare'");
        md.AppendLine("- runs/NET-ARM/: model.safetensors, log.csv, curve.png");
        md.AppendLine();
        md.AppendLine("## Timings");
        md.AppendLine();
        foreach (var t in timings) md.AppendLine($"- {t}");
        return md.ToString();
    }
}
