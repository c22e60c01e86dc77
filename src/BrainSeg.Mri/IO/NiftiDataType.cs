namespace BrainSeg.Mri.IO;

/// <summary>NIfTI datatype codes (nifti1.h). The reader supports the real-valued scalar ones.</summary>
public enum NiftiDataType : short
{
    Binary = 1,
    UInt8 = 2,
    Int16 = 4,
    Int32 = 8,
    Float32 = 16,
    Complex64 = 32,
    Float64 = 64,
    Rgb24 = 128,
    Int8 = 256,
    UInt16 = 512,
    UInt32 = 768,
    Int64 = 1024,
    UInt64 = 1280,
    Float128 = 1536,
    Complex128 = 1792,
    Complex256 = 2048,
    Rgba32 = 2304,
}

public static class NiftiDataTypes
{
    public static bool IsSupported(this NiftiDataType type) => type.BytesPerVoxel() > 0;

    /// <summary>Bytes per voxel of a supported type; 0 for a type this reader does not handle.</summary>
    public static int BytesPerVoxel(this NiftiDataType type) => type switch
    {
        NiftiDataType.UInt8 or NiftiDataType.Int8 => 1,
        NiftiDataType.Int16 or NiftiDataType.UInt16 => 2,
        NiftiDataType.Int32 or NiftiDataType.UInt32 or NiftiDataType.Float32 => 4,
        NiftiDataType.Int64 or NiftiDataType.UInt64 or NiftiDataType.Float64 => 8,
        _ => 0,
    };

    public static bool IsInteger(this NiftiDataType type) =>
        type.IsSupported() && type is not (NiftiDataType.Float32 or NiftiDataType.Float64);

    /// <summary>The numpy name of the type ("int16"), as nibabel reports it.</summary>
    public static string NumpyName(this NiftiDataType type) => type switch
    {
        NiftiDataType.UInt8 => "uint8",
        NiftiDataType.Int8 => "int8",
        NiftiDataType.Int16 => "int16",
        NiftiDataType.UInt16 => "uint16",
        NiftiDataType.Int32 => "int32",
        NiftiDataType.UInt32 => "uint32",
        NiftiDataType.Int64 => "int64",
        NiftiDataType.UInt64 => "uint64",
        NiftiDataType.Float32 => "float32",
        NiftiDataType.Float64 => "float64",
        NiftiDataType.Complex64 => "complex64",
        NiftiDataType.Complex128 => "complex128",
        NiftiDataType.Complex256 => "complex256",
        NiftiDataType.Rgb24 => "RGB24",
        NiftiDataType.Rgba32 => "RGBA32",
        NiftiDataType.Float128 => "float128",
        NiftiDataType.Binary => "binary",
        _ => $"code {(short)type}",
    };

    /// <summary>
    /// The on-disk dtype as numpy prints it: the plain name for native (little-endian) or one-byte data,
    /// the byte-order form (">i2") for big-endian multi-byte data.
    /// </summary>
    public static string OnDiskName(this NiftiDataType type, bool bigEndian)
    {
        int size = type.BytesPerVoxel();
        if (!bigEndian || size <= 1) return type.NumpyName();
        char kind = type switch
        {
            NiftiDataType.Float32 or NiftiDataType.Float64 => 'f',
            NiftiDataType.UInt16 or NiftiDataType.UInt32 or NiftiDataType.UInt64 => 'u',
            _ => 'i',
        };
        return $">{kind}{size}";
    }
}
