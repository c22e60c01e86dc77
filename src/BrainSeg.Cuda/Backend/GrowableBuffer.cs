namespace BrainSeg.Cuda;

/// <summary>
/// One device buffer that only grows (cuDNN workspace, kernel temporaries). Ops on the backend's single
/// stream use it one after another, so sharing it is safe; once warm its address stays fixed, which
/// CUDA-graph replays rely on.
/// </summary>
internal sealed class GrowableBuffer(DeviceMemoryPool pool) : IDisposable
{
    private DeviceBuffer _buffer;

    public long Capacity => _buffer.Bytes;

    /// <summary>A device address of at least <paramref name="bytes"/> bytes (0 when none are needed and none are held).</summary>
    public ulong Ensure(long bytes)
    {
        if (bytes > _buffer.Bytes)
        {
            var old = _buffer;
            _buffer = default;
            // Work queued on the stream that still reads the old buffer runs before any later user of it; a live
            // CUDA graph may read it at any replay, so the pool keeps it from reuse until the graphs are gone.
            if (old.Bytes > 0) pool.Retire(old);
            _buffer = pool.Rent(bytes);
        }
        return _buffer.Pointer;
    }

    public void Dispose()
    {
        if (_buffer.Bytes > 0) pool.Return(_buffer);
        _buffer = default;
    }
}
