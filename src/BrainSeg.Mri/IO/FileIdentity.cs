using System.Runtime.InteropServices;

namespace BrainSeg.Mri.IO;

/// <summary>What a path names, after following links.</summary>
public enum FileKind { Missing, Regular, Directory, Other }

/// <summary>
/// A file's identity, device and inode after following links, so two names of one file (a symlinked
/// folder, a hard link, "a/../b") compare equal. Read with stat(2) on Linux; elsewhere the identity is
/// the fully resolved path and every existing non-folder counts as regular.
/// </summary>
public readonly record struct FileIdentity(ulong Device, ulong Inode, string? ResolvedPath)
{
    /// <summary>What <paramref name="path"/> names, following links: a FIFO, socket or device is <see cref="FileKind.Other"/>.</summary>
    public static FileKind KindOf(string path)
    {
        if (Stat(path) is { } s)
            return (s.Mode & TypeMask) switch { RegularType => FileKind.Regular, DirectoryType => FileKind.Directory, _ => FileKind.Other };
        return Directory.Exists(path) ? FileKind.Directory : File.Exists(path) && !OperatingSystem.IsLinux() ? FileKind.Regular : FileKind.Missing;
    }

    /// <summary>The identity of an existing file or folder; null when nothing is there.</summary>
    public static FileIdentity? Of(string path)
    {
        if (OperatingSystem.IsLinux())
            return Stat(path) is { } s ? new FileIdentity(s.Device, s.Inode, null) : null;
        if (!File.Exists(path) && !Directory.Exists(path)) return null;
        return new FileIdentity(0, 0, ResolveLinks(Path.GetFullPath(path)));
    }

    /// <summary>The path with every symbolic link along it followed (for systems without stat).</summary>
    static string ResolveLinks(string full)
    {
        string? parent = Path.GetDirectoryName(full);
        string resolved = parent is null ? full : Path.Combine(ResolveLinks(parent), Path.GetFileName(full));
        FileSystemInfo info = Directory.Exists(resolved) ? new DirectoryInfo(resolved) : new FileInfo(resolved);
        return info.ResolveLinkTarget(returnFinalTarget: true)?.FullName is { } target ? ResolveLinks(target) : resolved;
    }

    const uint TypeMask = 0xF000, RegularType = 0x8000, DirectoryType = 0x4000;

    readonly record struct Status(ulong Device, ulong Inode, uint Mode);

    /// <summary>stat(2) of the path (links followed), or null when it does not exist or cannot be examined.</summary>
    static unsafe Status? Stat(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        // struct stat: st_dev at 0 and st_ino at 8 on both 64-bit Linux ABIs; st_mode follows st_nlink (8 bytes) on x86-64 and precedes it on arm64.
        int modeOffset = RuntimeInformation.ProcessArchitecture switch { Architecture.X64 => 24, Architecture.Arm64 => 16, _ => -1 };
        if (modeOffset < 0) return null;
        byte* buffer = stackalloc byte[512];
        int rc;
        try { rc = stat(path, buffer); }
        catch (EntryPointNotFoundException) { rc = __xstat(StatVersion, path, buffer); } // glibc before 2.33
        if (rc != 0) return null;
        return new Status(*(ulong*)buffer, *(ulong*)(buffer + 8), *(uint*)(buffer + modeOffset));
    }

    static int StatVersion => RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 1 : 0;

    [DllImport("libc", SetLastError = true)]
    static extern unsafe int stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* buffer);

    [DllImport("libc", SetLastError = true)]
    static extern unsafe int __xstat(int version, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* buffer);
}
