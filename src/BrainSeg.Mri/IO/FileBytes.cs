using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;

namespace BrainSeg.Mri.IO;

/// <summary>
/// Reads image files, plain or gzipped (told by content, not by name), only as far as their header
/// declares: memory follows the declared size, never what a stream would inflate to. Only regular files
/// are read; every failure is an <see cref="ImageFormatException"/>.
/// </summary>
public static class FileBytes
{
    /// <summary>The largest decoded file accepted: the largest .NET array (just under 2 GiB).</summary>
    public static long MaxDecodedBytes => Array.MaxLength;

    /// <summary>
    /// Data a gzip stream may hold past the header's declared size (MGH scan parameters and tags); it is
    /// inflated to check the footer but not kept. A stream holding more is refused, so a small file
    /// that inflates to gigabytes costs at most this much work.
    /// </summary>
    public const long MaxTrailingBytes = 16 << 20;

    /// <summary>Deflate's largest expansion (about 1032:1): bounds what a compressed file can really hold.</summary>
    const long MaxDeflateRatio = 1032;

    public static bool IsGzip(ReadOnlySpan<byte> bytes) => bytes.Length >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;

    /// <summary>
    /// The file's (decompressed) content, up to what <paramref name="declaredLength"/> says the content
    /// needs, given its first <paramref name="prefixLength"/> bytes (fewer if the file is shorter); it
    /// throws for a bad header. The result is shorter than declared only when the file is: the caller
    /// reports the truncation. A gzip stream must end within <see cref="MaxTrailingBytes"/> of that and
    /// carry a footer whose CRC-32 and length match.
    /// </summary>
    public static byte[] Load(string path, int prefixLength, Func<byte[], long> declaredLength)
    {
        using var file = OpenRegular(path, "image");
        Span<byte> magic = stackalloc byte[2];
        int got = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        file.Position = 0;
        try
        {
            if (!IsGzip(magic[..got]))
                return ReadDeclared(file, path, prefixLength, declaredLength, file.Length, null, out _);
            var crc = new Crc32();
            long bound = file.Length * MaxDeflateRatio;
            byte[] data;
            using (var gz = new GZipStream(file, CompressionMode.Decompress, leaveOpen: true))
            {
                data = ReadDeclared(gz, path, prefixLength, declaredLength, bound, crc, out long trailing);
                long total = data.LongLength + trailing;
                var scratch = new byte[81920];
                for (int n; (n = gz.Read(scratch)) > 0;)
                {
                    crc.Append(scratch.AsSpan(0, n));
                    total += n;
                    if ((trailing += n) > MaxTrailingBytes)
                        throw new ImageFormatException(path, $"the gzip stream holds more than {MaxTrailingBytes >> 20} MiB beyond the {data.LongLength} bytes its header declares",
                            "The file is not the image its header describes; export it again.");
                }
                CheckFooter(file, path, crc.GetCurrentHashAsUInt32(), total);
            }
            return data;
        }
        catch (InvalidDataException e)
        {
            throw new ImageFormatException(path, $"corrupt gzip stream ({e.Message})", "The file is damaged or incomplete; copy or download it again.", e);
        }
    }

    /// <summary>A whole small file (a label table, a header), refused past <paramref name="limit"/> bytes.</summary>
    public static byte[] ReadSmall(string path, int limit, string what)
    {
        using var file = OpenRegular(path, what);
        if (file.Length > limit)
            throw new ImageFormatException(path, $"the {what} is {file.Length} bytes, more than the {limit} accepted", $"Give a {what} file, not another kind of file.");
        var bytes = new byte[file.Length];
        file.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>Opens a regular file for reading; a missing path, folder, FIFO, socket or device is refused before it is opened (a FIFO would block).</summary>
    public static FileStream OpenRegular(string path, string what)
    {
        switch (FileIdentity.KindOf(path))
        {
            case FileKind.Missing:
                throw new ImageFormatException(path, Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(path))) ? "the file does not exist" : "the folder does not exist", "Check the path.");
            case FileKind.Directory:
                throw new ImageFormatException(path, $"this is a folder, not a file", "Give the path of the file inside it.");
            case FileKind.Other:
                throw new ImageFormatException(path, $"this is not a regular file (a pipe, socket or device), which cannot be read as a file", "Give the path of a file on disk.");
        }
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ImageFormatException(path, "the file cannot be opened (access denied)", "Check its permissions.", e);
        }
        catch (IOException e)
        {
            throw new ImageFormatException(path, $"the file cannot be read ({e.Message})", "Check the path and the disk.", e);
        }
    }

    /// <summary>The declared bytes (fewer at the end of the stream); <paramref name="beyond"/>: prefix bytes read past them.</summary>
    static byte[] ReadDeclared(Stream stream, string path, int prefixLength, Func<byte[], long> declaredLength, long available, Crc32? crc, out long beyond)
    {
        var prefix = new byte[prefixLength];
        int have = stream.ReadAtLeast(prefix, prefixLength, throwOnEndOfStream: false);
        Array.Resize(ref prefix, have);
        crc?.Append(prefix);
        long declared = Math.Max(declaredLength(prefix), 0);
        beyond = Math.Max(0, have - declared);
        if (beyond > 0) return prefix[..(int)declared];
        if (declared > MaxDecodedBytes)
            throw new ImageFormatException(path, $"the header declares {declared} bytes of image, more than the {MaxDecodedBytes} (2 GiB) this reader accepts", "Split the image into smaller files.");
        // Never more than the file can hold: its length, or what its compressed bytes can inflate to.
        var data = new byte[Math.Min(declared, Math.Max(available, have))];
        prefix.CopyTo(data, 0);
        int length = have + stream.ReadAtLeast(data.AsSpan(have), data.Length - have, throwOnEndOfStream: false);
        crc?.Append(data.AsSpan(have, length - have));
        if (length < data.Length) Array.Resize(ref data, length);
        return data;
    }

    /// <summary>The last 8 bytes of a gzip file: CRC-32 and length (mod 2^32) of what it holds.</summary>
    static void CheckFooter(FileStream file, string path, uint crc, long length)
    {
        if (file.Length < 18) // the smallest gzip member: 10-byte header, empty deflate block, 8-byte footer
            throw new ImageFormatException(path, $"a gzip stream of {file.Length} bytes is too short to be complete", "Copy or download it again.");
        Span<byte> footer = stackalloc byte[8];
        file.Position = file.Length - 8;
        file.ReadExactly(footer);
        if (BinaryPrimitives.ReadUInt32LittleEndian(footer) != crc || BinaryPrimitives.ReadUInt32LittleEndian(footer[4..]) != (uint)length)
            throw new ImageFormatException(path, "the gzip stream's footer (CRC-32 and length) does not match its content: the file is truncated or damaged",
                "Copy or download it again.");
    }
}
