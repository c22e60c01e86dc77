namespace BrainSeg.Seg.Inference;

/// <summary>
/// The full path with every symbolic link along it resolved, as realpath does (the file itself may not exist
/// yet): what a cohort's planned outputs are compared by, so that two inputs never share one label map. Inputs
/// are protected by device and inode as well (OutputGuard), which also catches hard links.
/// </summary>
public static class RealPath
{
    public static string Of(string path) => Resolve(Path.GetFullPath(path), depth: 0);

    static string Resolve(string full, int depth)
    {
        string root = Path.GetPathRoot(full) ?? "/";
        string current = root;
        foreach (string part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, part);
            // A link found part-way is replaced by its target, itself resolved, and the walk goes on below it.
            if (depth < 40 && new FileInfo(current).LinkTarget is not null && new FileInfo(current).ResolveLinkTarget(returnFinalTarget: true) is { } target)
                current = Resolve(target.FullName, depth + 1);
        }
        return current;
    }
}
