using System.Globalization;

namespace BrainSeg.Mri.Labels;

/// <summary>
/// A mapping from a dataset's label values to training classes, read from a table (see
/// Presets/*.tsv): "source label or inclusive range a-b &lt;TAB&gt; class name &lt;TAB&gt; comment"
/// per line, '#' comments, and a comment line "classes, in output order: 0 background, 1 WM, ..."
/// that fixes the class numbers. Unlisted labels are class 0, background.
/// </summary>
public sealed class LabelTable
{
    private readonly List<(int From, int To, int Class)> _rules;
    private readonly int[] _lookup; // class of each source label 0..max listed label

    private LabelTable(string name, IReadOnlyList<string> classNames, List<(int, int, int)> rules)
    {
        Name = name;
        ClassNames = classNames;
        _rules = rules;
        int max = rules.Count == 0 ? 0 : rules.Max(r => r.Item2);
        _lookup = new int[max + 1];
        foreach (var (from, to, cls) in rules)
            for (int v = Math.Max(0, from); v <= to; v++) _lookup[v] = cls;
    }

    public string Name { get; }
    /// <summary>Class names by class number; [0] is background.</summary>
    public IReadOnlyList<string> ClassNames { get; }
    public int ClassCount => ClassNames.Count;

    /// <summary>The most classes a table may name: class maps are written one byte per voxel.</summary>
    public const int MaxClasses = 256;

    /// <summary>The largest table file read (a real table is a few kilobytes).</summary>
    public const int MaxFileBytes = 1 << 20;

    public static IReadOnlyList<string> PresetNames { get; } = ["freesurfer-to-adult6", "mrbrains13", "miccai2012-to-adult6"];

    /// <summary>A table shipped with the library (see <see cref="PresetNames"/>).</summary>
    public static LabelTable Preset(string name)
    {
        if (!PresetNames.Contains(name))
            throw new BadInputException($"Unknown label preset \"{name}\": choose one of {string.Join(", ", PresetNames)}, or give a .tsv table.");
        using var stream = typeof(LabelTable).Assembly.GetManifestResourceStream($"BrainSeg.Mri.Labels.Presets.{name}.tsv")
            ?? throw new InvalidOperationException($"The label preset {name} is missing from the assembly.");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd(), name);
    }

    /// <summary>A preset name or the path of a table file.</summary>
    public static LabelTable Load(string presetOrPath)
    {
        if (PresetNames.Contains(presetOrPath)) return Preset(presetOrPath);
        if (!File.Exists(presetOrPath))
            throw new ImageFormatException(presetOrPath, "no such label table", $"Give a .tsv table or one of the presets: {string.Join(", ", PresetNames)}.");
        return Parse(System.Text.Encoding.UTF8.GetString(IO.FileBytes.ReadSmall(presetOrPath, MaxFileBytes, "label table")), presetOrPath);
    }

    public static LabelTable Parse(string text, string name)
    {
        List<string>? classNames = null;
        var rows = new List<(int From, int To, string Class, int Line)>();
        var lines = text.Split('\n');
        for (int n = 0; n < lines.Length; n++)
        {
            string line = lines[n].TrimEnd('\r');
            if (line.StartsWith('#'))
            {
                int marker = line.IndexOf("classes, in output order:", StringComparison.Ordinal);
                if (marker >= 0) classNames = ParseClassOrder(line[(marker + 25)..], name, n + 1);
                continue;
            }
            if (line.Trim().Length == 0) continue;
            var fields = line.Split('\t');
            if (fields.Length < 2)
                throw Bad(name, n + 1, $"expected \"label<TAB>class\" but found \"{line}\"");
            var (from, to) = ParseRange(fields[0].Trim(), name, n + 1);
            rows.Add((from, to, fields[1].Trim(), n + 1));
        }
        if (classNames is null)
            throw new ImageFormatException(name, "the label table has no \"# classes, in output order: 0 background, 1 ...\" line", "Add that comment line to fix the class numbers.");
        if (classNames.Count > MaxClasses)
            throw new ImageFormatException(name, $"the label table names {classNames.Count} classes, more than the {MaxClasses} a label map holds (one byte per voxel)", "Merge classes until at most 256 remain.");
        var rules = new List<(int, int, int)>();
        foreach (var (from, to, cls, line) in rows)
        {
            int index = classNames.IndexOf(cls);
            if (index < 0)
                throw Bad(name, line, $"class \"{cls}\" is not among the classes {string.Join(", ", classNames)}");
            foreach (var (f, t, _) in rules)
                if (from <= t && f <= to)
                    throw Bad(name, line, $"labels {from}-{to} overlap an earlier line ({f}-{t})");
            rules.Add((from, to, index));
        }
        return new LabelTable(name, classNames, rules);
    }

    private static List<string> ParseClassOrder(string list, string name, int line)
    {
        var names = new List<string>();
        foreach (string item in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = item.Split(' ', 2, StringSplitOptions.TrimEntries);
            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int number) || number != names.Count)
                throw Bad(name, line, $"class list entry \"{item}\" should be \"{names.Count} name\"");
            names.Add(parts[1]);
        }
        if (names.Count < 2) throw Bad(name, line, "the class list needs background and at least one class");
        return names;
    }

    private static (int From, int To) ParseRange(string field, string name, int line)
    {
        var parts = field.Split('-');
        if (parts.Length is 1 or 2 &&
            int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int from) &&
            int.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out int to) &&
            from <= to && to <= 1_000_000)
            return (from, to);
        throw Bad(name, line, $"\"{field}\" is not a label (a non-negative integer) or an inclusive range a-b");
    }

    private static ImageFormatException Bad(string name, int line, string problem) =>
        new(name, $"line {line}: {problem}", "Fix the label table (format: label or a-b, a tab, the class name).");

    /// <summary>The class of one source label; unlisted (and negative) labels are background.</summary>
    public int ClassOf(int label) => (uint)label < (uint)_lookup.Length ? _lookup[label] : 0;

    /// <summary>Maps a label volume (values must be whole numbers) to class numbers.</summary>
    public byte[] Apply(ReadOnlySpan<float> labels, string sourceForErrors = "label map")
    {
        if (ClassCount > MaxClasses) throw new InvalidOperationException($"More than {MaxClasses} classes do not fit a byte; Parse refuses such tables.");
        var classes = new byte[labels.Length];
        for (int i = 0; i < labels.Length; i++)
        {
            float v = labels[i];
            int label = (int)v;
            if (label != v)
                throw new ImageFormatException(sourceForErrors, $"voxel {i} holds {v}, not a whole-number label", "Give a label map (integer labels), not an intensity image.");
            classes[i] = (byte)ClassOf(label);
        }
        return classes;
    }
}
