namespace BrainSeg.Seg.Inference;

/// <summary>
/// What two file names are compared by before an output is written, so that no output lands on an input:
/// the full path with every symbolic link along it resolved, as realpath does (the file itself may not
/// exist yet). Two names of one file through a hard link compare unequal here; comparing device and inode
/// would catch those too, and belongs in this one place.
/// </summary>
public static class FileIdentity
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
