namespace BrainSeg.Mri.IO;

/// <summary>
/// Outputs never touch inputs. Files are compared by identity (device and inode after following links),
/// so a symlinked folder, a hard link or "a/../b" cannot hide that an output would replace an input; a
/// name of a .hdr/.img pair stands for both its files. Checked before any work starts.
/// </summary>
public static class OutputGuard
{
    /// <summary>
    /// Refuses (<see cref="BadInputException"/>) an output that is an input, two outputs that are one file,
    /// and an output whose path is a folder or whose folder is a file. Null entries are skipped.
    /// </summary>
    public static void Check(IEnumerable<string?> inputs, IEnumerable<string?> outputs)
    {
        var inputFiles = inputs.OfType<string>().SelectMany(i => Files(i).Select(f => (Name: i, File: f))).ToList();
        var seen = new List<(int Index, string Name, string File)>();
        int index = 0;
        foreach (string output in outputs.OfType<string>())
        {
            CheckPlace(output);
            foreach (string file in Files(output))
            {
                foreach (var input in inputFiles)
                    if (Same(file, input.File))
                        throw new BadInputException($"The output {output} would overwrite the input {input.Name}{Pair(input.File)}; give the output another name (inputs are never overwritten).");
                foreach (var other in seen)
                    if (other.Index != index && (Path.GetFullPath(file) == Path.GetFullPath(other.File) || Same(file, other.File)))
                        throw new BadInputException($"The outputs {other.Name} and {output} name the same file; give them different names.");
                seen.Add((index, output, file));
            }
            index++;
        }
    }

    /// <summary>Refuses an output folder that is a file (an input, perhaps) or a device.</summary>
    public static void CheckFolder(string folder)
    {
        if (FileIdentity.KindOf(folder) is FileKind.Regular or FileKind.Other)
            throw new BadInputException($"The output folder {folder} is a file; give a folder (it is created when missing).");
    }

    /// <summary>The files of a .hdr/.img pair name (either member, with or without .gz); otherwise the name itself.</summary>
    public static IReadOnlyList<string> Files(string path)
    {
        string lower = path.ToLowerInvariant();
        foreach (string suffix in new[] { ".hdr.gz", ".img.gz", ".hdr", ".img" })
            if (lower.EndsWith(suffix, StringComparison.Ordinal))
            {
                string stem = path[..^suffix.Length];
                return [stem + ".hdr", stem + ".img", stem + ".hdr.gz", stem + ".img.gz"];
            }
        return [path];
    }

    /// <summary>An output must be a file in a folder: not an existing folder, and not below something that is a file.</summary>
    static void CheckPlace(string output)
    {
        if (FileIdentity.KindOf(output) == FileKind.Directory)
            throw new BadInputException($"The output {output} is a folder; give a file name inside it.");
        if (FileIdentity.KindOf(output) == FileKind.Other)
            throw new BadInputException($"The output {output} is a pipe, socket or device; give the name of a file on disk.");
        for (string? folder = Path.GetDirectoryName(Path.GetFullPath(output)); folder is not null; folder = Path.GetDirectoryName(folder))
        {
            switch (FileIdentity.KindOf(folder))
            {
                case FileKind.Directory: return;
                case FileKind.Regular or FileKind.Other:
                    throw new BadInputException($"The output {output} cannot be written: {folder} is a file, not a folder.");
            }
        }
    }

    static bool Same(string a, string b) => FileIdentity.Of(a) is { } x && FileIdentity.Of(b) is { } y && x == y;

    static string Pair(string inputFile) =>
        Files(inputFile).Count > 1 ? $" (its file {Path.GetFileName(inputFile)}, one of a .hdr/.img pair)" : "";
}
