using BrainSeg.Engine;

namespace BrainSeg.Cuda;

/// <summary>
/// One device: its primary context retained and made current, ONE non-blocking stream, and cuBLAS and cuDNN handles
/// bound to that stream. Everything the backend launches goes to <see cref="Stream"/>, so work is ordered without
/// host synchronisation.
/// </summary>
public sealed unsafe class CudaContext : IDisposable
{
    // cuBLAS allocates its workspace lazily unless given one, which a CUDA graph capture forbids; 32 MiB suits Hopper.
    private const long CublasWorkspaceBytes = 32L << 20;

    // The context this thread last made current: an op on the same thread then costs no driver call.
    [ThreadStatic] private static CudaContext? current;

    private readonly int device;
    private nint context;
    private ulong cublasWorkspace;
    private bool disposed;

    private CudaContext(int ordinal, int device, CudaDeviceInfo info)
    {
        Ordinal = ordinal;
        this.device = device;
        DeviceName = info.Name;
        ComputeCapability = (info.Major, info.Minor);
        MultiprocessorCount = info.Multiprocessors;
        TotalMemoryBytes = info.TotalMemoryBytes;
        Pool = new DeviceMemoryPool(this);
        Kernels = new KernelCache(this);
    }

    public int Ordinal { get; }
    public string DeviceName { get; }
    public (int Major, int Minor) ComputeCapability { get; }
    public int MultiprocessorCount { get; }
    public long TotalMemoryBytes { get; }
    public nint Stream { get; private set; }

    /// <summary>A second stream for uploads from pinned memory, so they overlap the kernels on <see cref="Stream"/>; events order the two.</summary>
    public nint CopyStream { get; private set; }
    public nint CublasHandle { get; private set; }
    public nint CudnnHandle { get; private set; }
    public DeviceMemoryPool Pool { get; }
    public KernelCache Kernels { get; }

    /// <summary>Work queued through this context: launches, copies, host waits, allocations (see <see cref="WorkCounters"/>).</summary>
    public WorkCounters Counters { get; } = new();

    /// <summary>True while a step is being captured into a CUDA graph (CudaBackend.Capture): work on the stream is recorded, not run.</summary>
    public bool IsCapturing { get; internal set; }

    /// <summary>
    /// Throws while a step is being captured: <paramref name="what"/> cannot be recorded into a graph. Checked here
    /// rather than left to the driver, so the error names the op, and the same on any driver.
    /// </summary>
    internal void RefuseWhileCapturing(string what)
    {
        if (IsCapturing)
            throw new InvalidOperationException($"{Counters.CurrentOp}: {what} inside a step being captured into a CUDA graph. " +
                "A captured step may only queue device work: run it eagerly once first (memory, kernels and algorithm choices are then ready), " +
                "upload its inputs before Replay and read its results after.");
    }

    /// <summary>Opens device <paramref name="ordinal"/>; throws CudaUnavailableException when no driver, device or library is found.</summary>
    public static CudaContext Open(int ordinal = 0)
    {
        CudaLibraries.EnsureLoaded();
        int status = Driver.cuInit(0);
        if (status != 0)
            throw new CudaUnavailableException($"The CUDA driver did not initialise (cuInit: {Check.CuErrorName(status)}): " +
                "check that the GPU is visible (nvidia-smi), or run with --device cpu.");
        int count = 0;
        Check.Cu(Driver.cuDeviceGetCount(&count), "cuDeviceGetCount");
        if (count == 0) throw new CudaUnavailableException("The CUDA driver sees no device: check nvidia-smi and CUDA_VISIBLE_DEVICES, or run with --device cpu.");
        if (ordinal < 0 || ordinal >= count)
            throw new CudaUnavailableException($"CUDA device {ordinal} does not exist: this machine has {count} (ordinals 0..{count - 1}).");

        int device = 0;
        Check.Cu(Driver.cuDeviceGet(&device, ordinal), "cuDeviceGet");
        var ctx = new CudaContext(ordinal, device, CudaLibraries.DeviceInfo(ordinal));
        try
        {
            ctx.Initialise();
            return ctx;
        }
        catch
        {
            ctx.Dispose();
            throw;
        }
    }

    private void Initialise()
    {
        nint ctx = 0;
        Check.Cu(Driver.cuDevicePrimaryCtxRetain(&ctx, device), "cuDevicePrimaryCtxRetain");
        context = ctx;
        MakeCurrent();

        nint stream = 0;
        Check.Cu(Driver.cuStreamCreate(&stream, Driver.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        Stream = stream;
        nint copyStream = 0;
        Check.Cu(Driver.cuStreamCreate(&copyStream, Driver.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        CopyStream = copyStream;

        nint cublas = 0;
        Check.Cublas(Cublas.cublasCreate_v2(&cublas), "cublasCreate_v2");
        CublasHandle = cublas;
        // cublasSetStream resets the workspace to the default pool, so set the workspace after it.
        Check.Cublas(Cublas.cublasSetStream_v2(cublas, stream), "cublasSetStream_v2");
        ulong workspace = 0;
        Check.Cu(Driver.cuMemAlloc_v2(&workspace, (nuint)CublasWorkspaceBytes), $"cuMemAlloc_v2({CublasWorkspaceBytes} bytes for the cuBLAS workspace)");
        cublasWorkspace = workspace;
        Check.Cublas(Cublas.cublasSetWorkspace_v2(cublas, workspace, (nuint)CublasWorkspaceBytes), "cublasSetWorkspace_v2");
        // Default math keeps float32 GEMMs in full precision (no TF32) so results match the CPU backend.
        Check.Cublas(Cublas.cublasSetMathMode(cublas, cublasMath_t.CUBLAS_DEFAULT_MATH), "cublasSetMathMode");

        nint cudnn = 0;
        Check.Cudnn(Cudnn.cudnnCreate(&cudnn), "cudnnCreate");
        CudnnHandle = cudnn;
        Check.Cudnn(Cudnn.cudnnSetStream(cudnn, stream), "cudnnSetStream");
    }

    /// <summary>Makes this device's context current on the calling thread; call at the start of any entry point that may run on another thread.</summary>
    public void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (ReferenceEquals(current, this)) return;
        Check.Cu(Driver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
        current = this;
    }

    /// <summary>Waits for everything queued on <see cref="Stream"/>.</summary>
    public void Synchronize()
    {
        MakeCurrent();
        RefuseWhileCapturing("a host wait for the device");
        Counters.HostSync();
        Check.Cu(Driver.cuStreamSynchronize(Stream), "cuStreamSynchronize");
    }

    public (long FreeBytes, long TotalBytes) MemoryInfo()
    {
        MakeCurrent();
        nuint free = 0, total = 0;
        Check.Cu(Driver.cuMemGetInfo_v2(&free, &total), "cuMemGetInfo_v2");
        return ((long)free, (long)total);
    }

    /// <summary>Queues a copy on <see cref="Stream"/>; the host buffer must stay alive (and unmoved) until the stream reaches it.</summary>
    public void CopyHostToDevice(void* src, ulong dst, long bytes) => CopyHostToDevice(src, dst, bytes, Stream);

    /// <summary>Queues a copy on <paramref name="stream"/> (<see cref="Stream"/> or <see cref="CopyStream"/>).</summary>
    public void CopyHostToDevice(void* src, ulong dst, long bytes, nint stream)
    {
        if (bytes == 0) return;
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        RefuseWhileCapturing("a host-to-device copy from pageable memory");
        Counters.Copy();
        Check.Cu(Driver.cuMemcpyHtoDAsync_v2(dst, src, (nuint)bytes, stream), "cuMemcpyHtoDAsync_v2");
    }

    /// <summary>Queues a copy to host memory on <see cref="Stream"/> without waiting: <paramref name="dst"/> should be pinned, and is valid once an event recorded after it is reached.</summary>
    public void CopyDeviceToHostAsync(ulong src, void* dst, long bytes)
    {
        if (bytes == 0) return;
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        RefuseWhileCapturing("a device-to-host copy (read the result after the replay)");
        Counters.Copy();
        Check.Cu(Driver.cuMemcpyDtoHAsync_v2(dst, src, (nuint)bytes, Stream), "cuMemcpyDtoHAsync_v2");
    }

    /// <summary>Copies after everything queued before it and waits for the copy to finish.</summary>
    public void CopyDeviceToHost(ulong src, void* dst, long bytes)
    {
        if (bytes == 0) return;
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        RefuseWhileCapturing("a device-to-host copy (the host waits for it)");
        Counters.HostSync();
        CopyDeviceToHostAsync(src, dst, bytes);
        Check.Cu(Driver.cuStreamSynchronize(Stream), "cuStreamSynchronize (after cuMemcpyDtoHAsync_v2)");
    }

    public void CopyDeviceToDevice(ulong src, ulong dst, long bytes)
    {
        if (bytes == 0) return;
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Counters.Copy();
        Check.Cu(Driver.cuMemcpyDtoDAsync_v2(dst, src, (nuint)bytes, Stream), "cuMemcpyDtoDAsync_v2");
    }

    /// <summary>Fills <paramref name="count32"/> 32-bit words with <paramref name="value"/> (0 zeroes floats; use BitConverter for other floats).</summary>
    public void Memset32(ulong dst, uint value, long count32)
    {
        if (count32 == 0) return;
        ArgumentOutOfRangeException.ThrowIfNegative(count32);
        Counters.Launch();
        Check.Cu(Driver.cuMemsetD32Async(dst, value, (nuint)count32, Stream), "cuMemsetD32Async");
    }

    /// <summary>Releases, in order: queued work, kernels, pooled memory, cuDNN, cuBLAS, the stream, the primary context.</summary>
    public void Dispose()
    {
        if (disposed) return;
        Exception? first = null;
        void Step(Action action)
        {
            try { action(); }
            catch (Exception e) { first ??= e; }
        }

        if (context != 0)
        {
            Step(() => Check.Cu(Driver.cuCtxSetCurrent(context), "cuCtxSetCurrent"));
            current = null;
            if (Stream != 0) Step(() => Check.Cu(Driver.cuStreamSynchronize(Stream), "cuStreamSynchronize"));
            if (CopyStream != 0) Step(() => Check.Cu(Driver.cuStreamSynchronize(CopyStream), "cuStreamSynchronize(copy stream)"));
            Step(Kernels.Unload);
            Step(Pool.Dispose);
            if (CudnnHandle != 0) Step(() => Check.Cudnn(Cudnn.cudnnDestroy(CudnnHandle), "cudnnDestroy"));
            if (CublasHandle != 0) Step(() => Check.Cublas(Cublas.cublasDestroy_v2(CublasHandle), "cublasDestroy_v2"));
            if (cublasWorkspace != 0) Step(() => Check.Cu(Driver.cuMemFree_v2(cublasWorkspace), "cuMemFree_v2(cuBLAS workspace)"));
            if (CopyStream != 0) Step(() => Check.Cu(Driver.cuStreamDestroy_v2(CopyStream), "cuStreamDestroy_v2(copy stream)"));
            if (Stream != 0) Step(() => Check.Cu(Driver.cuStreamDestroy_v2(Stream), "cuStreamDestroy_v2"));
            Step(() => Check.Cu(Driver.cuDevicePrimaryCtxRelease_v2(device), "cuDevicePrimaryCtxRelease_v2"));
        }
        CudnnHandle = 0;
        CublasHandle = 0;
        Stream = 0;
        CopyStream = 0;
        cublasWorkspace = 0;
        context = 0;
        disposed = true;
        if (first is not null) throw first;
    }
}
