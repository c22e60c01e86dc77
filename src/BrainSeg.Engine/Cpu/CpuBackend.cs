using System.Numerics;
using System.Numerics.Tensors;

namespace BrainSeg.Engine.Cpu;

/// <summary>
/// The reference backend: every op of <see cref="IBackend"/> on host arrays, for Float32 and Float64.
/// Results are deterministic (bit-identical run to run for a given thread count and for any thread
/// count where the work split does not change the summation order, which holds for every op here).
/// </summary>
public sealed partial class CpuBackend : IBackend, ITensorOwner
{
    /// <summary>The shared instance, using every core.</summary>
    public static CpuBackend Instance { get; } = new();

    private readonly WorkerTeam _team;

    /// <param name="threads">Worker threads for parallel loops; 0 means one per core.</param>
    public CpuBackend(int threads = 0)
    {
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "Thread count must be 0 (all cores) or positive.");
        Threads = threads == 0 ? Environment.ProcessorCount : threads;
        _team = WorkerTeam.Of(Threads);
    }

    public int Threads { get; }
    public string Name => "cpu";
    public bool IsGpu => false;

    /// <summary>Nothing to release: host arrays belong to the GC.</summary>
    public void Dispose() { }

    // ---- memory ----

    public Tensor Empty(Shape shape, DType dtype) => new(this, new CpuStorage(dtype, shape.Numel), shape, dtype);

    public void Upload<T>(ReadOnlySpan<T> src, Tensor dst) where T : unmanaged
    {
        OpChecks.Upload<T>(this, src.Length, dst);
        src.CopyTo(dst.HostSpan<T>());
    }

    public void Download<T>(Tensor src, Span<T> dst) where T : unmanaged
    {
        OpChecks.Download<T>(this, src, dst.Length);
        src.HostSpan<T>().CopyTo(dst);
    }

    public void Copy(Tensor src, Tensor dst)
    {
        OpChecks.Copy(this, src, dst);
        switch (src.DType)
        {
            case DType.Float32: Span<float>(src).CopyTo(Span<float>(dst)); break;
            case DType.Float64: Span<double>(src).CopyTo(Span<double>(dst)); break;
            default: Span<int>(src).CopyTo(Span<int>(dst)); break;
        }
    }

    public void CopyReshaped(Tensor src, Tensor dst)
    {
        OpChecks.CopyReshaped(this, src, dst);
        switch (src.DType)  // every CPU tensor is NCHW: the same memory order on both sides
        {
            case DType.Float32: Span<float>(src).CopyTo(Span<float>(dst)); break;
            case DType.Float64: Span<double>(src).CopyTo(Span<double>(dst)); break;
            default: Span<int>(src).CopyTo(Span<int>(dst)); break;
        }
    }

    public void CopyBatch(Tensor src, int srcFirst, Tensor dst, int dstFirst, int count)
    {
        var (from, to, n) = OpChecks.CopyBatch(this, src, srcFirst, dst, dstFirst, count);
        switch (src.DType)
        {
            case DType.Float32: Span<float>(src).Slice((int)from, (int)n).CopyTo(Span<float>(dst)[(int)to..]); break;
            case DType.Float64: Span<double>(src).Slice((int)from, (int)n).CopyTo(Span<double>(dst)[(int)to..]); break;
            default: Span<int>(src).Slice((int)from, (int)n).CopyTo(Span<int>(dst)[(int)to..]); break;
        }
    }

    public void Fill(Tensor t, double value)
    {
        RequireHost("Fill", t);
        switch (t.DType)
        {
            case DType.Float32: Span<float>(t).Fill((float)value); break;
            case DType.Float64: Span<double>(t).Fill(value); break;
            default:
                if (value != Math.Floor(value) || value < int.MinValue || value > int.MaxValue)
                    throw new ArgumentException($"Fill: {value} is not an Int32 value for {t.Describe()}.");
                Span<int>(t).Fill((int)value);
                break;
        }
    }

    public void Synchronize() { }

    // ---- elementwise ----

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        var dt = OpChecks.Elementwise(this, "Add", a, b, y);
        if (dt == DType.Float32) TensorPrimitives.Add(Span<float>(a), Span<float>(b), Span<float>(y));
        else TensorPrimitives.Add(Span<double>(a), Span<double>(b), Span<double>(y));
    }

    public void Multiply(Tensor a, Tensor b, Tensor y)
    {
        var dt = OpChecks.Elementwise(this, "Multiply", a, b, y);
        if (dt == DType.Float32) TensorPrimitives.Multiply(Span<float>(a), Span<float>(b), Span<float>(y));
        else TensorPrimitives.Multiply(Span<double>(a), Span<double>(b), Span<double>(y));
    }

    public void AddScaled(Tensor y, Tensor x, double alpha)
    {
        var dt = OpChecks.Elementwise(this, "AddScaled", y, x);
        if (dt == DType.Float32) TensorPrimitives.MultiplyAdd(Span<float>(x), (float)alpha, Span<float>(y), Span<float>(y));
        else TensorPrimitives.MultiplyAdd(Span<double>(x), alpha, Span<double>(y), Span<double>(y));
    }

    public void Scale(Tensor y, double alpha)
    {
        var dt = OpChecks.FloatType(this, "Scale", y);
        if (dt == DType.Float32) TensorPrimitives.Multiply(Span<float>(y), (float)alpha, Span<float>(y));
        else TensorPrimitives.Multiply(Span<double>(y), alpha, Span<double>(y));
    }

    // ---- helpers: residency, spans, parallel loops (the contract's checks are in OpChecks) ----

    private static Span<T> Span<T>(Tensor t) where T : unmanaged => t.HostArray<T>().AsSpan(0, (int)t.Numel);

    private static void RequireHost(string op, params Tensor?[] tensors)
    {
        foreach (var t in tensors)
            if (t is not null && t.Storage is not CpuStorage)
                throw new ArgumentException($"{op}: {t.Describe()} is not a CPU tensor; copy it with tensor.To(CpuBackend.Instance) first.");
    }

    void ITensorOwner.RequireResident(string op, params Tensor?[] tensors) => RequireHost(op, tensors);

    /// <summary>Runs body(i) for i in [0, count), on up to <see cref="Threads"/> threads.</summary>
    private void For(int count, Action<int> body)
    {
        if (Threads == 1 || count <= 1)
        {
            for (var i = 0; i < count; i++) body(i);
            return;
        }
        _team.For(count, body);
    }

    /// <summary>Runs body(start, length) over [0, total) cut into chunks of at least <paramref name="minChunk"/>.</summary>
    private void ForChunks(int total, int minChunk, Action<int, int> body)
    {
        var chunks = Math.Clamp(total / Math.Max(minChunk, 1), 1, Threads * 4);
        if (chunks == 1) { body(0, total); return; }
        For(chunks, c =>
        {
            var start = (int)((long)total * c / chunks);
            var end = (int)((long)total * (c + 1) / chunks);
            body(start, end - start);
        });
    }

    private static T Cast<T>(double v) where T : INumberBase<T> => T.CreateChecked(v);
}
