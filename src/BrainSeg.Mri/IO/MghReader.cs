using System.Buffers.Binary;
using BrainSeg.Mri.Geometry;

namespace BrainSeg.Mri.IO;

/// <summary>
/// Reads FreeSurfer MGH and MGZ (gzipped MGH) volumes: a big-endian 284-byte header, then the
/// voxels in Fortran order. The geometry becomes a NIfTI header (sform_code 2, qform_code 0, as
/// nibabel writes when it converts an MGH image), so the rest of the code sees one kind of image.
/// </summary>
public static class MghReader
{
    private const int HeaderSize = 284;

    public static MriImage Read(string path)
    {
        // The header's dimensions and type bound what is read; FromBytes checks them again with its messages.
        byte[] file = FileBytes.Load(path, HeaderSize, prefix => prefix.Length < HeaderSize ? prefix.Length : HeaderSize + DeclaredVoxelBytes(prefix));
        return FromBytes(file, path);
    }

    /// <summary>Voxel bytes the header declares (saturating at long.MaxValue; FromBytes refuses what is too large).</summary>
    private static long DeclaredVoxelBytes(byte[] header)
    {
        long bytes = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(20)) switch { 0 => 1, 4 => 2, _ => 4 };
        for (int o = 4; o <= 16; o += 4)
        {
            long d = Math.Max(1, BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(o)));
            bytes = bytes > long.MaxValue / d ? long.MaxValue : bytes * d;
        }
        return Math.Min(bytes, long.MaxValue - HeaderSize);
    }

    public static MriImage FromBytes(byte[] file, string path)
    {
        if (file.Length < HeaderSize)
            throw new ImageFormatException(path, $"truncated MGH header: {file.Length} bytes where 284 are needed", "The file is incomplete; copy it again.");
        int Int(int o) => BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(o));
        double Float(int o) => BinaryPrimitives.ReadSingleBigEndian(file.AsSpan(o));

        int version = Int(0);
        if (version != 1)
            throw new ImageFormatException(path, $"not an MGH file: version field is {version}, not 1", "Give a FreeSurfer .mgh/.mgz file, or a NIfTI file with a .nii name.");
        int[] dims = [Int(4), Int(8), Int(12), Int(16)];
        foreach (int d in dims)
            if (d < 1)
                throw new ImageFormatException(path, $"MGH dimensions [{string.Join(", ", dims)}] include a size below 1", "The header is corrupt; export the volume again.");
        int type = Int(20);
        var dataType = type switch
        {
            0 => NiftiDataType.UInt8,
            1 => NiftiDataType.Int32,
            3 => NiftiDataType.Float32,
            4 => NiftiDataType.Int16,
            _ => throw new ImageFormatException(path, $"MGH data type {type} is not supported (supported: 0 uchar, 1 int, 3 float, 4 short)", "Convert the volume with mri_convert first."),
        };
        bool goodRas = BinaryPrimitives.ReadInt16BigEndian(file.AsSpan(28)) == 1;

        long voxels = 1;
        foreach (int d in dims)
        {
            if (d > Array.MaxLength / voxels)
                throw new ImageFormatException(path, $"the MGH dimensions [{string.Join(", ", dims)}] claim more voxels than any file can hold here (over 2^31)", "The header is corrupt; export the volume again.");
            voxels *= d;
        }
        long bytes = voxels * dataType.BytesPerVoxel();
        if (bytes > file.Length - HeaderSize)
            throw new ImageFormatException(path, $"truncated data: the header claims {bytes} bytes of voxels ([{string.Join(", ", dims)}]) but the file holds {file.Length - HeaderSize} after the header",
                "The file is incomplete or its header is corrupt; copy it again.");

        // Without a valid RAS block, FreeSurfer (and nibabel) assume a 1 mm coronal (LIA) volume centred at 0.
        double[] delta = [1, 1, 1];
        double[] mdc = [-1, 0, 0, 0, 0, -1, 0, 1, 0]; // rows: x, y, z direction cosines
        double[] centre = [0, 0, 0];
        if (goodRas)
        {
            for (int i = 0; i < 3; i++) delta[i] = Float(30 + 4 * i);
            for (int i = 0; i < 9; i++) mdc[i] = Float(42 + 4 * i);
            for (int i = 0; i < 3; i++) centre[i] = Float(78 + 4 * i);
        }
        // Affine: column i is direction i times delta i; the centre voxel (dims / 2) maps to Pxyz_c.
        Span<double> linear = stackalloc double[9];
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                linear[r * 3 + c] = mdc[c * 3 + r] * delta[c];
        Span<double> t = stackalloc double[3];
        for (int r = 0; r < 3; r++)
        {
            double s = 0;
            for (int c = 0; c < 3; c++) s += linear[r * 3 + c] * (dims[c] / 2.0);
            t[r] = centre[r] - s;
        }
        var affine = Affine.FromLinear(linear, t[0], t[1], t[2]);

        int rank = dims[3] == 1 ? 3 : 4;
        var header = new NiftiHeader { Version = 1, DataType = dataType, BitPix = dataType.BytesPerVoxel() * 8, VoxOffset = 352, SclSlope = 1, SclInter = 0 };
        header.Dim = [rank, dims[0], dims[1], dims[2], dims[3], 1, 1, 1];
        header.SetAffine(affine, sformCode: 2, qformCode: 0);
        header.PixDim[1] = delta[0];
        header.PixDim[2] = delta[1];
        header.PixDim[3] = delta[2];
        header.PixDim[4] = 1;

        var data = file.AsSpan(HeaderSize, (int)bytes).ToArray();
        if (BitConverter.IsLittleEndian) VoxelConversion.SwapBytes(data, dataType.BytesPerVoxel());
        return new MriImage(header, data, path, ImageFormat.Mgh);
    }
}
