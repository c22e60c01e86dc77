using System.Buffers.Binary;

namespace BrainSeg.Mri.IO;

/// <summary>
/// Reads NIfTI-1 and NIfTI-2 images: single .nii files and .hdr/.img pairs, each optionally gzipped,
/// in either byte order. Every claim of the header is checked against the file before any voxel
/// memory is allocated.
/// </summary>
public static class NiftiReader
{
    /// <summary>The largest header file of a .hdr/.img pair read (a header with its extensions).</summary>
    public const int MaxPairHeaderBytes = 16 << 20;

    /// <summary>Enough of a file for either header version: NIfTI-2's 540 bytes.</summary>
    private const int HeaderPrefix = 540;

    public static MriImage Read(string path)
    {
        var (headerPath, imagePath) = ResolvePair(path);
        NiftiHeader? header = null;
        // Single file: the header, its extensions and the voxels it declares; a pair's header file: at most MaxPairHeaderBytes.
        byte[] headerFile = FileBytes.Load(headerPath, HeaderPrefix, prefix =>
        {
            header = NiftiHeader.Parse(prefix, headerPath);
            return header.IsPair ? MaxPairHeaderBytes : DataOffset(header) + VoxelBytes(header, headerPath);
        });
        if (!header!.IsPair)
            return Decode(header, headerFile, null, headerPath);
        imagePath ??= FindImageFile(headerPath);
        // The header's claims on the data are checked against the image file in Decode, before any voxel array is allocated.
        return Decode(header, headerFile, FileBytes.Load(imagePath, 0, _ => header.VoxOffset + VoxelBytes(header, headerPath)), headerPath, imagePath);
    }

    /// <summary>The header alone (with its extensions), without reading the voxels.</summary>
    public static NiftiHeader ReadHeader(string path)
    {
        var (headerPath, _) = ResolvePair(path);
        NiftiHeader? header = null;
        byte[] headerFile = FileBytes.Load(headerPath, HeaderPrefix, prefix =>
        {
            header = NiftiHeader.Parse(prefix, headerPath);
            return header.IsPair ? MaxPairHeaderBytes : DataOffset(header);
        });
        ReadExtensions(header!, headerFile, header!.IsPair ? headerFile.Length : DataOffset(header), headerPath);
        return header;
    }

    /// <summary>Decodes an image from file contents already in memory (uncompressed); used by tests to feed mutated headers.</summary>
    public static MriImage FromBytes(byte[] headerFile, byte[]? imageFile, string name)
    {
        var header = NiftiHeader.Parse(headerFile, name);
        if (header.IsPair && imageFile is null)
            throw new ImageFormatException(name, "this is the header of a .hdr/.img pair but no image file was given", "Keep the .img file beside the .hdr.");
        return Decode(header, headerFile, header.IsPair ? imageFile : null, name);
    }

    private static MriImage Decode(NiftiHeader header, byte[] headerFile, byte[]? imageFile, string headerPath, string? imagePath = null)
    {
        byte[] dataFile = imageFile ?? headerFile;
        string dataPath = imagePath ?? headerPath;
        long offset = header.IsPair ? header.VoxOffset : DataOffset(header);
        ReadExtensions(header, headerFile, header.IsPair ? headerFile.Length : offset, headerPath);

        long bytes = VoxelBytes(header, headerPath);
        if (offset > dataFile.LongLength)
            throw new ImageFormatException(dataPath, $"vox_offset {offset} lies past the end of the file ({dataFile.LongLength} bytes)", "The file is truncated or its header is corrupt; copy or export it again.");
        if (offset + bytes > dataFile.LongLength)
            throw new ImageFormatException(dataPath,
                $"truncated data: the header claims {bytes} bytes of {header.DataType.NumpyName()} voxels ([{string.Join(", ", header.Shape)}]) at offset {offset}, but the file holds only {dataFile.LongLength - offset} bytes there",
                "The file is incomplete or its header is corrupt; copy or export it again.");

        var data = dataFile.AsSpan((int)offset, (int)bytes).ToArray();
        if (header.IsBigEndian == BitConverter.IsLittleEndian)
            VoxelConversion.SwapBytes(data, header.DataType.BytesPerVoxel());
        var format = (header.Version, header.IsPair) switch
        {
            (1, false) => ImageFormat.Nifti1,
            (1, true) => ImageFormat.Nifti1Pair,
            (_, false) => ImageFormat.Nifti2,
            _ => ImageFormat.Nifti2Pair,
        };
        return new MriImage(header, data, headerPath, format);
    }

    /// <summary>The size of the voxel data the header declares, refused past 2 GiB before anything is allocated.</summary>
    private static long VoxelBytes(NiftiHeader header, string headerPath)
    {
        long voxels = 1;
        for (int i = 1; i <= header.Rank; i++)
        {
            // Compare before multiplying: 64-bit NIfTI-2 dims could overflow the product.
            if (header.Dim[i] > Array.MaxLength / voxels)
                throw new ImageFormatException(headerPath, $"the dimensions [{string.Join(", ", header.Dim.Skip(1).Take(header.Rank))}] claim more voxels than any file can hold here (over 2^31)",
                    "The header is corrupt; re-export the image.");
            voxels *= header.Dim[i];
        }
        long bytes = voxels * header.DataType.BytesPerVoxel();
        if (bytes > Array.MaxLength)
            throw new ImageFormatException(headerPath, $"the voxel data would take {bytes} bytes, more than the 2 GiB this reader supports", "Split the image into smaller files.");
        return bytes;
    }

    /// <summary>Where the voxels of a single-file image start; like nibabel, an offset inside the header means the minimum (header + 4).</summary>
    private static long DataOffset(NiftiHeader header)
    {
        long minimum = header.HeaderSize + 4;
        return header.VoxOffset < minimum ? minimum : header.VoxOffset;
    }

    /// <summary>Extensions live between the header's 4-byte extender and <paramref name="end"/>.</summary>
    private static void ReadExtensions(NiftiHeader header, ReadOnlySpan<byte> file, long end, string path)
    {
        header.Extensions.Clear();
        int position = header.HeaderSize;
        if (end > file.Length) end = file.Length;
        if (position + 4 > end || file[position] == 0) return;
        position += 4;
        while (position + 8 <= end)
        {
            int size = header.IsBigEndian ? BinaryPrimitives.ReadInt32BigEndian(file[position..]) : BinaryPrimitives.ReadInt32LittleEndian(file[position..]);
            int code = header.IsBigEndian ? BinaryPrimitives.ReadInt32BigEndian(file[(position + 4)..]) : BinaryPrimitives.ReadInt32LittleEndian(file[(position + 4)..]);
            if (size < 8 || size > end - position)
                throw new ImageFormatException(path, $"header extension {header.Extensions.Count + 1} (code {code}) claims {size} bytes, but only {end - position} remain before the voxel data",
                    "The header extensions are corrupt; re-export the image (nibabel or FSL can drop extensions).");
            header.Extensions.Add(new NiftiExtension(code, file.Slice(position + 8, size - 8).ToArray()));
            position += size;
        }
    }

    /// <summary>For a .hdr or .img name, the header and image file of the pair; otherwise the file itself.</summary>
    private static (string Header, string? Image) ResolvePair(string path)
    {
        string lower = path.ToLowerInvariant();
        foreach (string gz in new[] { "", ".gz" })
        {
            if (lower.EndsWith(".img" + gz))
            {
                string stem = path[..^(4 + gz.Length)];
                foreach (string candidate in new[] { stem + ".hdr" + gz, stem + ".hdr", stem + ".hdr.gz" })
                    if (File.Exists(candidate)) return (candidate, path);
                throw new ImageFormatException(path, $"this .img file has no header beside it (looked for {Path.GetFileName(stem)}.hdr and .hdr.gz)",
                    "Keep the .hdr file beside the .img, or give the .hdr path.");
            }
        }
        return (path, null);
    }

    private static string FindImageFile(string headerPath)
    {
        string lower = headerPath.ToLowerInvariant();
        string stem = lower.EndsWith(".hdr.gz") ? headerPath[..^7] : lower.EndsWith(".hdr") ? headerPath[..^4] : Path.ChangeExtension(headerPath, null);
        string gz = lower.EndsWith(".gz") ? ".gz" : "";
        foreach (string candidate in new[] { stem + ".img" + gz, stem + ".img", stem + ".img.gz" })
            if (File.Exists(candidate)) return candidate;
        throw new ImageFormatException(headerPath, $"this is the header of a .hdr/.img pair but its image file is missing (looked for {Path.GetFileName(stem)}.img and .img.gz)",
            "Keep the .img file beside the .hdr.");
    }
}
