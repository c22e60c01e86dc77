namespace BrainSeg.Cuda;

/// <summary>
/// The convolution engines chosen by timing, remembered on disk beside the compiled kernels
/// (<c>&lt;kernel cache&gt;/cudnn-engines.tsv</c>), so a geometry is timed once per device, cuDNN version, layout and
/// precision rather than once per process. One line per problem: key, engine choice, workspace bytes, timed ms.
/// The file is a hint: an unreadable or malformed line is ignored, and a choice that no longer builds is timed again.
/// Thread-safe; concurrent processes each rewrite the whole file atomically, merging what is on disk.
/// </summary>
public static class EngineCache
{
    public const string FileName = "cudnn-engines.tsv";

    /// <summary>A remembered choice: the engine, the workspace it needs and how long it took when timed.</summary>
    public readonly record struct Entry(EngineChoice Choice, long WorkspaceBytes, double Milliseconds);

    private static readonly Lock Gate = new();
    private static Dictionary<string, Entry>? _entries;
    private static (string Path, DateTime Written, long Bytes) _loadedFrom;

    public static string FilePath => Path.Combine(KernelCache.CacheFolder(), FileName);

    /// <summary>The number of remembered choices and the file's size in bytes (0, 0 when there is none).</summary>
    public static (int Entries, long Bytes) Size()
    {
        lock (Gate)
        {
            var file = new FileInfo(FilePath);
            return (Load().Count, file.Exists ? file.Length : 0);
        }
    }

    public static bool TryGet(string key, out Entry entry)
    {
        lock (Gate) return Load().TryGetValue(key, out entry);
    }

    public static void Remember(string key, Entry entry)
    {
        lock (Gate)
        {
            var entries = Load();
            foreach (var (k, v) in Read(FilePath)) entries.TryAdd(k, v);  // keep what other processes added meanwhile
            entries[key] = entry;
            Write(FilePath, entries);
        }
    }

    public static void Forget(string key)
    {
        lock (Gate)
        {
            var entries = Load();
            if (entries.Remove(key)) Write(FilePath, entries);
        }
    }

    // Read again whenever the file changed (another process, a cleared cache) or the folder did (BRAINSEG_KERNEL_CACHE).
    private static Dictionary<string, Entry> Load()
    {
        var file = new FileInfo(FilePath);
        var stamp = (file.FullName, file.Exists ? file.LastWriteTimeUtc : default, file.Exists ? file.Length : -1);
        if (_entries is null || _loadedFrom != stamp)
        {
            _entries = Read(file.FullName);
            _loadedFrom = stamp;
        }
        return _entries;
    }

    private static Dictionary<string, Entry> Read(string path)
    {
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        string[] lines;
        try { lines = File.Exists(path) ? File.ReadAllLines(path) : []; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return entries; }
        foreach (var line in lines)
        {
            var f = line.Split('\t');
            if (f.Length == 4 && EngineChoice.TryParse(f[1], out var choice) && long.TryParse(f[2], out long ws) && ws >= 0
                && double.TryParse(f[3], System.Globalization.CultureInfo.InvariantCulture, out double ms))
                entries[f[0]] = new Entry(choice!, ws, ms);
        }
        return entries;
    }

    // Written to a temporary name and renamed; a cache that cannot be written only costs a timing next time.
    private static void Write(string path, Dictionary<string, Entry> entries)
    {
        string temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllLines(temporary, entries.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e =>
                FormattableString.Invariant($"{e.Key}\t{e.Value.Choice}\t{e.Value.WorkspaceBytes}\t{e.Value.Milliseconds:G6}")));
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temporary); } catch (Exception d) when (d is IOException or UnauthorizedAccessException) { }
        }
    }
}
