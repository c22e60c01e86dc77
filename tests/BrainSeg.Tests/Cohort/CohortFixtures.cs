using BrainSeg.Engine.Cpu;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.IO;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Seg.Inference;
using BrainSeg.Seg.Networks;
using BrainSeg.Tests.Training;

namespace BrainSeg.Tests.Cohort;

/// <summary>Small synthetic cohorts on disk and a tiny model to segment them with.</summary>
internal static class CohortFixtures
{
    /// <summary>Voxel size of the synthetic images: 1 × 1.2 × 1.5 mm, 0.0018 mL.</summary>
    public const double VoxelMl = 1 * 1.2 * 1.5 / 1000;

    public static SegmentationModel TinyModel(int classes = 3) =>
        new(new TinyNetwork(CpuBackend.Instance, classes, new NetworkOptions { Seed = 5 }),
            Enumerable.Range(0, classes).Select(i => $"c{i}").ToArray(), new IntensityNormalisation(NormalisationMethod.ZScore), Plane.Axial);

    /// <summary>Writes a random float32 image of the given size (seeded by its name) and returns its path.</summary>
    public static string WriteImage(string folder, string relativePath, int nx = 9, int ny = 8, int nz = 3)
    {
        string path = Path.Combine(folder, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var random = new Random(relativePath.Aggregate(17, (h, c) => unchecked(h * 31 + c)));
        var voxels = new float[nx * ny * nz];
        for (int i = 0; i < voxels.Length; i++) voxels[i] = (float)(random.NextDouble() * 100);
        var header = new NiftiHeader { Dim = [3, nx, ny, nz, 1, 1, 1, 1], PixDim = [1, 1, 1.2, 1.5, 1, 1, 1, 1] };
        NiftiWriter.Write<float>(path, header, voxels);
        return path;
    }

    /// <summary>Writes a file with an image's name and no image in it.</summary>
    public static string WriteBroken(string folder, string relativePath)
    {
        string path = Path.Combine(folder, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "not an image");
        return path;
    }

    /// <summary>The bytes and modification times of every file under a folder, to show that nothing there changed.</summary>
    public static Dictionary<string, (byte[] Bytes, DateTime Written)> Snapshot(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .ToDictionary(f => f, f => (File.ReadAllBytes(f), File.GetLastWriteTimeUtc(f)));
}
