namespace BrainSeg.Engine;

/// <summary>
/// A block of memory owned by one backend. Tensors that are views share one storage; the storage is
/// released when its last owner is disposed (reference counted, never by the finaliser).
/// </summary>
public abstract class Storage
{
    private int _refs = 1;

    public abstract long ByteLength { get; }

    internal void Retain() => Interlocked.Increment(ref _refs);

    internal void Release()
    {
        var left = Interlocked.Decrement(ref _refs);
        if (left == 0) Free();
        else if (left < 0) throw new ObjectDisposedException(GetType().Name, "Storage released more often than retained.");
    }

    /// <summary>Returns the memory to its owner (the GC for host arrays, the pool for device memory).</summary>
    protected abstract void Free();
}
