using NUnit.Framework;

namespace BrainSeg.Tests.Mri;

/// <summary>
/// Locates the real test data (../shared/data beside the clone). BRAINSEG_SHARED_DATA overrides;
/// otherwise the nearest shared/data in a folder above the repository root.
/// </summary>
internal static class SharedData
{
    public static string? Folder { get; } = Locate();

    private static string? Locate()
    {
        string? fromEnv = Environment.GetEnvironmentVariable("BRAINSEG_SHARED_DATA");
        if (!string.IsNullOrEmpty(fromEnv)) return Directory.Exists(fromEnv) ? Path.GetFullPath(fromEnv) : null;
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "BrainSegCuda.sln"))) dir = dir.Parent;
        for (dir = dir?.Parent; dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>The full path of a file under shared/data, or the test is ignored with the reason.</summary>
    public static string Require(string relative)
    {
        if (Folder is null)
            Assert.Ignore("Real test data not found: ../shared/data beside the repository is absent (set BRAINSEG_SHARED_DATA to its folder).");
        string path = Path.Combine(Folder!, relative);
        if (!File.Exists(path))
            Assert.Ignore($"Real test data file {relative} is absent from {Folder}.");
        return path;
    }

    public static string NiftiFolder => Path.Combine(Folder ?? "", "nifti");
}
