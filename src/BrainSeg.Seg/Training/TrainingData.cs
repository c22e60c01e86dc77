using System.Globalization;
using BrainSeg.Mri;
using BrainSeg.Mri.IO;

namespace BrainSeg.Seg.Training;

/// <summary>
/// Source labels → training classes, read from a TSV: <c>label-or-range TAB class-name [TAB comment]</c>,
/// '#' lines are comments; unlisted labels are class 0 (background). Classes are numbered in order of first
/// appearance after background, unless a comment line <c># classes, in output order: 0 background, 1 WM, …</c>
/// fixes the order.
/// </summary>
public sealed class ClassMapping
{
    private readonly List<(int First, int Last, int Class)> _ranges = [];

    public ClassMapping(IReadOnlyList<string> classNames, IEnumerable<(int First, int Last, int Class)> ranges, string source)
    {
        (ClassNames, Source) = (classNames, source);
        _ranges.AddRange(ranges);
    }

    public IReadOnlyList<string> ClassNames { get; }
    public int Classes => ClassNames.Count;
    public string Source { get; }

    public int Map(int label)
    {
        foreach (var (first, last, c) in _ranges)
            if (label >= first && label <= last) return c;
        return 0;
    }

    /// <summary>The table as one line for checkpoint metadata: "2=1;41=1;1000-1035=2;…".</summary>
    public string Describe() => string.Join(";", _ranges.Select(r => (r.First == r.Last ? $"{r.First}" : $"{r.First}-{r.Last}") + $"={r.Class}"));

    public static ClassMapping ReadTsv(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Label map {path} does not exist: pass a TSV of 'label<TAB>class' lines.", path);
        var names = new List<string> { "background" };
        var ranges = new List<(int, int, string)>();
        var lineNumber = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0) continue;
            if (line.StartsWith('#'))
            {
                const string marker = "classes, in output order:";
                var at = line.IndexOf(marker, StringComparison.OrdinalIgnoreCase);
                if (at >= 0)
                {
                    names.Clear();
                    foreach (var item in line[(at + marker.Length)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    {
                        var parts = item.Split(' ', 2, StringSplitOptions.TrimEntries);
                        names.Add(parts.Length == 2 ? parts[1] : parts[0]);
                    }
                }
                continue;
            }
            var fields = line.Split('\t');
            if (fields.Length < 2) throw new FormatException($"{path}:{lineNumber}: expected 'label<TAB>class', got '{line}'.");
            var span = fields[0].Trim();
            var dash = span.IndexOf('-', 1);
            if (!int.TryParse(dash < 0 ? span : span[..dash], CultureInfo.InvariantCulture, out var first)
                || !int.TryParse(dash < 0 ? span : span[(dash + 1)..], CultureInfo.InvariantCulture, out var last) || last < first)
                throw new FormatException($"{path}:{lineNumber}: '{span}' is not a label or an inclusive range a-b.");
            ranges.Add((first, last, fields[1].Trim()));
        }
        foreach (var (_, _, name) in ranges)
            if (!names.Contains(name)) names.Add(name);
        return new ClassMapping(names, ranges.Select(r => (r.Item1, r.Item2, names.IndexOf(r.Item3))), Path.GetFileName(path));
    }
}

/// <summary>Reads an image and its label map into a <see cref="LabelledVolume"/>: labels mapped to classes, intensities normalised.</summary>
public static class TrainingData
{
    /// <summary>How images are normalised, recorded in checkpoints so inference can repeat it.</summary>
    public const string Normalisation = "z-score over voxels with intensity > 0 (mean 0, standard deviation 1); others as the same transform";

    public static LabelledVolume LoadPair(string imagePath, string labelPath, ClassMapping mapping)
    {
        var image = ImageReader.ReadVolume(imagePath);
        var labels = ImageReader.ReadVolume(labelPath);
        if (!image.SameGridAs(labels))
            throw new ArgumentException($"{labelPath} ({string.Join("×", labels.Shape)}) is not on the grid of {imagePath} ({string.Join("×", image.Shape)}): resample the labels to the image first.");
        var classes = new int[labels.Count];
        for (var i = 0; i < classes.Length; i++) classes[i] = mapping.Map((int)MathF.Round(labels.Voxels[i]));
        return new LabelledVolume(Path.GetFileName(imagePath), Normalise(image.Voxels), classes, image.SizeX, image.SizeY, image.SizeZ);
    }

    /// <summary>Z-score with the mean and spread of the foreground (intensity &gt; 0), applied to every voxel.</summary>
    public static float[] Normalise(float[] voxels)
    {
        double sum = 0, sumsq = 0;
        long n = 0;
        foreach (var v in voxels)
            if (v > 0) { sum += v; sumsq += (double)v * v; n++; }
        if (n < 2) throw new ArgumentException("The image has fewer than two voxels above 0: nothing to normalise (is it empty?).");
        var mean = sum / n;
        var std = Math.Sqrt(Math.Max(sumsq / n - mean * mean, 1e-12));
        return Array.ConvertAll(voxels, v => (float)((v - mean) / std));
    }
}
