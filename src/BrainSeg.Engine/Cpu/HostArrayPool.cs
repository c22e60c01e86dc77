using System.Numerics;

namespace BrainSeg.Engine.Cpu;

/// <summary>
/// Reuses the CPU backend's tensor arrays by element type and size class. A training step allocates the
/// same shapes every time; without reuse each large array is fresh memory, and the page faults and zeroing
/// of first touch cost more than some ops themselves. Lengths are rounded up to one of eight steps per
/// power of two (at most 12.5% slack), so the slightly shrinking activations of valid convolutions share
/// arrays too. Arrays come back when their storage is released; idle arrays beyond <see cref="MaxIdleBytes"/>
/// are left to the GC.
/// </summary>
public static class HostArrayPool
{
    /// <summary>Arrays shorter than this are plain allocations: small ones are cheap and would only crowd the pool.</summary>
    public const int MinPooledLength = 1024;

    private static readonly Dictionary<(DType, long), Stack<Array>> Idle = [];
    private static readonly Lock Gate = new();
    private static long _idleBytes;

    /// <summary>Idle bytes kept for reuse; default a quarter of the memory the GC may use.</summary>
    public static long MaxIdleBytes { get; set; } = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4;

    /// <summary>
    /// When set, every array handed out is filled with NaN (Int32: int.MinValue) first, so code that reads
    /// an output it did not write, or counts on fresh arrays being zero, fails loudly. The tests turn it on.
    /// </summary>
    public static bool Poison { get; set; }

    /// <summary>Bytes held idle now (for tests and diagnostics).</summary>
    public static long IdleBytes
    {
        get { lock (Gate) return _idleBytes; }
    }

    public static Array Rent(DType dtype, long length)
    {
        Array? array = null;
        length = Capacity(length);
        if (length >= MinPooledLength)
            lock (Gate)
            {
                // The own class first, then up to two larger ones: a pass of shrinking activations
                // then reuses the arrays of its earlier layers instead of keeping one set per size.
                for (long size = length, tries = 0; tries < 3 && array is null; size = Capacity(size + 1), tries++)
                    if (Idle.TryGetValue((dtype, size), out var stack) && stack.TryPop(out array))
                        _idleBytes -= size * dtype.SizeInBytes();
            }
        array ??= dtype switch
        {
            DType.Float32 => GC.AllocateUninitializedArray<float>(checked((int)length)),
            DType.Float64 => GC.AllocateUninitializedArray<double>(checked((int)length)),
            DType.Int32 => GC.AllocateUninitializedArray<int>(checked((int)length)),
            _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
        };
        if (Poison) Fill(array);
        return array;
    }

    /// <summary>The array length handed out for <paramref name="length"/> elements.</summary>
    public static long Capacity(long length)
    {
        if (length < MinPooledLength) return length;
        var step = 1L << (60 - BitOperations.LeadingZeroCount((ulong)length));   // 2^(k−3) for 2^k ≤ length < 2^(k+1)
        var capacity = (length + step - 1) / step * step;
        return capacity <= Array.MaxLength ? capacity : length;
    }

    public static void Return(DType dtype, Array array)
    {
        long length = array.Length, bytes = length * dtype.SizeInBytes();
        if (length < MinPooledLength) return;
        lock (Gate)
        {
            if (_idleBytes + bytes > MaxIdleBytes) return;
            if (!Idle.TryGetValue((dtype, length), out var stack)) Idle[(dtype, length)] = stack = new Stack<Array>();
            stack.Push(array);
            _idleBytes += bytes;
        }
    }

    /// <summary>Lets the GC have every idle array (e.g. after training, before a long inference).</summary>
    public static void Clear()
    {
        lock (Gate)
        {
            Idle.Clear();
            _idleBytes = 0;
        }
    }

    private static void Fill(Array array)
    {
        switch (array)
        {
            case float[] f: f.AsSpan().Fill(float.NaN); break;
            case double[] d: d.AsSpan().Fill(double.NaN); break;
            case int[] i: i.AsSpan().Fill(int.MinValue); break;
        }
    }
}
