namespace BrainSeg.Cuda;

/// <summary>A block of device memory: its address and the size that was asked for.</summary>
public readonly record struct DeviceBuffer(ulong Pointer, long Bytes);

/// <summary>
/// Size-bucketed reuse of device memory: requests up to 1 MiB round up to a power of two (at least 256 bytes),
/// larger ones to a multiple of 2 MiB, and returned blocks wait in their bucket for the next request of that size,
/// so a training loop stops calling cuMemAlloc after its first step. All work is on the context's single stream,
/// so a block returned while kernels still use it is only reused by work queued after them.
/// <para>
/// A CUDA graph replays its work at the addresses it was captured with, long after capture, so while a step is
/// captured (<see cref="BeginCapture"/>) the pool notes every block the step rents or gives back, and at its end
/// (<see cref="EndCapture"/>) takes them off the free lists for the graph to hold until it is disposed
/// (<see cref="ReleaseHeld"/>). Blocks that persistent buffers give up while a graph lives (<see cref="Retire"/>) wait
/// the same way.
/// </para>
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
    private HashSet<ulong>? captureTouched;    // blocks rented or returned during the capture under way
    private readonly List<DeviceBuffer> retired = [];
    private readonly Dictionary<ulong, long> held = [];     // blocks held by live graphs
    private int liveGraphs;

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

    /// <summary>
    /// A block of at least <paramref name="bytes"/>; zero bytes gives a null buffer. Out of memory → CudaException naming the size and free/total memory.
    /// <paramref name="fresh"/>: newly allocated, leaving the free blocks to the work they were kept for (a step about to be captured).
    /// </summary>
    public DeviceBuffer Rent(long bytes, bool fresh = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes == 0) return new DeviceBuffer(0, 0);
        long size = BucketSize(bytes);
        lock (gate)
        {
            ulong pointer;
            if (!fresh && cached.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                pointer = stack.Pop();
                cachedBytes -= size;
            }
            else pointer = Allocate(bytes, size);
            rented.Add(pointer, size);
            captureTouched?.Add(pointer);
            BytesInUse += size;
            PeakBytesInUse = Math.Max(PeakBytesInUse, BytesInUse);
            return new DeviceBuffer(pointer, bytes);
        }
    }

    private ulong Allocate(long requested, long size)
    {
        context.MakeCurrent();
        context.RefuseWhileCapturing($"a device allocation ({Mib(size)} block for {requested} bytes; the pool had none free)");
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
        lock (gate) ReturnLocked(buffer);
    }

    private void ReturnLocked(DeviceBuffer buffer)
    {
        if (!rented.Remove(buffer.Pointer, out long size))
            throw new InvalidOperationException($"Device block 0x{buffer.Pointer:x} was not rented from this pool or was already returned.");
        captureTouched?.Add(buffer.Pointer);
        Cache(buffer.Pointer, size);
    }

    private void Cache(ulong pointer, long size)
    {
        BytesInUse -= size;
        if (!cached.TryGetValue(size, out var stack)) cached[size] = stack = new Stack<ulong>();
        stack.Push(pointer);
        cachedBytes += size;
    }

    /// <summary>Starts noting the blocks a step being captured rents and gives back.</summary>
    internal void BeginCapture()
    {
        lock (gate)
        {
            if (captureTouched is not null) throw new InvalidOperationException("A capture is already under way on this pool.");
            captureTouched = [];
        }
    }

    /// <summary>
    /// Ends <see cref="BeginCapture"/>: the blocks the captured work touched leave the free lists and are returned,
    /// held (counted in use) until <see cref="ReleaseHeld"/>. Throws when a block rented during the capture is still
    /// rented: the graph would write to memory that outlives it in a tensor the step leaked.
    /// </summary>
    internal List<(ulong Pointer, long Size)> EndCapture()
    {
        lock (gate)
        {
            var touched = captureTouched ?? throw new InvalidOperationException("No capture is under way on this pool.");
            captureTouched = null;
            var leaked = touched.Where(rented.ContainsKey).ToList();
            if (leaked.Count > 0)
                throw new InvalidOperationException($"Capture: {leaked.Count} device block(s) rented inside the captured step " +
                    $"({Mib(leaked.Sum(p => rented[p]))}) are still in use at its end; dispose every tensor the step makes inside it " +
                    "(its inputs and outputs are made outside it).");
            var blocks = new List<(ulong, long)>();
            foreach (var size in cached.Keys.ToList())
            {
                var stack = cached[size];
                if (!stack.Any(touched.Contains)) continue;
                foreach (var p in stack) if (touched.Contains(p)) blocks.Add((p, size));
                cached[size] = new Stack<ulong>(stack.Where(p => !touched.Contains(p)).Reverse());
            }
            foreach (var (pointer, size) in blocks)
            {
                held.Add(pointer, size);
                cachedBytes -= size;
                BytesInUse += size;
            }
            PeakBytesInUse = Math.Max(PeakBytesInUse, BytesInUse);
            liveGraphs++;
            return blocks;
        }
    }

    /// <summary>Forgets a capture that failed (nothing is held).</summary>
    internal void AbandonCapture()
    {
        lock (gate) captureTouched = null;
    }

    /// <summary>Gives a graph's blocks back for reuse (by work queued after its last replay); the last graph also frees the retired blocks.</summary>
    internal void ReleaseHeld(List<(ulong Pointer, long Size)> blocks)
    {
        lock (gate)
        {
            foreach (var (pointer, size) in blocks)
                if (held.Remove(pointer)) Cache(pointer, size);
            blocks.Clear();
            if (--liveGraphs > 0) return;
            liveGraphs = 0;
            foreach (var buffer in retired) ReturnLocked(buffer);
            retired.Clear();
        }
    }

    /// <summary>
    /// Returns a block that a persistent buffer (a workspace) gives up; while a graph lives it waits until the last
    /// graph is released instead, since the graph may use it.
    /// </summary>
    public void Retire(DeviceBuffer buffer)
    {
        if (buffer.Pointer == 0) return;
        lock (gate)
        {
            if (liveGraphs > 0 && rented.ContainsKey(buffer.Pointer)) retired.Add(buffer);
            else ReturnLocked(buffer);
        }
    }

    /// <summary>cuMemFree every cached block that nobody uses.</summary>
    public void ReleaseCached()
    {
        lock (gate)
        {
            if (cachedBytes == 0) return;
            context.MakeCurrent();
            context.RefuseWhileCapturing("freeing the pool's cached device memory");
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
            foreach (var pointer in rented.Keys.Concat(held.Keys)) Check.Cu(Driver.cuMemFree_v2(pointer), "cuMemFree_v2");
            rented.Clear();
            held.Clear();
            BytesInUse = 0;
        }
    }
}
