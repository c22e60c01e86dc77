using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using BrainSeg.Engine;
using BrainSeg.Mri;
using BrainSeg.Mri.IO;
using BrainSeg.Seg.Reports;

namespace BrainSeg.Seg.Checkpoints;

/// <summary>One named array of a safetensors file, held on the host as little-endian bytes.</summary>
public sealed record SafeTensor(string Name, DType DType, int[] Shape, byte[] Data)
{
    public long Numel => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The values as <typeparamref name="T"/> (the dtype must match).</summary>
    public T[] Values<T>() where T : unmanaged
    {
        if (DTypeExtensions.Of<T>() != DType)
            throw new InvalidOperationException($"Tensor '{Name}' holds {DType}, not {typeof(T).Name}.");
        var values = new T[Numel];
        Data.AsSpan().CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors data is little-endian; this host is not.");
        return values;
    }

    /// <summary>Copies a live tensor (from any backend) to the host.</summary>
    public static SafeTensor From(string name, Tensor t)
    {
        byte[] data = t.DType switch
        {
            DType.Float32 => MemoryMarshal.AsBytes(t.ToHost<float>().AsSpan()).ToArray(),
            DType.Float64 => MemoryMarshal.AsBytes(t.ToHost<double>().AsSpan()).ToArray(),
            DType.Int32 => MemoryMarshal.AsBytes(t.ToHost<int>().AsSpan()).ToArray(),
            _ => throw new NotSupportedException($"No safetensors dtype for {t.DType}."),
        };
        return new SafeTensor(name, t.DType, t.Shape.ToArray(), data);
    }

    /// <summary>Overwrites a live tensor with these values; shape and dtype must match exactly.</summary>
    public void CopyTo(Tensor t, string file)
    {
        if (t.DType != DType || !t.Shape.ToArray().SequenceEqual(Shape))
            throw new InvalidDataException($"{file}: tensor '{Name}' is {DType} [{string.Join(",", Shape)}] but the network expects {t.DType} {t.Shape}; the checkpoint belongs to another network or class count.");
        switch (DType)
        {
            case DType.Float32: t.Backend.Upload<float>(Values<float>(), t); break;
            case DType.Float64: t.Backend.Upload<double>(Values<double>(), t); break;
            case DType.Int32: t.Backend.Upload<int>(Values<int>(), t); break;
        }
    }
}

/// <summary>
/// The safetensors format (as read by PyTorch's and Hugging Face's loaders):
/// <code>
///   u64 little-endian N | N bytes of UTF-8 JSON header | data
///   header = { "__metadata__": { string: string, … },
///              name: { "dtype": "F32", "shape": [d0, …], "data_offsets": [begin, end] }, … }
/// </code>
/// Offsets are relative to the start of the data and cover it without gaps, in file order. The header
/// is padded with spaces to a multiple of 8 bytes so the data is aligned. JSON is written with
/// <see cref="Utf8JsonWriter"/> and read with <see cref="JsonDocument"/>: no reflection (NativeAOT-safe).
/// </summary>
public static class SafeTensors
{
    /// <summary>Refuses headers larger than this (a corrupt length field would otherwise allocate gigabytes).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public static string DTypeName(DType dtype) => dtype switch
    {
        DType.Float32 => "F32",
        DType.Float64 => "F64",
        DType.Int32 => "I32",
        _ => throw new NotSupportedException($"No safetensors dtype for {dtype}."),
    };

    private static DType ParseDType(string name, string file, string tensor) => name switch
    {
        "F32" => DType.Float32,
        "F64" => DType.Float64,
        "I32" => DType.Int32,
        _ => throw new InvalidDataException($"{file}: tensor '{tensor}' has dtype '{name}'; brainseg reads F32, F64 and I32."),
    };

    /// <summary>The header bytes (JSON, space-padded to a multiple of 8) for these tensors and metadata.</summary>
    public static byte[] Header(IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            foreach (var (key, value) in metadata) w.WriteString(key, value);
            w.WriteEndObject();
            long offset = 0;
            foreach (var t in tensors)
            {
                if (t.Name == "__metadata__" || !names.Add(t.Name))
                    throw new ArgumentException($"Tensor name '{t.Name}' is reserved or used twice.");
                if (t.Data.LongLength != t.Numel * t.DType.SizeInBytes())
                    throw new ArgumentException($"Tensor '{t.Name}' has {t.Data.LongLength} bytes for shape [{string.Join(",", t.Shape)}] of {t.DType}.");
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", DTypeName(t.DType));
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset += t.Data.LongLength);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        var json = buffer.ToArray();
        var padded = (json.Length + 7) / 8 * 8;
        var header = new byte[padded];
        json.CopyTo(header, 0);
        header.AsSpan(json.Length).Fill((byte)' ');
        return header;
    }

    /// <summary>Writes the file atomically (<see cref="AtomicFile"/>): a temporary file beside it, flushed to disk, then renamed over <paramref name="path"/>.</summary>
    public static void Write(string path, IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var header = Header(tensors, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (var t in tensors) stream.Write(t.Data);
        });
    }

    /// <summary>The largest tensor rank accepted (the networks use at most 4).</summary>
    public const int MaxRank = 8;

    /// <summary>
    /// Reads every tensor and the metadata; a file that is not regular, truncated or malformed is an
    /// <see cref="InvalidDataException"/> naming the problem. Memory is bounded by the file's size: every
    /// claim of the header (its length, each tensor's shape and offsets) is checked against it first.
    /// </summary>
    public static (List<SafeTensor> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        using var file = OpenChecked(path);
        var (entries, metadata, dataStart) = ReadHeader(file, path);
        var tensors = new List<SafeTensor>(entries.Count);
        foreach (var (name, dtype, shape, begin, end) in entries)
        {
            var data = new byte[end - begin];
            file.Position = dataStart + begin;
            file.ReadExactly(data);
            tensors.Add(new SafeTensor(name, dtype, shape, data));
        }
        return (tensors, metadata);
    }

    /// <summary>The metadata alone, without reading the tensors.</summary>
    public static Dictionary<string, string> ReadMetadata(string path)
    {
        using var file = OpenChecked(path);
        return ReadHeader(file, path).Metadata;
    }

    static FileStream OpenChecked(string path)
    {
        try
        {
            return FileBytes.OpenRegular(path, "model");
        }
        catch (ImageFormatException e)
        {
            throw new InvalidDataException($"{e.Problem}: {path}; give RUN_DIR/model.safetensors or checkpoint.safetensors written by 'brainseg train'.", e);
        }
    }

    static string Bad(string path, string what) => $"{path} is not a valid safetensors file: {what}. Delete it and resume from an earlier checkpoint, or start the run again.";

    /// <summary>The tensors' places (in the header's order), the metadata and where the data starts.</summary>
    static (List<(string Name, DType DType, int[] Shape, long Begin, long End)> Entries, Dictionary<string, string> Metadata, long DataStart) ReadHeader(FileStream file, string path)
    {
        long fileLength = file.Length;
        if (fileLength < 8) throw new InvalidDataException(Bad(path, $"{fileLength} bytes is shorter than the 8-byte header length"));
        Span<byte> lengthField = stackalloc byte[8];
        file.ReadExactly(lengthField);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthField);
        if (headerLength > MaxHeaderBytes || (long)headerLength > fileLength - 8)
            throw new InvalidDataException(Bad(path, $"the header length {headerLength} runs past the end of the {fileLength}-byte file (truncated?) or past the {MaxHeaderBytes} bytes accepted"));
        var headerBytes = new byte[headerLength];
        file.ReadExactly(headerBytes);
        long dataStart = 8 + (long)headerLength, dataLength = fileLength - dataStart;

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<(string Name, DType DType, int[] Shape, long Begin, long End)>();
        try
        {
            using var doc = JsonDocument.Parse(headerBytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException(Bad(path, "the header is not a JSON object"));
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object) throw new InvalidDataException(Bad(path, "__metadata__ is not an object"));
                    foreach (var m in property.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw new InvalidDataException(Bad(path, $"metadata '{m.Name}' is not a string"));
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                var v = property.Value;
                var dtype = ParseDType(v.GetProperty("dtype").GetString() ?? "", path, property.Name);
                var shape = v.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
                var offsets = v.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                if (offsets.Length != 2) throw new InvalidDataException(Bad(path, $"tensor '{property.Name}' needs two data_offsets"));
                if (shape.Length > MaxRank || shape.Any(d => d < 0)) throw new InvalidDataException(Bad(path, $"tensor '{property.Name}' has a negative dimension or more than {MaxRank}"));
                // The size, compared before each multiplication: a product that wraps around must not pass for a small one.
                long size = dtype.SizeInBytes();
                foreach (int d in shape)
                {
                    if (d != 0 && size > dataLength / d)
                        throw new InvalidDataException(Bad(path, $"tensor '{property.Name}' of shape [{string.Join(",", shape)}] needs more bytes than the file's {dataLength} bytes of data (truncated?)"));
                    size *= d;
                }
                if (offsets[0] < 0 || offsets[1] - offsets[0] != size)
                    throw new InvalidDataException(Bad(path, $"tensor '{property.Name}' spans bytes [{offsets[0]}, {offsets[1]}) but its shape needs {size}"));
                entries.Add((property.Name, dtype, shape, offsets[0], offsets[1]));
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException)
        {
            // Malformed JSON or UTF-8, a missing key, a value of the wrong kind or out of range.
            throw new InvalidDataException(Bad(path, $"the header is not JSON or not the safetensors layout ({e.Message})"), e);
        }

        // The data must be covered exactly: no gaps, no overlaps, nothing past the end.
        long expected = 0;
        foreach (var (name, _, _, begin, end) in entries.OrderBy(e => e.Begin))
        {
            if (begin != expected)
                throw new InvalidDataException(Bad(path, $"tensor '{name}' spans bytes [{begin}, {end}) but bytes from {expected} were expected"));
            if (end > dataLength)
                throw new InvalidDataException(Bad(path, $"tensor '{name}' ends at byte {end} of the data but the file holds {dataLength} (truncated?)"));
            expected = end;
        }
        if (expected != dataLength)
            throw new InvalidDataException(Bad(path, $"{dataLength - expected} bytes after the last tensor"));
        return (entries, metadata, dataStart);
    }
}
