namespace BrainSeg.Cuda;

/// <summary>One row of native/cuda-libraries.tsv: a logical library name and how to find it.</summary>
internal sealed record LibrarySpec(string Name, IReadOnlyList<string> Sonames, IReadOnlyList<string> Companions, bool SonameIsCudaMajor);

/// <summary>Parses the discovery table embedded from native/cuda-libraries.tsv (plain text: small and AOT-safe).</summary>
internal static class LibraryTable
{
    public const string ResourceName = "cuda-libraries.tsv";

    public static IReadOnlyList<LibrarySpec> Load()
    {
        using var stream = typeof(LibraryTable).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The embedded resource '{ResourceName}' is missing from BrainSeg.Cuda; rebuild the project.");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd());
    }

    public static IReadOnlyList<LibrarySpec> Parse(string text)
    {
        var specs = new List<LibrarySpec>();
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (line.Trim().Length == 0 || line.TrimStart().StartsWith('#')) continue;
            string[] cells = line.Split('\t');
            if (cells.Length != 4)
                throw new FormatException($"{ResourceName} line {i + 1}: expected 4 tab-separated columns (name, sonames, companions, cuda-major), found {cells.Length}: '{line}'.");
            string name = cells[0].Trim();
            var sonames = List(cells[1]);
            if (name.Length == 0 || sonames.Count == 0)
                throw new FormatException($"{ResourceName} line {i + 1}: a library needs a name and at least one soname: '{line}'.");
            bool cudaMajor = cells[3].Trim() switch
            {
                "yes" => true,
                "no" => false,
                var other => throw new FormatException($"{ResourceName} line {i + 1}: cuda-major must be 'yes' or 'no', not '{other}'."),
            };
            specs.Add(new LibrarySpec(name, sonames, List(cells[2]), cudaMajor));
        }
        return specs;
    }

    private static List<string> List(string cell) =>
        cell.Trim() == "-" ? [] : [.. cell.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    /// <summary>The number after the last '.so.' component's first dot: libcublas.so.12 → 12, libcudnn.so.9 → 9.</summary>
    public static int SonameMajor(string soname)
    {
        int at = soname.LastIndexOf(".so.", StringComparison.Ordinal);
        if (at < 0) return 0;
        string rest = soname[(at + 4)..];
        int dot = rest.IndexOf('.');
        return int.TryParse(dot < 0 ? rest : rest[..dot], out int major) ? major : 0;
    }
}
