using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.IO;

namespace BrainSeg.Mri;

/// <summary>
/// A 3-D scalar volume: float32 voxels in Fortran order (x fastest, as stored in NIfTI), the
/// voxel-to-world affine, and the header of the file it came from (so outputs can keep it).
/// </summary>
public sealed class Volume
{
    public Volume(float[] voxels, int sizeX, int sizeY, int sizeZ, Affine affine, NiftiHeader? sourceHeader = null)
    {
        if (sizeX < 1 || sizeY < 1 || sizeZ < 1)
            throw new ArgumentException($"Volume sizes must be positive, got {sizeX}x{sizeY}x{sizeZ}.");
        if (voxels.LongLength != (long)sizeX * sizeY * sizeZ)
            throw new ArgumentException($"{voxels.LongLength} voxels do not fill a {sizeX}x{sizeY}x{sizeZ} volume.");
        Voxels = voxels;
        SizeX = sizeX;
        SizeY = sizeY;
        SizeZ = sizeZ;
        Affine = affine;
        SourceHeader = sourceHeader;
    }

    public float[] Voxels { get; }
    public int SizeX { get; }
    public int SizeY { get; }
    public int SizeZ { get; }
    public Affine Affine { get; }
    public NiftiHeader? SourceHeader { get; }

    public int[] Shape => [SizeX, SizeY, SizeZ];
    public int Count => Voxels.Length;

    public int IndexOf(int x, int y, int z) => x + SizeX * (y + SizeY * z);

    public float this[int x, int y, int z]
    {
        get => Voxels[IndexOf(x, y, z)];
        set => Voxels[IndexOf(x, y, z)] = value;
    }

    public int Size(int axis) => axis switch { 0 => SizeX, 1 => SizeY, 2 => SizeZ, _ => throw new ArgumentOutOfRangeException(nameof(axis)) };

    /// <summary>Same grid (shape and affine within 1e-4 mm), as needed for an image and its label map.</summary>
    public bool SameGridAs(Volume other, double tolerance = 1e-4) =>
        SizeX == other.SizeX && SizeY == other.SizeY && SizeZ == other.SizeZ && Affine.ApproximatelyEquals(other.Affine, tolerance);

    public Volume WithVoxels(float[] voxels) => new(voxels, SizeX, SizeY, SizeZ, Affine, SourceHeader);
}
