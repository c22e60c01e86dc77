using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;

namespace BrainSeg.Mri.IO;

/// <summary>
/// Writes NIfTI-1/NIfTI-2 images: a single .nii or a .hdr/.img pair (chosen by the name), gzipped
/// when the name ends in .gz, in the header's version and byte order. Every file is written under a
/// temporary name and renamed when complete, so a failure never leaves a partial image behind.
/// </summary>
public static class NiftiWriter
{
    /// <summary>Writes an image as read (same header, same raw voxels).</summary>
    public static void Write(string path, MriImage image) => Write(path, image.Header, image.Data);

    /// <summary>
    /// Writes <paramref name="voxels"/> (Fortran order) with the geometry of <paramref name="source"/>:
    /// affine, sform/qform codes and matrices, pixdim, units, dimensions and extensions are kept; the
    /// datatype becomes that of <typeparamref name="T"/> and the scaling becomes identity. A single
    /// 3-D volume written for a 4-D source gets a 3-D header.
    /// </summary>
    public static void Write<T>(string path, NiftiHeader source, ReadOnlySpan<T> voxels) where T : unmanaged
    {
        var header = source.Clone();
        header.DataType = VoxelConversion.DataTypeOf<T>();
        header.BitPix = header.DataType.BytesPerVoxel() * 8;
        header.SclSlope = 1;
        header.SclInter = 0;
        long total = MriImage.VoxelCountOf(header);
        long spatial = header.Dim[1] * (header.Rank > 1 ? header.Dim[2] : 1) * (header.Rank > 2 ? header.Dim[3] : 1);
        if (voxels.Length != total)
        {
            if (voxels.Length != spatial)
                throw new ArgumentException($"{voxels.Length} voxels fit neither the source shape [{string.Join(", ", header.Shape)}] nor its first volume ({spatial} voxels).", nameof(voxels));
            header.Dim[0] = Math.Min(3, header.Rank);
            for (int i = 4; i < 8; i++) header.Dim[i] = 1;
        }
        Write(path, header, MemoryMarshal.AsBytes(voxels));
    }

    /// <summary>A label map for an image: <see cref="Write{T}"/> under a name that says what it is for.</summary>
    public static void WriteLabelMap<T>(string path, NiftiHeader source, ReadOnlySpan<T> labels) where T : unmanaged => Write(path, source, labels);

    /// <summary>Writes a header and raw voxels in host byte order.</summary>
    public static void Write(string path, NiftiHeader header, ReadOnlySpan<byte> hostOrderData)
    {
        var (headerPath, imagePath, gzip) = OutputNames(path);
        header = header.Clone();
        header.IsPair = imagePath is not null;
        if (!header.DataType.IsSupported())
            throw new ArgumentException($"Datatype {header.DataType.NumpyName()} cannot be written.", nameof(header));
        header.BitPix = header.DataType.BytesPerVoxel() * 8;
        long expected = MriImage.VoxelCountOf(header) * header.DataType.BytesPerVoxel();
        if (hostOrderData.Length != expected)
            throw new ArgumentException($"{hostOrderData.Length} bytes of voxels do not fill shape [{string.Join(", ", header.Shape)}] of {header.DataType.NumpyName()} ({expected} bytes).");
        if (header.Version == 1)
            foreach (long d in header.Dim)
                if (d > short.MaxValue)
                    throw new BadInputException($"Dimension {d} is too large for NIfTI-1 (at most 32767); write NIfTI-2 (set Version = 2).");

        byte[] extensionBlock = ExtensionBlock(header);
        long headerBytes = header.HeaderSize + extensionBlock.Length;
        header.VoxOffset = header.IsPair ? 0 : (headerBytes + 15) / 16 * 16;
        byte[] headerBlock = [.. header.Serialize(), .. extensionBlock];

        byte[] data = hostOrderData.ToArray();
        if (header.IsBigEndian == BitConverter.IsLittleEndian)
            VoxelConversion.SwapBytes(data, header.DataType.BytesPerVoxel());

        if (imagePath is null)
        {
            var padding = new byte[header.VoxOffset - headerBlock.Length];
            WriteAtomically([(headerPath, [headerBlock, padding, data])], gzip);
        }
        else
        {
            WriteAtomically([(headerPath, [headerBlock]), (imagePath, [data])], gzip);
        }
    }

    /// <summary>The 4-byte extender and the extensions, each padded to a multiple of 16 bytes.</summary>
    private static byte[] ExtensionBlock(NiftiHeader header)
    {
        using var block = new MemoryStream();
        block.Write([(byte)(header.Extensions.Count > 0 ? 1 : 0), 0, 0, 0]);
        Span<byte> field = stackalloc byte[4];
        foreach (var extension in header.Extensions)
        {
            int size = (8 + extension.Content.Length + 15) / 16 * 16;
            foreach (int value in new[] { size, extension.Code })
            {
                if (header.IsBigEndian) BinaryPrimitives.WriteInt32BigEndian(field, value);
                else BinaryPrimitives.WriteInt32LittleEndian(field, value);
                block.Write(field);
            }
            block.Write(extension.Content);
            block.Write(new byte[size - 8 - extension.Content.Length]);
        }
        return block.ToArray();
    }

    /// <summary>Refuses (<see cref="BadInputException"/>) a name whose format cannot be told, before any work is done.</summary>
    public static void CheckName(string path) => OutputNames(path);

    private static (string Header, string? Image, bool Gzip) OutputNames(string path)
    {
        string lower = path.ToLowerInvariant();
        bool gzip = lower.EndsWith(".gz");
        string bare = gzip ? lower[..^3] : lower;
        string gz = gzip ? ".gz" : "";
        if (bare.EndsWith(".nii")) return (path, null, gzip);
        if (bare.EndsWith(".hdr") || bare.EndsWith(".img"))
        {
            string stem = path[..(bare.Length - 4)];
            return (stem + ".hdr" + gz, stem + ".img" + gz, gzip);
        }
        throw new BadInputException($"Cannot tell the image format from the name {path}: end it in .nii, .nii.gz, .hdr/.img or .hdr.gz/.img.gz.");
    }

    /// <summary>Writes each file to a temporary name in its folder, then renames them all; on failure removes the temporaries.</summary>
    private static void WriteAtomically(IReadOnlyList<(string Path, byte[][] Parts)> files, bool gzip)
    {
        var temporaries = new List<(string Temp, string Final)>();
        try
        {
            foreach (var (path, parts) in files)
            {
                string full = System.IO.Path.GetFullPath(path);
                string temp = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(full)!, $".{System.IO.Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
                temporaries.Add((temp, full));
                using var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None);
                if (gzip)
                {
                    using var compressed = new GZipStream(file, CompressionLevel.Fastest, leaveOpen: true);
                    foreach (var part in parts) compressed.Write(part);
                }
                else
                {
                    foreach (var part in parts) file.Write(part);
                }
                file.Flush(flushToDisk: true);
            }
            foreach (var (temp, final) in temporaries) File.Move(temp, final, overwrite: true);
        }
        catch
        {
            foreach (var (temp, _) in temporaries)
                try { File.Delete(temp); } catch (IOException) { /* best effort: the original error matters more */ }
            throw;
        }
    }
}
