namespace BrainSeg.Cuda;

/// <summary>
/// Page-locked host memory (cuMemAllocHost): the device copies to and from it by DMA, so an asynchronous copy
/// returns at once instead of staging through the driver, and a copy stream can overlap it with kernels. The
/// owner must not touch the bytes while a queued copy still uses them (an event tells when it is done).
/// </summary>
public sealed unsafe class PinnedBuffer : IDisposable
{
    private void* memory;

    /// <summary>Allocates <paramref name="bytes"/> of page-locked memory in the current context.</summary>
    public PinnedBuffer(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        void* p = null;
        Check.Cu(Driver.cuMemAllocHost_v2(&p, (nuint)bytes), $"cuMemAllocHost_v2({bytes} bytes)");
        memory = p;
        Bytes = bytes;
    }

    public long Bytes { get; }

    public void* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(memory is null, this);
            return memory;
        }
    }

    public Span<T> AsSpan<T>(long count) where T : unmanaged
    {
        if (count < 0 || count * sizeof(T) > Bytes) throw new ArgumentOutOfRangeException(nameof(count), $"{count} values do not fit in {Bytes} pinned bytes.");
        return new Span<T>(Pointer, checked((int)count));
    }

    public void Dispose()
    {
        if (memory is null) return;
        var p = memory;
        memory = null;
        Check.Cu(Driver.cuMemFreeHost(p), "cuMemFreeHost");
    }
}
