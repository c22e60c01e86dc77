namespace BrainSeg.Seg.Reports;

/// <summary>Writes files under a temporary name in the same folder and renames them when complete, so a failure never leaves a partial output.</summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string text) => Write(path, stream =>
    {
        using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), leaveOpen: true);
        writer.Write(text);
    });

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, stream => stream.Write(copy));
    }

    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string? folder = Path.GetDirectoryName(full);
        if (folder is not null) Directory.CreateDirectory(folder);
        string temporary = Path.Combine(folder ?? ".", $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                write(stream);
                stream.Flush(flushToDisk: true); // the rename must not publish data still in the page cache
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temporary); } catch (IOException) { }
            throw;
        }
    }
}
