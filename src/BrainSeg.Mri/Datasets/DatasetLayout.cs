using System.Globalization;
using BrainSeg.Mri.IO;

namespace BrainSeg.Mri.Datasets;

/// <summary>One training or test subject: an image, its label map (absent for unlabelled data) and its split.</summary>
public sealed record Subject(string Id, string ImagePath, string? LabelPath, string Split);

/// <summary>The dataset layouts the paper's data come in, and a generic CSV manifest.</summary>
public static class DatasetLayout
{
    /// <summary>MRBrainS13 training data: <c>TrainingData/&lt;n&gt;/T1.nii</c> with <c>LabelsForTraining.nii</c> beside it.</summary>
    public static IReadOnlyList<Subject> MrBrainS13(string root)
    {
        string training = Path.Combine(root, "TrainingData");
        if (!Directory.Exists(training))
            throw new ImageFormatException(root, "no TrainingData folder: this is not the MRBrainS13 layout (TrainingData/<n>/T1.nii, LabelsForTraining.nii)", "Give the folder that holds TrainingData.");
        var subjects = new List<Subject>();
        foreach (string folder in Directory.GetDirectories(training).OrderBy(NaturalKey, StringComparer.Ordinal))
        {
            string image = Path.Combine(folder, "T1.nii");
            string labels = Path.Combine(folder, "LabelsForTraining.nii");
            subjects.Add(new Subject(Path.GetFileName(folder), RequireFile(image, labels), RequireFile(labels, image), "train"));
        }
        if (subjects.Count == 0)
            throw new ImageFormatException(training, "no subject folders", "Each subject sits in TrainingData/<n>/ with T1.nii and LabelsForTraining.nii.");
        return subjects;
    }

    /// <summary>
    /// MICCAI 2012 multi-atlas labelling: <c>training-images/&lt;id&gt;_3.nii</c> with
    /// <c>training-labels/&lt;id&gt;_3_glm.nii</c>, and the same for testing-* (split "test").
    /// </summary>
    public static IReadOnlyList<Subject> Miccai2012(string root)
    {
        var subjects = new List<Subject>();
        foreach (var (split, prefix) in new[] { ("train", "training"), ("test", "testing") })
        {
            string images = Path.Combine(root, prefix + "-images");
            if (!Directory.Exists(images)) continue;
            foreach (string image in Directory.GetFiles(images, "*_3.nii*").Order(StringComparer.Ordinal))
            {
                string file = Path.GetFileName(image);
                string id = file[..file.IndexOf("_3.nii", StringComparison.Ordinal)];
                string labels = Path.Combine(root, prefix + "-labels", file.Replace("_3.nii", "_3_glm.nii"));
                subjects.Add(new Subject(id, image, RequireFile(labels, image), split));
            }
        }
        if (subjects.Count == 0)
            throw new ImageFormatException(root, "no training-images/<id>_3.nii files: this is not the MICCAI 2012 layout", "Give the folder that holds training-images and training-labels.");
        return subjects;
    }

    /// <summary>
    /// A CSV manifest: "image,label,split" per line (an optional header line naming those columns);
    /// relative paths are relative to the manifest's folder; an empty label means unlabelled.
    /// </summary>
    public static IReadOnlyList<Subject> Manifest(string csvPath)
    {
        if (!File.Exists(csvPath))
            throw new ImageFormatException(csvPath, "the manifest does not exist", "Check the path.");
        string folder = Path.GetDirectoryName(Path.GetFullPath(csvPath))!;
        var subjects = new List<Subject>();
        var lines = File.ReadAllLines(csvPath);
        for (int n = 0; n < lines.Length; n++)
        {
            string line = lines[n].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var fields = line.Split(',').Select(f => f.Trim().Trim('"')).ToArray();
            if (n == 0 && fields[0].Equals("image", StringComparison.OrdinalIgnoreCase)) continue;
            if (fields.Length != 3 || fields[0].Length == 0 || fields[2].Length == 0)
                throw new ImageFormatException(csvPath, $"line {n + 1}: expected \"image,label,split\" but found \"{line}\"", "Give three comma-separated fields; leave the label empty for unlabelled images.");
            string image = Path.Combine(folder, fields[0]);
            string? labels = fields[1].Length == 0 ? null : Path.Combine(folder, fields[1]);
            subjects.Add(new Subject(Path.GetFileName(fields[0]).Split('.')[0], RequireFile(image, labels), labels is null ? null : RequireFile(labels, image), fields[2]));
        }
        if (subjects.Count == 0)
            throw new ImageFormatException(csvPath, "the manifest lists no images", "Add lines \"image,label,split\".");
        return subjects;
    }

    /// <summary>Reads a subject's image and label map and checks that they share one grid.</summary>
    public static (Volume Image, Volume? Labels) Load(Subject subject)
    {
        var image = ImageReader.ReadVolume(subject.ImagePath);
        if (subject.LabelPath is null) return (image, null);
        var labels = ImageReader.ReadVolume(subject.LabelPath);
        if (!image.SameGridAs(labels))
            throw new ImageFormatException(subject.LabelPath,
                $"this label map does not share the grid of its image {subject.ImagePath}: shape [{string.Join(", ", labels.Shape)}] vs [{string.Join(", ", image.Shape)}], affine {labels.Affine} vs {image.Affine}",
                "Resample the label map onto the image grid, or pair the right files.");
        return (image, labels);
    }

    private static string RequireFile(string path, string? partner) =>
        File.Exists(path) ? path : throw new ImageFormatException(path, partner is null ? "the file is missing" : $"the file is missing (it pairs with {partner})", "Check the dataset folder or the manifest.");

    private static string NaturalKey(string path)
    {
        string name = Path.GetFileName(path);
        return int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n.ToString("D10", CultureInfo.InvariantCulture) : name;
    }
}
