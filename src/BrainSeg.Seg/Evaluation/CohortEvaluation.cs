using BrainSeg.Mri;
using System.Globalization;
using System.Text;
using System.Text.Json;
using BrainSeg.Seg.Inference;
using BrainSeg.Seg.Reports;
using BrainSeg.Seg.Statistics;
using nietras.SeparatedValues;

namespace BrainSeg.Seg.Evaluation;

/// <summary>One image of a cohort's evaluation: its name (relative path without the image extension) and its scores.</summary>
public sealed record CohortImage(string Name, EvaluationResult Scores);

/// <summary>An image that could not be scored, and why.</summary>
public sealed record CohortFailure(string Name, string Message);

/// <summary>One measure over the images: its name and mean ± sd.</summary>
public sealed record CohortMeasure(string Measure, MeanSd Value);

/// <summary>
/// A folder of segmentations scored against a folder of references, matched by name: a prediction
/// a.nii.gz is scored against the reference a.nii.gz, a.nii or a.mgz at the same relative path. Per image
/// the scores of <see cref="SegmentationEvaluation"/>; over the images, per class, the mean ± sd of the Dice
/// and of both volumes, and of the mean Dice and the component count. The JSON holds every image's scores,
/// so <c>brainseg compare</c> reads it in place of one file per image.
/// </summary>
public sealed record CohortEvaluation(IReadOnlyList<CohortImage> Images, IReadOnlyList<CohortFailure> Failures, IReadOnlyList<string> UnmatchedReferences)
{
    public const string Format = "brainseg-cohort-evaluation/1";

    /// <summary>Scores every prediction under <paramref name="predFolder"/> that has a reference; one that has none, or fails, is a failure.</summary>
    /// <param name="isInputError">Which exceptions are a problem of one pair (recorded, the rest go on); others end the run.</param>
    public static CohortEvaluation Evaluate(string predFolder, string refFolder, Mri.Labels.LabelTable? referenceTable, int connectivity,
        Func<Exception, bool> isInputError, Action<string>? progress = null)
    {
        foreach (var (option, folder) in new[] { ("--pred", predFolder), ("--ref", refFolder) })
            if (!Directory.Exists(folder))
                throw new DirectoryNotFoundException($"{option} {folder}: no such folder; give two folders (or two files).");
        var references = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var r in CohortInputs.Discover(refFolder))
            if (!references.TryAdd(NameOf(r), r.Path))
                throw new BadInputException($"{references[NameOf(r)]} and {r.Path} are both the reference for {NameOf(r)}; keep one of them.");
        var images = new List<CohortImage>();
        var failures = new List<CohortFailure>();
        var matched = new HashSet<string>(StringComparer.Ordinal);
        foreach (var prediction in CohortInputs.Discover(predFolder, exclude: refFolder))
        {
            string name = NameOf(prediction);
            if (!references.TryGetValue(name, out var reference))
            {
                failures.Add(new CohortFailure(name, $"{prediction.Path}: no reference named {name} under {refFolder}"));
                continue;
            }
            if (!matched.Add(name))
            {
                failures.Add(new CohortFailure(name, $"{prediction.Path}: a second prediction for {name}; keep one of them"));
                continue;
            }
            try
            {
                var scores = SegmentationEvaluation.EvaluateFiles(prediction.Path, reference, referenceTable, connectivity);
                if (images.Count > 0 && !SameClasses(scores, images[0].Scores))
                    throw new InvalidDataException($"{prediction.Path} has classes [{string.Join(", ", scores.Classes.Select(c => c.Name))}], not those of {images[0].Name}; segment every image with one model.");
                images.Add(new CohortImage(name, scores));
            }
            catch (Exception e) when (isInputError(e))
            {
                failures.Add(new CohortFailure(name, e.Message.ReplaceLineEndings(" ")));
            }
            progress?.Invoke(name);
        }
        return new CohortEvaluation(images, failures, references.Keys.Where(k => !matched.Contains(k)).Order(StringComparer.Ordinal).ToList());
    }

    /// <summary>The name an image is matched by: its relative path without the image extension.</summary>
    public static string NameOf(CohortInput image) => image.RelativePath[..^CohortInputs.ImageExtension(image.RelativePath)!.Length];

    static bool SameClasses(EvaluationResult a, EvaluationResult b) => a.Classes.Select(c => c.Name).SequenceEqual(b.Classes.Select(c => c.Name));

    /// <summary>Per class: Dice, predicted and reference volume; then the mean Dice and the total component count; each mean ± sd over the images.</summary>
    public IReadOnlyList<CohortMeasure> Summary()
    {
        var measures = new List<CohortMeasure>();
        if (Images.Count == 0) return measures;
        CohortMeasure Over(string measure, Func<EvaluationResult, double> value) => new(measure, MeanSd.Of(Images.Select(i => value(i.Scores)).ToArray()));
        var names = Images[0].Scores.Classes.Select(c => c.Name).ToList();
        for (int c = 0; c < names.Count; c++)
        {
            int k = c;
            measures.Add(Over($"Dice {names[k]}", e => e.Classes[k].Dice));
            measures.Add(Over($"volume mL predicted {names[k]}", e => e.Classes[k].PredictedVolumeMl));
            measures.Add(Over($"volume mL reference {names[k]}", e => e.Classes[k].ReferenceVolumeMl));
        }
        measures.Add(Over("mean Dice", e => e.MeanDice));
        measures.Add(Over("components (total)", e => e.PredictedComponentsTotal));
        return measures;
    }

    /// <summary>One row per image: name, files, mean Dice, components, then each class's Dice and both volumes in mL.</summary>
    public string ImagesCsv()
    {
        using var writer = Sep.New(',').Writer(o => o with { Escape = true, CultureInfo = CultureInfo.InvariantCulture }).ToText();
        foreach (var (name, e) in Images)
        {
            using var row = writer.NewRow();
            row["image"].Set(name);
            row["prediction"].Set(e.Prediction);
            row["reference"].Set(e.Reference);
            row["mean_dice"].Set(Number(e.MeanDice));
            row["components_predicted"].Set(Number(e.PredictedComponentsTotal));
            row["components_reference"].Set(Number(e.ReferenceComponentsTotal));
            foreach (var c in e.Classes)
            {
                row[$"dice_{c.Name}"].Set(Number(c.Dice));
                row[$"volume_ml_predicted_{c.Name}"].Set(Number(c.PredictedVolumeMl));
                row[$"volume_ml_reference_{c.Name}"].Set(Number(c.ReferenceVolumeMl));
            }
        }
        return writer.ToString();
    }

    /// <summary>One row per measure: measure, images, mean, sd.</summary>
    public string SummaryCsv()
    {
        using var writer = Sep.New(',').Writer(o => o with { Escape = true, CultureInfo = CultureInfo.InvariantCulture }).ToText();
        foreach (var m in Summary())
        {
            using var row = writer.NewRow();
            row["measure"].Set(m.Measure);
            row["images"].Set(Number(m.Value.Count));
            row["mean"].Set(Number(m.Value.Mean));
            row["sd"].Set(Number(m.Value.Sd));
        }
        return writer.ToString();
    }

    public string ToJson() => Json.Write(json =>
    {
        json.WriteStartObject();
        json.WriteString("format", Format);
        json.WriteStartArray("summary");
        foreach (var m in Summary())
        {
            json.WriteStartObject();
            json.WriteString("measure", m.Measure);
            json.WriteNumber("images", m.Value.Count);
            json.WriteNumber("mean", m.Value.Mean);
            json.WriteNumber("sd", m.Value.Sd);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("images");
        foreach (var (name, scores) in Images)
        {
            json.WriteStartObject();
            json.WriteString("name", name);
            json.WritePropertyName("evaluation");
            scores.WriteJson(json);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("failed");
        foreach (var f in Failures)
        {
            json.WriteStartObject();
            json.WriteString("name", f.Name);
            json.WriteString("message", f.Message);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("unmatched_references");
        foreach (var name in UnmatchedReferences) json.WriteStringValue(name);
        json.WriteEndArray();
        json.WriteEndObject();
    });

    /// <summary>True when <paramref name="text"/> is a cohort evaluation rather than one image's.</summary>
    public static bool IsCohort(string text) => text.Contains($"\"{Format}\"", StringComparison.Ordinal);

    /// <summary>The scored images of a file <see cref="ToJson"/> wrote, in name order.</summary>
    public static IReadOnlyList<CohortImage> ReadImages(string text, string source) => Json.Read(text, source, root =>
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("format", out var format) || format.GetString() != Format)
            throw new InvalidDataException($"{source}: not a brainseg cohort evaluation (expected \"format\": \"{Format}\").");
        return root.GetProperty("images").EnumerateArray()
            .Select(i => new CohortImage(i.GetProperty("name").GetString() ?? "", EvaluationResult.Read(i.GetProperty("evaluation"), source)))
            .ToList();
    });

    public string ToText()
    {
        var text = new StringBuilder();
        text.AppendLine($"{Images.Count} images scored, {Failures.Count} failed, {UnmatchedReferences.Count} references without a prediction");
        var summary = Summary();
        int width = summary.Count == 0 ? 10 : summary.Max(m => m.Measure.Length) + 1;
        foreach (var m in summary)
            text.AppendLine($"{m.Measure.PadRight(width)} {m.Value}");
        return text.ToString().TrimEnd();
    }

    static string Number(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
