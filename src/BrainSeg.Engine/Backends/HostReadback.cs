namespace BrainSeg.Engine;

/// <summary>
/// A few values copied from a backend to the host without draining its queue: <see cref="Start"/> queues the
/// copy of a small tensor behind the work that computes it and returns at once; <see cref="Read"/> waits only
/// until the device has reached that copy. A training loop starts the copy of step k's losses, queues step
/// k + 1, and only then reads step k's, so the device never runs dry while the host waits.
/// </summary>
public abstract class HostReadback(int capacity) : IDisposable
{
    /// <summary>The most values one <see cref="Start"/> may copy.</summary>
    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "A readback holds at least one value.");

    /// <summary>How many values the last <see cref="Start"/> copies (0 before the first).</summary>
    public int Count { get; private set; }

    /// <summary>Queues the copy of <paramref name="src"/> (Float32 or Float64, at most <see cref="Capacity"/> values) to the host.</summary>
    public void Start(Tensor src)
    {
        if (src.DType is not (DType.Float32 or DType.Float64))
            throw new ArgumentException($"A readback copies floating-point values, got {src.Describe()}.");
        if (src.Numel > Capacity)
            throw new ArgumentException($"{src.Describe()} holds more than this readback's {Capacity} values.");
        Count = (int)src.Numel;
        Queue(src);
    }

    /// <summary>The last <see cref="Start"/>'s values, widened to double, once the device has copied them.</summary>
    public void Read(Span<double> dst)
    {
        if (dst.Length < Count) throw new ArgumentException($"The readback holds {Count} values; the destination takes {dst.Length}.");
        Wait(dst[..Count]);
    }

    protected abstract void Queue(Tensor src);

    protected abstract void Wait(Span<double> dst);

    public virtual void Dispose() => GC.SuppressFinalize(this);
}

/// <summary>The readback of a backend whose work is done when its call returns (the CPU): the copy happens at <see cref="HostReadback.Start"/>.</summary>
internal sealed class ImmediateReadback(int capacity) : HostReadback(capacity)
{
    private readonly double[] _values = new double[capacity];

    protected override void Queue(Tensor src)
    {
        if (src.DType == DType.Float64) src.Backend.Download<double>(src, _values.AsSpan(0, (int)src.Numel));
        else
        {
            var narrow = new float[src.Numel];
            src.Backend.Download<float>(src, narrow);
            for (var i = 0; i < narrow.Length; i++) _values[i] = narrow[i];
        }
    }

    protected override void Wait(Span<double> dst) => _values.AsSpan(0, dst.Length).CopyTo(dst);
}
