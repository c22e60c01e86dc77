namespace BrainSeg.Engine.Cpu;

/// <summary>Host memory of the CPU backend: one managed array of the tensor's element type, from <see cref="HostArrayPool"/>.</summary>
public sealed class CpuStorage : Storage
{
    private Array? _data;

    public CpuStorage(DType dtype, long numel)
    {
        if (numel > Array.MaxLength)
            throw new ArgumentException($"A CPU tensor holds at most {Array.MaxLength} elements; {numel} were asked for. Split the work into smaller tensors.");
        _data = HostArrayPool.Rent(dtype, numel);
        DType = dtype;
        ByteLength = numel * dtype.SizeInBytes();
    }

    public DType DType { get; }
    public override long ByteLength { get; }

    /// <summary>The backing array (its length may exceed a view's element count).</summary>
    public T[] Data<T>() where T : unmanaged =>
        _data as T[] ?? throw (_data is null
            ? new ObjectDisposedException(nameof(CpuStorage))
            : new InvalidOperationException($"CPU storage holds {DType}, not {typeof(T).Name}."));

    protected override void Free()
    {
        var data = _data;
        _data = null;
        if (data is not null) HostArrayPool.Return(DType, data);
    }
}

public static class CpuTensorExtensions
{
    /// <summary>The elements of a CPU tensor, in place (no copy). Throws for tensors on another device.</summary>
    public static Span<T> HostSpan<T>(this Tensor t) where T : unmanaged
    {
        if (t.Storage is not CpuStorage s)
            throw new InvalidOperationException($"{t.Describe()} is not in host memory: copy it with tensor.To(CpuBackend.Instance) first.");
        t.CheckElementType<T>();
        return s.Data<T>().AsSpan(0, (int)t.Numel);
    }

    /// <summary>The backing array of a CPU tensor whose checks the caller has already made.</summary>
    internal static T[] HostArray<T>(this Tensor t) where T : unmanaged => ((CpuStorage)t.Storage).Data<T>();
}
