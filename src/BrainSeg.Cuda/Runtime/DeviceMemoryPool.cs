namespace BrainSeg.Cuda;

/// <summary>A block of device memory: its address and the size that was asked for.</summary>
public readonly record struct DeviceBuffer(ulong Pointer, long Bytes);

/// <summary>
/// Size-bucketed reuse of device memory: requests up to 1 MiB round up to a power of two (at least 256 bytes),
/// larger ones to a multiple of 2 MiB, and returned blocks wait in their bucket for the next request of that size,
/// so a training loop stops calling cuMemAlloc after its first step. All work is on the context's single stream,
/// so a block returned while kernels still use it is only reused by work queued after them.
/// </summary>
public sealed unsafe class DeviceMemoryPool : IDisposable
{
    private const long SmallLimit = 1L << 20;
    private const long Granule = 2L << 20;
    private const long MinimumBlock = 256;

    private readonly CudaContext context;
    private readonly Lock gate = new();
    private readonly Dictionary<long, Stack<ulong>> cached = [];
    private readonly Dictionary<ulong, long> rented = [];
    private long cachedBytes;

    internal DeviceMemoryPool(CudaContext context) => this.context = context;

    public long BytesInUse { get; private set; }
    public long PeakBytesInUse { get; private set; }
    public long BytesReserved { get { lock (gate) return BytesInUse + cachedBytes; } }

    /// <summary>The bucket a request falls in (what is really allocated).</summary>
    public static long BucketSize(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes <= MinimumBlock) return MinimumBlock;
        if (bytes <= SmallLimit) return (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)bytes);
        return (bytes + Granule - 1) / Granule * Granule;
    }

    /// <summary>A block of at least <paramref name="bytes"/>; zero bytes gives a null buffer. Out of memory → CudaException naming the size and free/total memory.</summary>
    public DeviceBuffer Rent(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes == 0) return new DeviceBuffer(0, 0);
        long size = BucketSize(bytes);
        lock (gate)
        {
            ulong pointer;
            if (cached.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                pointer = stack.Pop();
                cachedBytes -= size;
            }
            else pointer = Allocate(bytes, size);
            rented.Add(pointer, size);
            BytesInUse += size;
            PeakBytesInUse = Math.Max(PeakBytesInUse, BytesInUse);
            return new DeviceBuffer(pointer, bytes);
        }
    }

    private ulong Allocate(long requested, long size)
    {
        context.MakeCurrent();
        context.Counters.DeviceAlloc();
        ulong pointer = 0;
        int status = Driver.cuMemAlloc_v2(&pointer, (nuint)size);
        if (status == Driver.CUDA_ERROR_OUT_OF_MEMORY)
        {
            // Memory parked in other buckets may be what is missing: give it back and try once more.
            ReleaseCachedLocked();
            status = Driver.cuMemAlloc_v2(&pointer, (nuint)size);
        }
        if (status == 0) return pointer;

        nuint free = 0, total = 0;
        string memory = Driver.cuMemGetInfo_v2(&free, &total) == 0
            ? $"{Mib((long)free)} free of {Mib((long)total)} on {context.DeviceName}"
            : $"free memory unknown on {context.DeviceName}";
        throw new CudaException($"cuMemAlloc_v2 failed: {Check.CuErrorName(status)}: could not allocate {requested} bytes ({Mib(size)} block); " +
            $"{memory}; this process holds {Mib(BytesInUse)} in use. Reduce the batch or patch size, or free other GPU work.");
    }

    private static string Mib(long bytes) => $"{bytes / (1024.0 * 1024.0):F1} MiB";

    /// <summary>Gives a block back for reuse (a null buffer is ignored).</summary>
    public void Return(DeviceBuffer buffer)
    {
        if (buffer.Pointer == 0) return;
        lock (gate)
        {
            if (!rented.Remove(buffer.Pointer, out long size))
                throw new InvalidOperationException($"Device block 0x{buffer.Pointer:x} was not rented from this pool or was already returned.");
            BytesInUse -= size;
            if (!cached.TryGetValue(size, out var stack)) cached[size] = stack = new Stack<ulong>();
            stack.Push(buffer.Pointer);
            cachedBytes += size;
        }
    }

    /// <summary>cuMemFree every cached block that nobody uses.</summary>
    public void ReleaseCached()
    {
        lock (gate)
        {
            if (cachedBytes == 0) return;
            context.MakeCurrent();
            ReleaseCachedLocked();
        }
    }

    private void ReleaseCachedLocked()
    {
        foreach (var (size, stack) in cached)
            while (stack.Count > 0)
            {
                Check.Cu(Driver.cuMemFree_v2(stack.Pop()), "cuMemFree_v2");
                cachedBytes -= size;
            }
    }

    /// <summary>Frees cached and still-rented blocks (called by CudaContext.Dispose with the context current).</summary>
    public void Dispose()
    {
        lock (gate)
        {
            ReleaseCachedLocked();
            foreach (var pointer in rented.Keys) Check.Cu(Driver.cuMemFree_v2(pointer), "cuMemFree_v2");
            rented.Clear();
            BytesInUse = 0;
        }
    }
}
