using System.Runtime.CompilerServices;
using BrainSeg.Engine;

namespace BrainSeg.Cuda;

/// <summary>
/// The GPU implementation of <see cref="IBackend"/>: convolutions through cuDNN, GEMM through cuBLAS and
/// everything else through the project's own kernels (kernels/*.cu, compiled by NVRTC on first use). All
/// work goes onto the context's one stream in call order, so ops never wait for the host except
/// <see cref="Download{T}"/> and <see cref="Synchronize"/>; a failed launch or library call throws a
/// <see cref="CudaException"/> naming the call, and an asynchronous kernel fault surfaces at the next
/// wait. Use one backend from one thread at a time (every entry point makes the context current, so
/// that thread may change).
/// </summary>
public sealed unsafe partial class CudaBackend : IBackend, ITensorOwner, ICountingBackend, IViewBackend, IGraphBackend
{
    /// <summary>Threads per block of the per-channel and whole-tensor reductions (REDUCE_THREADS in common.cuh).</summary>
    private const uint ReduceThreads = 256;

    /// <summary>Reduction blocks that fill one SM (2048 resident threads on Ampere and Hopper); it only sizes the grid.</summary>
    private const int ReduceBlocksPerSm = 8;

    /// <summary>The largest grid y dimension.</summary>
    private const int MaxGridY = 65535;

    private readonly CudaContext _ctx;
    private readonly Dictionary<(string Name, DType DType), CudaFunction> _functions = new();
    private readonly GrowableBuffer _workspace;  // cuDNN convolution workspace
    private readonly GrowableBuffer _scratch;    // temporaries of batch norm and the loss reduction
    private readonly GrowableBuffer _ticketCounter;
    private readonly ulong _tickets;            // last_block's counter (kernels/common.cuh): zero between launches
    private readonly ConditionalWeakTable<Tensor, PoolGeometry> _poolGeometry = new();
    private bool _disposed;

    private CudaBackend(CudaContext context, CudaBackendOptions options)
    {
        _ctx = context;
        Options = options;
        _workspace = new GrowableBuffer(context.Pool);
        _scratch = new GrowableBuffer(context.Pool);
        CreateOffsetWord();
        _ticketCounter = new GrowableBuffer(context.Pool);
        _tickets = _ticketCounter.Ensure(sizeof(uint));
        context.Memset32(_tickets, 0, 1);
        // TF32 only when asked: cuBLAS's default math keeps float32 GEMMs in full precision.
        Check.Cublas(Cublas.cublasSetMathMode(context.CublasHandle,
            options.AllowTf32 ? cublasMath_t.CUBLAS_TF32_TENSOR_OP_MATH : cublasMath_t.CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
        Name = $"cuda:{context.Ordinal} {context.DeviceName}";
    }

    /// <summary>
    /// Opens device <paramref name="device"/> (its primary context, one stream, cuBLAS and cuDNN handles).
    /// Throws <see cref="CudaUnavailableException"/> when there is no driver, no such device or a missing library.
    /// </summary>
    public static CudaBackend Create(int device = 0, CudaBackendOptions? options = null) =>
        Create(device, _ => options ?? CudaBackendOptions.Default);

    /// <summary>As <see cref="Create(int, CudaBackendOptions?)"/>, with options that depend on the device's compute capability.</summary>
    public static CudaBackend Create(int device, Func<(int Major, int Minor), CudaBackendOptions> options)
    {
        var context = CudaContext.Open(device);
        try
        {
            return new CudaBackend(context, options(context.ComputeCapability));
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    public string Name { get; }
    public bool IsGpu => true;
    public string Precision => (Options.AllowTf32 ? "tf32" : "fp32") + (Options.DeterministicAlgorithms ? "/deterministic" : "");
    public CudaBackendOptions Options { get; }

    /// <summary>The device context: memory pool, kernel cache, stream and library handles.</summary>
    public CudaContext Context => _ctx;

    /// <summary>The work this backend queued, overall and by op (<see cref="WorkCounters"/>).</summary>
    public WorkCounters Counters => _ctx.Counters;

    public bool IsDisposed => _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        try
        {
            _ctx.MakeCurrent();
            _ctx.Synchronize();
            DisposeConvolutionPlans();
            DisposeUploadSlots();
            _workspace.Dispose();
            _scratch.Dispose();
            _ctx.Pool.Return(_eagerOffsetWord);
            _ticketCounter.Dispose();
        }
        finally
        {
            _disposed = true;
            _ctx.Dispose();
        }
    }

    // ---- memory ----

    public Tensor Empty(Shape shape, DType dtype)
    {
        Enter(nameof(Empty));
        var bytes = shape.Numel * dtype.SizeInBytes();
        var buffer = bytes > 0 ? _ctx.Pool.Rent(bytes) : default;
        return new Tensor(this, new CudaStorage(this, buffer, bytes), shape, dtype, Options.Layout);
    }

    public Tensor View(Tensor whole, long offset, Shape shape)
    {
        RequireDevice(nameof(View), whole);
        long size = whole.DType.SizeInBytes();
        if (offset < 0 || offset + shape.Numel > whole.Numel)
            throw new ArgumentOutOfRangeException(nameof(offset), $"View: elements {offset}..{offset + shape.Numel} do not lie inside {whole.Describe()}.");
        // The view is laid out as a tensor of its shape made by Empty would be (a filter's view lies KRSC by default). Its
        // address is taken now, so a deferred batch-norm output is written first (Ptr).
        Ptr(whole);
        return new Tensor(this, new CudaStorage((CudaStorage)whole.Storage, offset * size, shape.Numel * size), shape, whole.DType, Options.Layout);
    }

    public void Upload<T>(ReadOnlySpan<T> src, Tensor dst) where T : unmanaged
    {
        Enter(nameof(Upload));
        OpChecks.Upload<T>(this, src.Length, dst);
        if (dst.Numel == 0) return;
        Model(dst.ByteLength);
        // The copy is queued on the stream; from pageable memory the driver stages the source before the
        // call returns, so the span may be reused at once. Host arrays are NCHW: channels-last is laid out here.
        if (dst.IsChannelsLast)
        {
            var staged = new T[dst.Numel];
            Layouts.ToChannelsLast(src, staged, dst.Shape);
            fixed (T* p = staged) _ctx.CopyHostToDevice(p, Ptr(dst), dst.ByteLength);
            return;
        }
        fixed (T* p = src) _ctx.CopyHostToDevice(p, Ptr(dst), dst.ByteLength);
    }

    public void Download<T>(Tensor src, Span<T> dst) where T : unmanaged
    {
        Enter(nameof(Download));
        OpChecks.Download<T>(this, src, dst.Length);
        if (src.Numel == 0) { _ctx.Synchronize(); return; }
        Model(src.ByteLength);
        if (src.IsChannelsLast)
        {
            var staged = new T[src.Numel];
            fixed (T* p = staged) _ctx.CopyDeviceToHost(Ptr(src), p, src.ByteLength);
            Layouts.FromChannelsLast<T>(staged, dst, src.Shape);
            return;
        }
        fixed (T* p = dst) _ctx.CopyDeviceToHost(Ptr(src), p, src.ByteLength);
    }

    public void Copy(Tensor src, Tensor dst)
    {
        Enter(nameof(Copy));
        OpChecks.Copy(this, src, dst);
        Nhwc("Copy", src, dst);
        if (src.Numel == 0 || Ptr(src) == Ptr(dst)) return;
        Model(2 * src.ByteLength);
        _ctx.CopyDeviceToDevice(Ptr(src), Ptr(dst), src.ByteLength);
    }

    public void CopyReshaped(Tensor src, Tensor dst)
    {
        Enter(nameof(CopyReshaped));
        OpChecks.CopyReshaped(this, src, dst);
        if (src.Numel == 0) return;
        Model(2 * src.ByteLength);
        if (src.IsChannelsLast == dst.IsChannelsLast && !src.IsChannelsLast)
        {
            _ctx.CopyDeviceToDevice(Ptr(src), Ptr(dst), src.ByteLength);
            return;
        }
        // Through the logical NCHW index: read src in its order, write dst in its own.
        ulong ps = Ptr(src), pd = Ptr(dst);
        int srcNhwc = src.IsChannelsLast ? 1 : 0, dstNhwc = dst.IsChannelsLast ? 1 : 0;
        int cs = srcNhwc == 1 ? src.Shape.C : 1, cd = dstNhwc == 1 ? dst.Shape.C : 1;
        long inS = srcNhwc == 1 ? (long)src.Shape.H * src.Shape.W : 1, inD = dstNhwc == 1 ? (long)dst.Shape.H * dst.Shape.W : 1, n = src.Numel;
        void** args = stackalloc void*[] { &ps, &pd, &cs, &inS, &srcNhwc, &cd, &inD, &dstNhwc, &n };
        // Int32 moves through the float32 kernel: 4-byte loads and stores copy the bits unchanged.
        Launch1D("channels", "copy_reshaped", src.DType == DType.Float64 ? DType.Float64 : DType.Float32, n, args);
    }

    public void CopyBatch(Tensor src, int srcFirst, Tensor dst, int dstFirst, int count)
    {
        Enter(nameof(CopyBatch));
        var (from, to, n) = OpChecks.CopyBatch(this, src, srcFirst, dst, dstFirst, count);
        if (n == 0) return;
        long size = src.DType.SizeInBytes();
        Model(2 * n * size);
        _ctx.CopyDeviceToDevice(Ptr(src) + (ulong)(from * size), Ptr(dst) + (ulong)(to * size), n * size);
    }

    public void Fill(Tensor t, double value)
    {
        Enter(nameof(Fill));
        RequireDevice("Fill", t);
        if (t.Numel == 0) return;
        Model(t.ByteLength);
        switch (t.DType)
        {
            case DType.Float32:
                _ctx.Memset32(Ptr(t), BitConverter.SingleToUInt32Bits((float)value), t.Numel);
                break;
            case DType.Float64:
            {
                ulong y = Ptr(t);
                long n = t.Numel;
                void** args = stackalloc void*[] { &y, &value, &n };
                Launch1D("elementwise", "fill", DType.Float64, n, args);
                break;
            }
            default:
                if (value != Math.Floor(value) || value < int.MinValue || value > int.MaxValue)
                    throw new ArgumentException($"Fill: {value} is not an Int32 value for {t.Describe()}.");
                _ctx.Memset32(Ptr(t), unchecked((uint)(int)value), t.Numel);
                break;
        }
    }

    public void Synchronize()
    {
        Enter(nameof(Synchronize));
        _ctx.Synchronize();
    }

    // ---- elementwise ----

    public void Add(Tensor a, Tensor b, Tensor y) => Binary(nameof(Add), "add", a, b, y);

    public void Multiply(Tensor a, Tensor b, Tensor y) => Binary(nameof(Multiply), "multiply", a, b, y);

    private void Binary(string op, string kernel, Tensor a, Tensor b, Tensor y)
    {
        Enter(op);
        var dt = OpChecks.Elementwise(this, op, a, b, y);
        Nhwc(op, a, b, y);
        Model(3 * y.ByteLength, y.Numel);
        ulong pa = Ptr(a), pb = Ptr(b), py = Ptr(y);
        long n = y.Numel;
        void** args = stackalloc void*[] { &pa, &pb, &py, &n };
        Launch1D("elementwise", kernel, dt, n, args);
    }

    public void AddScaled(Tensor y, Tensor x, double alpha)
    {
        Enter(nameof(AddScaled));
        var dt = OpChecks.Elementwise(this, "AddScaled", y, x);
        Nhwc("AddScaled", y, x);
        Model(3 * y.ByteLength, 2 * y.Numel);
        ulong py = Ptr(y), px = Ptr(x);
        long n = y.Numel;
        void** args = stackalloc void*[] { &py, &px, &alpha, &n };
        Launch1D("elementwise", "add_scaled", dt, n, args);
    }

    public void Scale(Tensor y, double alpha)
    {
        Enter(nameof(Scale));
        var dt = OpChecks.FloatType(this, "Scale", y);
        Model(2 * y.ByteLength, y.Numel);
        ulong py = Ptr(y);
        long n = y.Numel;
        void** args = stackalloc void*[] { &py, &alpha, &n };
        Launch1D("elementwise", "scale", dt, n, args);
    }

    // ---- kernel launches ----

    /// <summary>Starts op <paramref name="op"/> (a constant name): makes the context current if another was, and charges what follows to the op.</summary>
    private void Enter(string op)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _ctx.MakeCurrent();
        _ctx.Counters.Enter(op);
    }

    /// <summary>Adds the current op's modelled device-memory bytes (read plus written) and FLOPs to the counters.</summary>
    private void Model(double bytes, double flops = 0) => _ctx.Counters.Model(bytes, flops);

    /// <summary>The kernel <paramref name="name"/>_f32 or _f64 of <paramref name="module"/> (kernels/&lt;module&gt;.cu); its handle is looked up once.</summary>
    private CudaFunction Kernel(string module, string name, DType dtype)
    {
        if (!_functions.TryGetValue((name, dtype), out var function))
            _functions[(name, dtype)] = function = _ctx.Kernels.Get(module, name + (dtype == DType.Float64 ? "_f64" : "_f32"));
        return function;
    }

    /// <summary>A grid-stride kernel over <paramref name="elements"/> items; nothing is launched for none.</summary>
    private void Launch1D(string module, string name, DType dtype, long elements, void** args)
    {
        if (elements == 0) return;
        Kernel(module, name, dtype).Launch1D(elements, _ctx.Stream, args);
    }

    /// <summary>A reduction kernel: one block of <see cref="ReduceThreads"/> threads per item (a channel's part of the batch, or the loss).</summary>
    private void LaunchBlocks(string module, string name, DType dtype, long blocks, void** args)
    {
        if (blocks == 0) return;
        if (blocks > int.MaxValue) throw new ArgumentException($"{name}: {blocks} blocks exceed the grid limit.");
        Kernel(module, name, dtype).Launch((uint)blocks, 1, 1, ReduceThreads, 1, 1, 0, _ctx.Stream, args);
    }

    /// <summary>
    /// A per-channel elementwise kernel (PLANE_STRIDE and INNER_STRIDE in common.cuh): grid y over the planes, grid x
    /// and up to 256 threads over one plane's values, the grid capped near Launch1D's few waves.
    /// </summary>
    private void LaunchPlanes(string module, string name, DType dtype, int planes, int inner, void** args)
    {
        if (planes == 0 || inner == 0) return;
        uint threads = (uint)Math.Min(256L, (inner + 31L) / 32 * 32);
        uint gridY = (uint)Math.Min(planes, MaxGridY);
        long waves = Math.Max(1, _ctx.MultiprocessorCount) * 32L;
        uint gridX = (uint)Math.Max(1, Math.Min((inner + threads - 1) / threads, (waves + gridY - 1) / gridY));
        Kernel(module, name, dtype).Launch(gridX, gridY, 1, threads, 1, 1, 0, _ctx.Stream, args);
    }

    /// <summary>The N·C planes and H·W values per plane of a per-channel op, as the kernels' 32-bit counts.</summary>
    private static (int Planes, int Inner) Planes(string op, int batch, int channels, long inner)
    {
        long planes = (long)batch * channels;
        if (planes > int.MaxValue || inner > int.MaxValue)
            throw new ArgumentException($"{op}: {batch}×{channels} planes of {inner} values exceed the kernels' 32-bit counts.");
        return ((int)planes, (int)inner);
    }

    /// <summary>
    /// How a per-channel reduction splits the batch (stage 1 in channels.cu): each channel's N planes go to
    /// <c>parts</c> blocks of <c>planesPerPart</c> consecutive planes, about one full wave of the device in all.
    /// </summary>
    private (int PlanesPerPart, int Parts) SplitBatch(int batch, int channels)
    {
        batch = Math.Max(batch, 1);
        long wave = (long)Math.Max(1, _ctx.MultiprocessorCount) * ReduceBlocksPerSm;
        int parts = (int)Math.Clamp((wave + channels - 1) / Math.Max(channels, 1), 1, batch);
        int planesPerPart = (batch + parts - 1) / parts;
        return (planesPerPart, (batch + planesPerPart - 1) / planesPerPart);
    }

    // ---- layouts ----

    /// <summary>
    /// The memory order an op works in, as the kernels' int flag: 1 when its tensors lie channels-last. Tensors whose
    /// order is trivial (<see cref="Layouts.IsTrivial"/>) fit either; two that really differ are refused.
    /// </summary>
    private static int Nhwc(string op, params Tensor?[] tensors)
    {
        Tensor? nchw = null, nhwc = null;
        foreach (var t in tensors)
        {
            if (t is null || Layouts.IsTrivial(t.Shape)) continue;
            if (t.IsChannelsLast) nhwc ??= t;
            else nchw ??= t;
        }
        if (nchw is not null && nhwc is not null)
            throw new ArgumentException($"{op}: {nchw.Describe()} is NCHW but {nhwc.Describe()} is channels-last; use one layout.");
        return nhwc is null ? 0 : 1;
    }

    /// <summary>A channels-last per-channel elementwise kernel (for_each_channels_last in common.cuh): a plain 1-D grid.</summary>
    private void LaunchChannelsLast(string module, string name, DType dtype, int planes, int inner, void** args) =>
        Launch1D(module, name, dtype, (long)planes * inner, args);

    /// <summary>
    /// How a channels-last reduction splits the pixels (channels_last_partials in common.cuh): <c>parts</c> blocks of
    /// <c>pixelsPerPart</c> consecutive pixels, about one full wave of the device; every block covers all C channels.
    /// </summary>
    private (int PixelsPerPart, int Parts) SplitPixels(string op, long pixels, int channels)
    {
        if (channels > ReduceThreads)
            throw new ArgumentException($"{op}: {channels} channels exceed the {ReduceThreads} a channels-last reduction block holds; use the NCHW layout.");
        if (pixels > int.MaxValue) throw new ArgumentException($"{op}: {pixels} pixels exceed the kernels' 32-bit counts.");
        long wave = (long)Math.Max(1, _ctx.MultiprocessorCount) * ReduceBlocksPerSm;
        long perPart = Math.Max(1, (pixels + wave - 1) / wave);
        return ((int)perPart, (int)((pixels + perPart - 1) / perPart));
    }

    // ---- residency (the contract's checks, shared with the CPU reference, are in OpChecks) ----

    /// <summary>
    /// The device address of t's data for a kernel or library call, written first if it is a deferred batch-norm output
    /// (0 for null). Sums made with t as a data gradient are forgotten: a call may change t.
    /// </summary>
    private ulong Ptr(Tensor? t)
    {
        if (t is null) return 0;
        if (Deferred(t) is { } d) Write(d);
        if (t.Storage is CudaStorage s) DropSums(s);
        return RawPtr(t);
    }

    /// <summary>The device address of t's memory, as it is: only for a reader that knows t may be deferred (CudaBackend.Fusion.cs).</summary>
    private static ulong RawPtr(Tensor? t) => t is null ? 0 : ((CudaStorage)t.Storage).Pointer;

    private void RequireDevice(string op, params Tensor?[] tensors)
    {
        foreach (var t in tensors)
            if (t is not null && (t.Storage is not CudaStorage s || s.Owner != this))
                throw new ArgumentException($"{op}: {t.Describe()} does not live on {Name}; copy it with tensor.To(backend) first.");
    }

    void ITensorOwner.RequireResident(string op, params Tensor?[] tensors) => RequireDevice(op, tensors);

    /// <summary>Window and stride of the max pooling that wrote an argmax tensor, for the gather backward.</summary>
    private sealed record PoolGeometry(int Window, int Stride);
}
