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

    /// <summary>
    /// Removes the temporaries a killed writer left in <paramref name="folder"/> (".NAME.PID.GUID.tmp" whose process
    /// is gone), so that interrupted runs do not pile up partial files. Returns how many were removed.
    /// </summary>
    public static int RemoveStale(string folder)
    {
        if (!Directory.Exists(folder)) return 0;
        int removed = 0;
        foreach (string file in Directory.EnumerateFiles(folder, ".*.tmp"))
        {
            string[] parts = Path.GetFileName(file).Split('.');
            // "", NAME..., PID, GUID, "tmp"
            if (parts.Length < 5 || !int.TryParse(parts[^3], out int pid) || parts[^2].Length != 32 || IsRunning(pid)) continue;
            try { File.Delete(file); removed++; } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return removed;
    }

    static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException) { return false; } // no such process
        catch (InvalidOperationException) { return false; }
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
