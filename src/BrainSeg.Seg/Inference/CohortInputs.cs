using BrainSeg.Mri;
using Microsoft.Extensions.FileSystemGlobbing;
using nietras.SeparatedValues;

namespace BrainSeg.Seg.Inference;

/// <summary>One image of a cohort: its path and the relative path that names its output and orders the shards.</summary>
public sealed record CohortInput(string Path, string RelativePath);

/// <summary>
/// The images of a cohort, found from a folder (searched recursively), a glob (<c>scans/*/T1.nii.gz</c>,
/// <c>**</c> for any depth) or a manifest (a .csv file with an <c>input</c> column, paths relative to the
/// manifest's folder). Every list comes back sorted by relative path (ordinal), so a shard is the same
/// share on every machine whatever order the file system lists.
/// </summary>
public static class CohortInputs
{
    /// <summary>The name endings of the images the readers take; an .img is the data half of an .hdr and is not listed.</summary>
    public static readonly string[] ImageExtensions = [".nii.gz", ".nii", ".hdr.gz", ".hdr", ".mgh.gz", ".mgz", ".mgh"];

    /// <summary>True when <paramref name="input"/> names many images (a folder, a glob or a manifest) rather than one.</summary>
    public static bool NamesMany(string input) =>
        Directory.Exists(input) || IsGlob(input) || input.EndsWith(".csv", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The images <paramref name="input"/> names, sorted by relative path. Files under <paramref name="exclude"/>
    /// (the output folder) are left out, so a rerun never takes its own outputs for inputs.
    /// </summary>
    public static IReadOnlyList<CohortInput> Discover(string input, string? exclude = null)
    {
        IEnumerable<CohortInput> found;
        string? searched = null;
        if (Directory.Exists(input))
            found = FromFolder(searched = input, "**/*");
        else if (IsGlob(input))
        {
            var (root, pattern) = SplitGlob(input);
            if (!Directory.Exists(root))
                throw new DirectoryNotFoundException($"{input}: the folder {root} does not exist; check the pattern's fixed part.");
            found = FromFolder(searched = root, pattern);
        }
        else if (input.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
            found = FromManifest(input);
        else if (File.Exists(input) && ImageExtension(input) is not null)
            found = [new CohortInput(System.IO.Path.GetFullPath(input), System.IO.Path.GetFileName(input))];
        else
            throw new FileNotFoundException($"{input}: no such image, folder or manifest; give an image, a folder of images, a glob such as 'scans/*/T1.nii.gz' or a manifest .csv with an 'input' column.", input);

        // Only an output folder strictly inside the searched one is left out; the output folder being the
        // input folder itself is refused later, where outputs are checked against inputs.
        string? excluded = null;
        if (exclude is not null && searched is not null)
        {
            string outputs = WithSeparator(System.IO.Path.GetFullPath(exclude)), root = WithSeparator(System.IO.Path.GetFullPath(searched));
            if (outputs.StartsWith(root, StringComparison.Ordinal) && outputs != root) excluded = outputs;
        }
        var list = found
            .Where(i => excluded is null || !System.IO.Path.GetFullPath(i.Path).StartsWith(excluded, StringComparison.Ordinal))
            .OrderBy(i => i.RelativePath, StringComparer.Ordinal)
            .ToList();
        if (list.Count == 0)
            throw new FileNotFoundException($"{input}: no NIfTI or MGH/MGZ image found (names ending {string.Join(", ", ImageExtensions)}).", input);
        return list;
    }

    /// <summary>The name ending of an image this reader takes, or null.</summary>
    public static string? ImageExtension(string path) =>
        ImageExtensions.FirstOrDefault(e => path.EndsWith(e, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The label map's path for an input: the same relative path under <paramref name="outputFolder"/>, NIfTI
    /// always (the writer writes NIfTI), gzipped when the input was compressed: a.nii.gz, a.mgz, a.hdr.gz → a.nii.gz;
    /// a.nii, a.mgh, a.hdr → a.nii.
    /// </summary>
    public static string OutputPath(CohortInput input, string outputFolder)
    {
        string extension = ImageExtension(input.RelativePath)
            ?? throw new BadInputException($"{input.Path} is not a NIfTI or MGH/MGZ image name.");
        bool compressed = extension.EndsWith(".gz") || extension == ".mgz";
        string stem = input.RelativePath[..^extension.Length];
        return System.IO.Path.Combine(outputFolder, stem + (compressed ? ".nii.gz" : ".nii"));
    }

    /// <summary>A '*' makes a glob: '*' within one name, '**' for any depth (the only wildcards the matcher knows).</summary>
    static bool IsGlob(string input) => input.Contains('*');

    /// <summary>The fixed folder before the first wildcard, and the pattern relative to it.</summary>
    static (string Root, string Pattern) SplitGlob(string glob)
    {
        string normalised = glob.Replace('\\', '/');
        int wildcard = normalised.IndexOf('*');
        int cut = normalised.LastIndexOf('/', wildcard);
        string root = cut < 0 ? "." : cut == 0 ? "/" : normalised[..cut];
        return (root, normalised[(cut + 1)..]);
    }

    static IEnumerable<CohortInput> FromFolder(string root, string pattern)
    {
        var matcher = new Matcher(StringComparison.Ordinal);
        matcher.AddInclude(pattern);
        foreach (string path in matcher.GetResultsInFullPath(root))
        {
            string relative = System.IO.Path.GetRelativePath(root, path).Replace('\\', '/');
            if (ImageExtension(path) is not null && !relative.Split('/').Any(part => part.StartsWith('.')))
                yield return new CohortInput(path, relative);
        }
    }

    static IEnumerable<CohortInput> FromManifest(string manifest)
    {
        if (!File.Exists(manifest))
            throw new FileNotFoundException($"{manifest}: no such manifest; give a .csv file with an 'input' column (one image path per row).", manifest);
        string folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(manifest))!;
        var inputs = new List<CohortInput>();
        using var reader = Sep.Reader(o => o with { Unescape = true, Trim = SepTrim.All }).FromFile(manifest);
        if (!reader.Header.TryIndexOf("input", out int column))
            throw new InvalidDataException($"{manifest}: no 'input' column in the header row ({string.Join(", ", reader.Header.ColNames)}); name the column of image paths 'input'.");
        foreach (var row in reader)
        {
            string value = row[column].ToString();
            if (value.Length == 0) continue;
            string path = System.IO.Path.GetFullPath(value, folder);
            if (ImageExtension(path) is null)
                throw new InvalidDataException($"{manifest}, line {row.LineNumberFrom}: {value} is not a NIfTI or MGH/MGZ image name ({string.Join(", ", ImageExtensions)}).");
            // Paths inside the manifest's folder keep their subfolders in the output name; others their file name.
            string relative = System.IO.Path.GetRelativePath(folder, path).Replace('\\', '/');
            inputs.Add(new CohortInput(path, relative.StartsWith("../") || System.IO.Path.IsPathRooted(relative) ? System.IO.Path.GetFileName(path) : relative));
        }
        return inputs;
    }

    static string WithSeparator(string folder) =>
        folder.EndsWith(System.IO.Path.DirectorySeparatorChar) ? folder : folder + System.IO.Path.DirectorySeparatorChar;
}
