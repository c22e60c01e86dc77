using BrainSeg.Engine;

namespace BrainSeg.Cuda;

/// <summary>Device memory of one tensor (or of several views of it), rented from the backend's pool and returned on free.</summary>
public sealed class CudaStorage : Storage
{
    private readonly CudaBackend _owner;
    private readonly CudaStorage? _parent;   // a view's block, kept alive until the view is freed
    private DeviceBuffer _buffer;

    internal CudaStorage(CudaBackend owner, DeviceBuffer buffer, long byteLength)
    {
        _owner = owner;
        _buffer = buffer;
        ByteLength = byteLength;
    }

    /// <summary>A view of <paramref name="byteLength"/> bytes of <paramref name="parent"/> from byte <paramref name="offsetBytes"/> on.</summary>
    internal CudaStorage(CudaStorage parent, long offsetBytes, long byteLength)
    {
        if (offsetBytes < 0 || byteLength < 0 || offsetBytes + byteLength > parent.ByteLength)
            throw new ArgumentOutOfRangeException(nameof(offsetBytes), $"A view of bytes {offsetBytes}..{offsetBytes + byteLength} does not fit in a block of {parent.ByteLength}.");
        parent.Retain();
        _owner = parent._owner;
        _parent = parent;
        _buffer = new DeviceBuffer(parent.Pointer + (ulong)offsetBytes, 0);
        ByteLength = byteLength;
    }

    /// <summary>The device address (0 for an empty tensor).</summary>
    public ulong Pointer => _buffer.Pointer;

    public override long ByteLength { get; }

    /// <summary>The backend whose pool owns this memory.</summary>
    public CudaBackend Owner => _owner;

    /// <summary>The block this storage is a view of (itself when it is no view).</summary>
    internal CudaStorage Root => _parent?.Root ?? this;

    /// <summary>Whether this storage is a whole block of its own, not a view.</summary>
    internal bool IsRoot => _parent is null;

    /// <summary>Gives up the block while the tensor's contents are deferred (its address is 0 until <see cref="Attach"/>).</summary>
    internal DeviceBuffer Detach()
    {
        var buffer = _buffer;
        _buffer = default;
        return buffer;
    }

    /// <summary>Takes a block for a storage that gave up its own (<see cref="Detach"/>).</summary>
    internal void Attach(DeviceBuffer buffer)
    {
        if (_buffer.Pointer != 0 || _parent is not null) throw new InvalidOperationException("Only a detached block can take another.");
        _buffer = buffer;
    }

    protected override void Free()
    {
        var buffer = _buffer;
        _buffer = default;
        if (_parent is not null)
        {
            _parent.Release();
            return;
        }
        // After the backend is disposed its pool has released every buffer already. A block that a deferred output still
        // reads is kept by the backend until that output is written or freed (a deferred output itself may hold none).
        if (_owner.IsDisposed || _owner.KeepsFreedBlock(this, buffer)) return;
        if (buffer.Bytes > 0) _owner.Context.Pool.Return(buffer);
    }
}
