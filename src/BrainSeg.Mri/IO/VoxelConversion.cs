using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace BrainSeg.Mri.IO;

/// <summary>Conversions between raw voxel bytes (host byte order) and numbers.</summary>
internal static class VoxelConversion
{
    /// <summary>Raw voxels [start, start + dest.Length) as doubles, unscaled.</summary>
    public static void ToDouble(ReadOnlySpan<byte> raw, NiftiDataType type, long start, Span<double> dest)
    {
        int size = type.BytesPerVoxel();
        var bytes = raw.Slice(checked((int)(start * size)), dest.Length * size);
        switch (type)
        {
            case NiftiDataType.UInt8: { var s = bytes; for (int i = 0; i < dest.Length; i++) dest[i] = s[i]; break; }
            case NiftiDataType.Int8: { var s = MemoryMarshal.Cast<byte, sbyte>(bytes); for (int i = 0; i < dest.Length; i++) dest[i] = s[i]; break; }
            case NiftiDataType.Int16: { var s = MemoryMarshal.Cast<byte, short>(bytes); for (int i = 0; i < dest.Length; i++) dest[i] = s[i]; break; }
            case NiftiDataType.UInt16: { var s = MemoryMarshal.Cast<byte, ushort>(bytes); for (int i = 0; i < dest.Length; i++) dest[i] = s[i]; break; }
            case NiftiDataType.Int32: { var s = MemoryMarshal.Cast<byte, int>(bytes); for (int i = 0; i < dest.Length; i++) dest[i] = s[i]; break; }
            case NiftiDataType.UInt32: { var s = MemoryMarshal.Cast<byte, uint>(bytes); for (int i = 0; i < dest.Length; i++) dest[i] = s[i]; break; }
            case NiftiDataType.Int64: { var s = MemoryMarshal.Cast<byte, long>(bytes); for (int i = 0; i < dest.Length; i++) dest[i] = s[i]; break; }
            case NiftiDataType.UInt64: { var s = MemoryMarshal.Cast<byte, ulong>(bytes); for (int i = 0; i < dest.Length; i++) dest[i] = s[i]; break; }
            case NiftiDataType.Float32: { var s = MemoryMarshal.Cast<byte, float>(bytes); for (int i = 0; i < dest.Length; i++) dest[i] = s[i]; break; }
            case NiftiDataType.Float64: MemoryMarshal.Cast<byte, double>(bytes).CopyTo(dest); break;
            default: throw new NotSupportedException($"Datatype {type.NumpyName()} has no numeric conversion.");
        }
    }

    /// <summary>Reverses the byte order of each element in place (for big-endian files on a little-endian host).</summary>
    public static void SwapBytes(Span<byte> data, int elementSize)
    {
        switch (elementSize)
        {
            case 1: break;
            case 2: var s = MemoryMarshal.Cast<byte, ushort>(data); BinaryPrimitives.ReverseEndianness(s, s); break;
            case 4: var i = MemoryMarshal.Cast<byte, uint>(data); BinaryPrimitives.ReverseEndianness(i, i); break;
            case 8: var l = MemoryMarshal.Cast<byte, ulong>(data); BinaryPrimitives.ReverseEndianness(l, l); break;
            default: throw new ArgumentOutOfRangeException(nameof(elementSize));
        }
    }

    /// <summary>The NIfTI datatype that stores values of type <typeparamref name="T"/>.</summary>
    public static NiftiDataType DataTypeOf<T>() where T : unmanaged =>
        typeof(T) == typeof(byte) ? NiftiDataType.UInt8 :
        typeof(T) == typeof(sbyte) ? NiftiDataType.Int8 :
        typeof(T) == typeof(short) ? NiftiDataType.Int16 :
        typeof(T) == typeof(ushort) ? NiftiDataType.UInt16 :
        typeof(T) == typeof(int) ? NiftiDataType.Int32 :
        typeof(T) == typeof(uint) ? NiftiDataType.UInt32 :
        typeof(T) == typeof(long) ? NiftiDataType.Int64 :
        typeof(T) == typeof(ulong) ? NiftiDataType.UInt64 :
        typeof(T) == typeof(float) ? NiftiDataType.Float32 :
        typeof(T) == typeof(double) ? NiftiDataType.Float64 :
        throw new NotSupportedException($"{typeof(T).Name} is not a NIfTI voxel type.");
}
