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

    /// <summary>Number of slices in <paramref name="plane"/>.</summary>
    public int SliceCount(Plane plane) => Size(Orientation.SliceAxis(Affine, plane));

    /// <summary>
    /// Copies slice <paramref name="index"/> of <paramref name="plane"/> into <paramref name="destination"/>
    /// (row-major: rows along the slower in-plane array axis, columns along the faster) and returns its size.
    /// </summary>
    public (int Rows, int Columns) CopySlice(Plane plane, int index, Span<float> destination)
    {
        var (slice, column, row) = Orientation.PlaneAxes(Affine, plane);
        if ((uint)index >= (uint)Size(slice))
            throw new ArgumentOutOfRangeException(nameof(index), $"Slice {index} is outside the {Size(slice)} {plane.ToString().ToLowerInvariant()} slices.");
        int rows = Size(row), columns = Size(column);
        if (destination.Length < rows * columns)
            throw new ArgumentException($"A {plane} slice needs {rows * columns} values.", nameof(destination));
        int[] stride = [1, SizeX, SizeX * SizeY];
        int start = index * stride[slice];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++)
                destination[r * columns + c] = Voxels[start + r * stride[row] + c * stride[column]];
        return (rows, columns);
    }
}
