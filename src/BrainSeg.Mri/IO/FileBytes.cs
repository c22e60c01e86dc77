using System.IO.Compression;

namespace BrainSeg.Mri.IO;

/// <summary>Whole-file reads with transparent gzip, every failure as an <see cref="ImageFormatException"/>.</summary>
internal static class FileBytes
{
    public static bool IsGzip(ReadOnlySpan<byte> bytes) => bytes.Length >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;

    /// <summary>The file's content, decompressed when it is a gzip stream (by content, not by name).</summary>
    public static byte[] Load(string path)
    {
        byte[] raw;
        try
        {
            raw = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException e)
        {
            throw new ImageFormatException(path, "the file does not exist", "Check the path.", e);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new ImageFormatException(path, "the folder does not exist", "Check the path.", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ImageFormatException(path, "the file cannot be opened (access denied, or it is a folder)", "Check the path and its permissions.", e);
        }
        catch (IOException e)
        {
            throw new ImageFormatException(path, $"the file cannot be read ({e.Message})", "Check the path and the disk.", e);
        }
        return IsGzip(raw) ? Gunzip(raw, path) : raw;
    }

    /// <summary>
    /// Decompresses in growing chunks, so memory follows what the stream really holds, whatever a
    /// header claims; a stream beyond the largest .NET array is refused.
    /// </summary>
    public static byte[] Gunzip(byte[] compressed, string path)
    {
        try
        {
            using var gz = new GZipStream(new MemoryStream(compressed, writable: false), CompressionMode.Decompress);
            var buffer = new byte[Math.Max(4096, Math.Min(compressed.LongLength * 4, 1 << 26))];
            int length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (buffer.Length == Array.MaxLength)
                        throw new ImageFormatException(path, "the decompressed file is larger than 2 GiB", "Split the image into smaller files.");
                    Array.Resize(ref buffer, (int)Math.Min((long)buffer.Length * 2, Array.MaxLength));
                }
                int n = gz.Read(buffer, length, buffer.Length - length);
                if (n == 0) break;
                length += n;
            }
            Array.Resize(ref buffer, length);
            return buffer;
        }
        catch (InvalidDataException e)
        {
            throw new ImageFormatException(path, $"corrupt gzip stream ({e.Message})", "The file is damaged or incomplete; copy or download it again.", e);
        }
    }
}
