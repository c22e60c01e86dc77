using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.IO;

namespace BrainSeg.Mri;

public enum ImageFormat { Nifti1, Nifti1Pair, Nifti2, Nifti2Pair, Mgh }

/// <summary>Sum, sum of squares, minimum and maximum of the scaled voxel values.</summary>
public readonly record struct ImageStatistics(double Sum, double SumOfSquares, double Min, double Max, long Count);

/// <summary>
/// An image as read from disk: its header (a NIfTI header; MGH geometry is expressed as one) and
/// its raw voxels in host byte order, Fortran order (first axis fastest), every volume.
/// Scaling (scl_slope/scl_inter) is applied when values are read out.
/// </summary>
public sealed class MriImage
{
    public MriImage(NiftiHeader header, byte[] data, string path, ImageFormat format)
    {
        long expected = checked(VoxelCountOf(header) * header.DataType.BytesPerVoxel());
        if (data.LongLength != expected)
            throw new ArgumentException($"{data.LongLength} bytes of voxels do not fill shape [{string.Join(", ", header.Shape)}] of {header.DataType.NumpyName()} ({expected} bytes).");
        Header = header;
        Data = data;
        Path = path;
        Format = format;
    }

    public NiftiHeader Header { get; }
    /// <summary>Raw voxel bytes in host byte order.</summary>
    public byte[] Data { get; }
    public string Path { get; }
    public ImageFormat Format { get; }

    public int[] Shape => Header.Shape;
    public NiftiDataType DataType => Header.DataType;
    public Affine Affine => Header.BestAffine();
    public long VoxelCount => VoxelCountOf(Header);

    /// <summary>Sizes of the three spatial axes (1 where the image has fewer).</summary>
    public (int X, int Y, int Z) SpatialShape
    {
        get
        {
            var s = Shape;
            return (s[0], s.Length > 1 ? s[1] : 1, s.Length > 2 ? s[2] : 1);
        }
    }

    /// <summary>Number of 3-D volumes: the product of dimensions 4 and up.</summary>
    public int VolumeCount => (int)(VoxelCount / ((long)SpatialShape.X * SpatialShape.Y * SpatialShape.Z));

    internal static long VoxelCountOf(NiftiHeader header)
    {
        long n = 1;
        for (int i = 1; i <= header.Rank; i++) n = checked(n * header.Dim[i]);
        return n;
    }

    /// <summary>Scaled values of voxels [start, start + dest.Length) in Fortran order, as nibabel's get_fdata.</summary>
    public void CopyScaled(long start, Span<double> dest)
    {
        VoxelConversion.ToDouble(Data, DataType, start, dest);
        if (!Header.HasScaling) return;
        double slope = Header.SclSlope, inter = Header.SclInter;
        for (int i = 0; i < dest.Length; i++) dest[i] = dest[i] * slope + inter;
    }

    /// <summary>Statistics of the scaled data over every volume, accumulated in double precision.</summary>
    public ImageStatistics Statistics()
    {
        Span<double> chunk = stackalloc double[4096];
        double sum = 0, sumsq = 0, min = double.PositiveInfinity, max = double.NegativeInfinity;
        long total = VoxelCount;
        for (long start = 0; start < total; start += chunk.Length)
        {
            var part = chunk[..(int)Math.Min(chunk.Length, total - start)];
            CopyScaled(start, part);
            foreach (double v in part)
            {
                sum += v;
                sumsq += v * v;
                if (v < min) min = v;
                if (v > max) max = v;
            }
        }
        return new ImageStatistics(sum, sumsq, min, max, total);
    }

    /// <summary>
    /// One 3-D volume as float32 scaled values with this image's affine and header; for 4-D and 5-D
    /// images <paramref name="index"/> counts volumes over dimensions 4 and up in Fortran order.
    /// </summary>
    public Volume GetVolume(int index = 0)
    {
        if (index < 0 || index >= VolumeCount)
            throw new ArgumentOutOfRangeException(nameof(index), $"{Path} holds {VolumeCount} volume(s); volume {index} does not exist (count from 0).");
        var (nx, ny, nz) = SpatialShape;
        long count = (long)nx * ny * nz;
        var voxels = new float[count];
        Span<double> chunk = stackalloc double[4096];
        for (long done = 0; done < count; done += chunk.Length)
        {
            var part = chunk[..(int)Math.Min(chunk.Length, count - done)];
            CopyScaled(index * count + done, part);
            var dest = voxels.AsSpan((int)done, part.Length);
            for (int i = 0; i < part.Length; i++) dest[i] = (float)part[i];
        }
        return new Volume(voxels, nx, ny, nz, Affine, Header);
    }
}
