using System.Text;
using System.Text.Json;
using BrainSeg.Mri;
using BrainSeg.Mri.IO;
using BrainSeg.Seg.Inference;
using BrainSeg.Seg.Reports;

namespace BrainSeg.Seg.Evaluation;

/// <summary>The scores of one class in one image.</summary>
public sealed record ClassScore(
    string Name,
    double Dice,
    int PredictedComponents,
    int ReferenceComponents,
    double PredictedVolumeMl,
    double ReferenceVolumeMl);

/// <summary>
/// One predicted segmentation scored against its reference: Dice per class and its mean over the
/// non-background classes, 3-D connected components per class and in total (background included, the
/// paper's measure of fragmentation), and class volumes in millilitres.
/// </summary>
public sealed record EvaluationResult(
    string Prediction,
    string Reference,
    int Connectivity,
    IReadOnlyList<ClassScore> Classes,
    double MeanDice,
    int PredictedComponentsTotal,
    int ReferenceComponentsTotal)
{
    public const string Format = "brainseg-evaluation/1";

    public string ToJson() => Json.Write(WriteJson);

    /// <summary>This evaluation as one JSON object (also an element of a cohort's evaluation).</summary>
    public void WriteJson(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("format", Format);
        json.WriteString("prediction", Prediction);
        json.WriteString("reference", Reference);
        json.WriteNumber("connectivity", Connectivity);
        json.WriteNumber("mean_dice", MeanDice);
        json.WriteNumber("components_total_predicted", PredictedComponentsTotal);
        json.WriteNumber("components_total_reference", ReferenceComponentsTotal);
        json.WriteStartArray("classes");
        foreach (var c in Classes)
        {
            json.WriteStartObject();
            json.WriteString("name", c.Name);
            json.WriteNumber("dice", c.Dice);
            json.WriteNumber("components_predicted", c.PredictedComponents);
            json.WriteNumber("components_reference", c.ReferenceComponents);
            json.WriteNumber("volume_ml_predicted", c.PredictedVolumeMl);
            json.WriteNumber("volume_ml_reference", c.ReferenceVolumeMl);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>Reads what <see cref="ToJson"/> wrote; <paramref name="source"/> names the file in errors.</summary>
    public static EvaluationResult FromJson(string text, string source) => Json.Read(text, source, root => Read(root, source));

    /// <summary>Reads one object that <see cref="WriteJson"/> wrote.</summary>
    public static EvaluationResult Read(JsonElement root, string source)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("format", out var format) || format.GetString() != Format)
            throw new InvalidDataException($"{source}: not a brainseg evaluation (expected \"format\": \"{Format}\"). Give files written by 'brainseg evaluate --json'.");
        var classes = new List<ClassScore>();
        foreach (var c in root.GetProperty("classes").EnumerateArray())
            classes.Add(new ClassScore(
                c.GetProperty("name").GetString() ?? "",
                c.GetProperty("dice").GetDouble(),
                c.GetProperty("components_predicted").GetInt32(),
                c.GetProperty("components_reference").GetInt32(),
                c.GetProperty("volume_ml_predicted").GetDouble(),
                c.GetProperty("volume_ml_reference").GetDouble()));
        return new EvaluationResult(
            root.GetProperty("prediction").GetString() ?? "",
            root.GetProperty("reference").GetString() ?? "",
            root.GetProperty("connectivity").GetInt32(),
            classes,
            root.GetProperty("mean_dice").GetDouble(),
            root.GetProperty("components_total_predicted").GetInt32(),
            root.GetProperty("components_total_reference").GetInt32());
    }

    public string ToText()
    {
        var text = new StringBuilder();
        text.AppendLine($"prediction: {Prediction}");
        text.AppendLine($"reference:  {Reference}");
        text.AppendLine($"connectivity: {Connectivity}");
        text.AppendLine($"{"class",-12} {"Dice",7} {"comp.pred",10} {"comp.ref",9} {"mL pred",10} {"mL ref",10}");
        foreach (var c in Classes)
            text.AppendLine(FormattableString.Invariant($"{c.Name,-12} {c.Dice,7:F4} {c.PredictedComponents,10} {c.ReferenceComponents,9} {c.PredictedVolumeMl,10:F2} {c.ReferenceVolumeMl,10:F2}"));
        text.AppendLine(FormattableString.Invariant($"mean Dice (non-background): {MeanDice:F4}"));
        text.Append(FormattableString.Invariant($"components in total (background included): predicted {PredictedComponentsTotal}, reference {ReferenceComponentsTotal}"));
        return text.ToString();
    }
}

public static class SegmentationEvaluation
{
    /// <summary>
    /// Dice of class <paramref name="cls"/>: 2|P∩R| / (|P| + |R|); 1 when the class is absent from both
    /// (nothing to find and nothing found is agreement).
    /// </summary>
    public static double Dice(ReadOnlySpan<byte> predicted, ReadOnlySpan<byte> reference, int cls)
    {
        if (predicted.Length != reference.Length)
            throw new ArgumentException($"Prediction ({predicted.Length} voxels) and reference ({reference.Length} voxels) differ in size.");
        long both = 0, p = 0, r = 0;
        for (int i = 0; i < predicted.Length; i++)
        {
            bool inP = predicted[i] == cls, inR = reference[i] == cls;
            if (inP) p++;
            if (inR) r++;
            if (inP && inR) both++;
        }
        return p + r == 0 ? 1.0 : 2.0 * both / (p + r);
    }

    /// <summary>Volume of one voxel in mL (mm³ / 1000), from the determinant of the affine's linear part.</summary>
    public static double VoxelVolumeMl(Mri.Geometry.Affine affine)
    {
        double a = affine[0, 0], b = affine[0, 1], c = affine[0, 2];
        double d = affine[1, 0], e = affine[1, 1], f = affine[1, 2];
        double g = affine[2, 0], h = affine[2, 1], i = affine[2, 2];
        double det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
        return Math.Abs(det) / 1000.0;
    }

    /// <summary>
    /// Scores class maps <paramref name="predicted"/> against <paramref name="reference"/> on one grid
    /// (<paramref name="sizes"/>, Fortran order). Class 0 is background: it has a Dice and components
    /// but is left out of the mean Dice.
    /// </summary>
    public static EvaluationResult Evaluate(
        ReadOnlySpan<byte> predicted, ReadOnlySpan<byte> reference, (int X, int Y, int Z) sizes,
        double voxelVolumeMl, IReadOnlyList<string> classNames, int connectivity = 6,
        string predictionName = "prediction", string referenceName = "reference")
    {
        if (predicted.Length != reference.Length)
            throw new BadInputException($"{predictionName} has {predicted.Length} voxels but {referenceName} has {reference.Length}; evaluate a segmentation on its reference's grid.");
        int classCount = classNames.Count;
        if (classCount < 2)
            throw new BadInputException($"Evaluation needs at least two classes (background and one tissue), got {classCount}.");
        var predComponents = ConnectedComponents.CountPerClass(predicted, sizes.X, sizes.Y, sizes.Z, classCount, connectivity);
        var refComponents = ConnectedComponents.CountPerClass(reference, sizes.X, sizes.Y, sizes.Z, classCount, connectivity);
        var predCounts = new long[classCount];
        var refCounts = new long[classCount];
        foreach (byte v in predicted) predCounts[v]++;
        foreach (byte v in reference) refCounts[v]++;

        var classes = new List<ClassScore>(classCount);
        for (int c = 0; c < classCount; c++)
            classes.Add(new ClassScore(classNames[c], Dice(predicted, reference, c), predComponents[c], refComponents[c],
                predCounts[c] * voxelVolumeMl, refCounts[c] * voxelVolumeMl));
        double meanDice = classes.Skip(1).Average(c => c.Dice);
        return new EvaluationResult(predictionName, referenceName, connectivity, classes, meanDice, predComponents.Sum(), refComponents.Sum());
    }

    /// <summary>
    /// Scores a predicted class map against a reference volume on the same grid. The prediction holds
    /// class numbers; the reference is mapped through <paramref name="referenceTable"/> when given
    /// (raw dataset labels), and must hold class numbers otherwise.
    /// </summary>
    public static EvaluationResult Evaluate(Volume predicted, Volume reference, IReadOnlyList<string> classNames,
        Mri.Labels.LabelTable? referenceTable, int connectivity, string predictionName, string referenceName)
    {
        if (!predicted.SameGridAs(reference))
            throw new BadInputException(
                $"{predictionName} ({string.Join("x", predicted.Shape)}) and {referenceName} ({string.Join("x", reference.Shape)}) are on different grids " +
                "(shape or voxel-to-world affine differ); resample the segmentation onto the reference grid first.");
        byte[] pred = ToClasses(predicted.Voxels, classNames.Count, predictionName);
        byte[] refClasses = referenceTable is null
            ? ToClasses(reference.Voxels, classNames.Count, referenceName)
            : referenceTable.Apply(reference.Voxels, referenceName);
        return Evaluate(pred, refClasses, (predicted.SizeX, predicted.SizeY, predicted.SizeZ), VoxelVolumeMl(predicted.Affine),
            classNames, connectivity, predictionName, referenceName);
    }

    /// <summary>
    /// Reads and scores a segmentation file against a reference file. The class names come from
    /// <paramref name="referenceTable"/>, else from the names brainseg writes into its label maps, else
    /// "background", "class 1", ... up to the largest value in either map.
    /// </summary>
    public static EvaluationResult EvaluateFiles(string predPath, string refPath, Mri.Labels.LabelTable? referenceTable, int connectivity)
    {
        MriImage predImage = ImageReader.Read(predPath);
        Volume predicted = predImage.GetVolume();
        Volume reference = ImageReader.ReadVolume(refPath);
        IReadOnlyList<string> names = referenceTable?.ClassNames
            ?? ClassNamesMetadata.Read(predImage.Header)
            ?? GenericNames(predicted, reference);
        return Evaluate(predicted, reference, names, referenceTable, connectivity, predPath, refPath);
    }

    static string[] GenericNames(Volume a, Volume b)
    {
        float max = Math.Max(a.Voxels.Max(), b.Voxels.Max());
        if (!(max >= 1 && max < 256))
            throw new InvalidDataException($"The label maps hold values up to {max}; give --label-map to map raw labels to at most 256 classes.");
        return Enumerable.Range(0, (int)max + 1).Select(i => i == 0 ? "background" : $"class {i}").ToArray();
    }

    /// <summary>Class numbers from a label volume whose values must be whole numbers in 0..classCount-1.</summary>
    public static byte[] ToClasses(ReadOnlySpan<float> voxels, int classCount, string source)
    {
        var classes = new byte[voxels.Length];
        for (int i = 0; i < voxels.Length; i++)
        {
            float v = voxels[i];
            if (!(v >= 0 && v < classCount && v == MathF.Floor(v)))
                throw new InvalidDataException(
                    $"{source}: voxel {i} holds {v}, not a class number 0..{classCount - 1}. " +
                    "Give a segmentation of class numbers (as brainseg segment writes); --label-map maps the reference's raw labels only.");
            classes[i] = (byte)v;
        }
        return classes;
    }
}
