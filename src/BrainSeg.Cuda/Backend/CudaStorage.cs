using BrainSeg.Engine;

namespace BrainSeg.Cuda;

/// <summary>Device memory of one tensor (or of several views of it), rented from the backend's pool and returned on free.</summary>
public sealed class CudaStorage : Storage
{
    private readonly CudaBackend _owner;
    private DeviceBuffer _buffer;

    internal CudaStorage(CudaBackend owner, DeviceBuffer buffer, long byteLength)
    {
        _owner = owner;
        _buffer = buffer;
        ByteLength = byteLength;
    }

    /// <summary>The device address (0 for an empty tensor).</summary>
    public ulong Pointer => _buffer.Pointer;

    public override long ByteLength { get; }

    /// <summary>The backend whose pool owns this memory.</summary>
    public CudaBackend Owner => _owner;

    protected override void Free()
    {
        var buffer = _buffer;
        _buffer = default;
        // After the backend is disposed its pool has released every buffer already.
        if (buffer.Bytes > 0 && !_owner.IsDisposed) _owner.Context.Pool.Return(buffer);
    }
}
