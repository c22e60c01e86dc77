using BrainSeg.Cuda;
using NUnit.Framework;

namespace BrainSeg.Tests.CudaRuntime;

/// <summary>The device runtime on a real GPU: ignored, with the reason, where no device or library is found.</summary>
[Category("Gpu")]
[NonParallelizable]
public unsafe class GpuRuntimeTests
{
    private CudaContext? context;
    private string? unavailable;

    // A grid-stride kernel in the project's conventions: extern "C", one entry per dtype, long long counts.
    private const string AddSource = """
        extern "C" __global__ void add_scalar_f32(float* x, float value, long long n)
        {
            for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
                x[i] += value;
        }
        """;

    [OneTimeSetUp]
    public void Open()
    {
        try { context = CudaContext.Open(); }
        catch (CudaUnavailableException e) { unavailable = e.Message; }
    }

    [OneTimeTearDown]
    public void Close() => context?.Dispose();

    private CudaContext Context
    {
        get
        {
            if (context is null) Assert.Ignore($"No CUDA device or library: {unavailable}");
            context!.MakeCurrent();
            return context;
        }
    }

    [Test]
    public void TheContextDescribesTheDevice()
    {
        var ctx = Context;
        Assert.That(ctx.DeviceName, Is.Not.Empty);
        Assert.That(ctx.ComputeCapability.Major, Is.GreaterThanOrEqualTo(5));
        Assert.That(ctx.MultiprocessorCount, Is.GreaterThan(0));
        Assert.That(ctx.TotalMemoryBytes, Is.GreaterThan(1L << 30));
        Assert.That(ctx.Stream, Is.Not.EqualTo((nint)0));
        Assert.That(ctx.CublasHandle, Is.Not.EqualTo((nint)0));
        Assert.That(ctx.CudnnHandle, Is.Not.EqualTo((nint)0));
        var (free, total) = ctx.MemoryInfo();
        Assert.That(free, Is.GreaterThan(0).And.LessThanOrEqualTo(total));
        Assert.That(total, Is.EqualTo(ctx.TotalMemoryBytes));
    }

    [Test]
    public void ThePoolReusesAReturnedBlockOfTheSameBucket()
    {
        var pool = Context.Pool;
        long before = pool.BytesInUse;
        var first = pool.Rent(1000);
        Assert.That(first.Pointer, Is.Not.Zero);
        Assert.That(pool.BytesInUse - before, Is.EqualTo(1024));
        pool.Return(first);
        var second = pool.Rent(900);
        Assert.That(second.Pointer, Is.EqualTo(first.Pointer));
        Assert.That(pool.PeakBytesInUse, Is.GreaterThanOrEqualTo(before + 1024));
        pool.Return(second);
        Assert.That(pool.BytesInUse, Is.EqualTo(before));
        Assert.Throws<InvalidOperationException>(() => pool.Return(second));
        pool.ReleaseCached();
        Assert.That(pool.BytesReserved, Is.EqualTo(pool.BytesInUse));
    }

    [Test]
    public void AnImpossibleAllocationNamesTheSizeAndTheFreeMemory()
    {
        var ctx = Context;
        long tooMuch = ctx.TotalMemoryBytes * 4;
        var error = Assert.Throws<CudaException>(() => ctx.Pool.Rent(tooMuch));
        Assert.That(error!.Message, Does.Contain(tooMuch.ToString(System.Globalization.CultureInfo.InvariantCulture)).And.Contain("free of"));
    }

    [Test]
    public void DataSurvivesARoundTripThroughTheDevice()
    {
        var ctx = Context;
        float[] host = [.. Enumerable.Range(0, 1000).Select(i => i * 0.5f - 7f)];
        var a = ctx.Pool.Rent(host.Length * 4L);
        var b = ctx.Pool.Rent(host.Length * 4L);
        try
        {
            var back = new float[host.Length];
            fixed (float* src = host) ctx.CopyHostToDevice(src, a.Pointer, a.Bytes);
            ctx.CopyDeviceToDevice(a.Pointer, b.Pointer, a.Bytes);
            fixed (float* dst = back) ctx.CopyDeviceToHost(b.Pointer, dst, b.Bytes);
            Assert.That(back, Is.EqualTo(host));

            ctx.Memset32(b.Pointer, BitConverter.SingleToUInt32Bits(2.5f), host.Length);
            fixed (float* dst = back) ctx.CopyDeviceToHost(b.Pointer, dst, b.Bytes);
            Assert.That(back, Is.All.EqualTo(2.5f));
        }
        finally
        {
            ctx.Pool.Return(a);
            ctx.Pool.Return(b);
        }
    }

    [Test]
    public void AKernelCompilesLaunchesAndLoadsFromDiskTheSecondTime()
    {
        var ctx = Context;
        string folder = Directory.CreateTempSubdirectory("brainseg-kernels-").FullName;
        string? saved = Environment.GetEnvironmentVariable(KernelCache.CacheVariable);
        // A fresh source so that the first cache really compiles.
        string source = $"// {Guid.NewGuid()}\n{AddSource}";
        var first = new KernelCache(ctx);
        var second = new KernelCache(ctx);
        try
        {
            Environment.SetEnvironmentVariable(KernelCache.CacheVariable, folder);
            var add = first.Get("runtime_test", "add_scalar_f32", source);
            Assert.That(first.CompilationsThisProcess, Is.EqualTo(1));
            Assert.That(Directory.GetFiles(folder), Has.Length.EqualTo(1));
            Assert.That(AddOnDevice(ctx, add, 100_000), Is.All.EqualTo(1.5f));

            var again = second.Get("runtime_test", "add_scalar_f32", source);
            Assert.That(second.CompilationsThisProcess, Is.EqualTo(0), "the second cache must load the binary from disk");
            Assert.That(AddOnDevice(ctx, again, 1000), Is.All.EqualTo(1.5f));
        }
        finally
        {
            Environment.SetEnvironmentVariable(KernelCache.CacheVariable, saved);
            first.Unload();
            second.Unload();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void ACompileErrorCarriesTheNvrtcLog()
    {
        var cache = new KernelCache(Context);
        var error = Assert.Throws<CudaException>(() => cache.Get("broken", "k", "extern \"C\" __global__ void k() { undefined_thing(); }"));
        Assert.That(error!.Message, Does.Contain("NVRTC_ERROR_COMPILATION").And.Contain("undefined_thing"));
    }

    private static float[] AddOnDevice(CudaContext ctx, CudaFunction add, int n)
    {
        var buffer = ctx.Pool.Rent(n * 4L);
        try
        {
            ctx.Memset32(buffer.Pointer, 0, n);
            Launch(ctx, add, buffer.Pointer, 1.5f, n);
            var result = new float[n];
            fixed (float* dst = result) ctx.CopyDeviceToHost(buffer.Pointer, dst, buffer.Bytes);
            return result;
        }
        finally { ctx.Pool.Return(buffer); }
    }

    private static void Launch(CudaContext ctx, CudaFunction add, ulong pointer, float value, long n)
    {
        void** args = stackalloc void*[3];
        args[0] = &pointer;
        args[1] = &value;
        args[2] = &n;
        add.Launch1D(n, ctx.Stream, args);
    }

    [Test]
    public void EventsTimeWorkOnTheStream()
    {
        var ctx = Context;
        var buffer = ctx.Pool.Rent(64L << 20);
        using var start = CudaEvent.Create();
        using var end = CudaEvent.Create();
        try
        {
            start.Record(ctx.Stream);
            for (int i = 0; i < 10; i++) ctx.Memset32(buffer.Pointer, (uint)i, buffer.Bytes / 4);
            end.Record(ctx.Stream);
            float ms = end.ElapsedMs(start);
            Assert.That(ms, Is.GreaterThan(0f).And.LessThan(10_000f));
        }
        finally { ctx.Pool.Return(buffer); }
    }

    [Test]
    public void ACapturedGraphReplaysItsWork()
    {
        var ctx = Context;
        var add = ctx.Kernels.Get("runtime_graph_test", "add_scalar_f32", AddSource);   // loaded before capture
        const int n = 4096;
        var buffer = ctx.Pool.Rent(n * 4L);
        try
        {
            ctx.Memset32(buffer.Pointer, 0, n);
            ctx.Synchronize();
            using (var graph = CudaGraph.Capture(ctx, () => Launch(ctx, add, buffer.Pointer, 1f, n)))
            {
                for (int i = 0; i < 3; i++) graph.Launch();
            }
            var result = new float[n];
            fixed (float* dst = result) ctx.CopyDeviceToHost(buffer.Pointer, dst, buffer.Bytes);
            Assert.That(result, Is.All.EqualTo(3f), "captured work runs only when the graph is launched, once per launch");
        }
        finally { ctx.Pool.Return(buffer); }
    }

    [Test]
    public void CublasMultipliesRowMajorMatrices()
    {
        var ctx = Context;
        // Row-major A (2x3) * B (3x2) = C (2x2). cuBLAS is column-major, so compute C^T = B^T A^T on the same memory.
        float[] a = [1, 2, 3, 4, 5, 6], b = [7, 8, 9, 10, 11, 12];
        var da = ctx.Pool.Rent(a.Length * 4L);
        var db = ctx.Pool.Rent(b.Length * 4L);
        var dc = ctx.Pool.Rent(4 * 4L);
        try
        {
            fixed (float* pa = a) ctx.CopyHostToDevice(pa, da.Pointer, da.Bytes);
            fixed (float* pb = b) ctx.CopyHostToDevice(pb, db.Pointer, db.Bytes);
            float alpha = 1, beta = 0;
            Check.Cublas(Cublas.cublasSgemm_v2(ctx.CublasHandle, cublasOperation_t.CUBLAS_OP_N, cublasOperation_t.CUBLAS_OP_N,
                2, 2, 3, &alpha, db.Pointer, 2, da.Pointer, 3, &beta, dc.Pointer, 2), "cublasSgemm_v2");
            var c = new float[4];
            fixed (float* pc = c) ctx.CopyDeviceToHost(dc.Pointer, pc, dc.Bytes);
            Assert.That(c, Is.EqualTo(new float[] { 58, 64, 139, 154 }));
        }
        finally
        {
            ctx.Pool.Return(da);
            ctx.Pool.Return(db);
            ctx.Pool.Return(dc);
        }
    }

    [Test]
    public void CudnnRunsADilatedConvolutionFoundByAlgorithmSearch()
    {
        var ctx = Context;
        // x: 1x1x5x5 (0..24), w: 1x1x2x2 all ones, dilation 2, no padding → y: 1x1x3x3, y[i,j] = x[i,j]+x[i,j+2]+x[i+2,j]+x[i+2,j+2].
        float[] x = [.. Enumerable.Range(0, 25).Select(i => (float)i)], w = [1, 1, 1, 1];
        var dx = ctx.Pool.Rent(25 * 4);
        var dw = ctx.Pool.Rent(4 * 4);
        var dy = ctx.Pool.Rent(9 * 4);
        nint xDesc = 0, yDesc = 0, wDesc = 0, convDesc = 0;
        try
        {
            fixed (float* p = x) ctx.CopyHostToDevice(p, dx.Pointer, dx.Bytes);
            fixed (float* p = w) ctx.CopyHostToDevice(p, dw.Pointer, dw.Bytes);
            Check.Cudnn(Cudnn.cudnnCreateTensorDescriptor(&xDesc), "cudnnCreateTensorDescriptor");
            Check.Cudnn(Cudnn.cudnnCreateTensorDescriptor(&yDesc), "cudnnCreateTensorDescriptor");
            Check.Cudnn(Cudnn.cudnnCreateFilterDescriptor(&wDesc), "cudnnCreateFilterDescriptor");
            Check.Cudnn(Cudnn.cudnnCreateConvolutionDescriptor(&convDesc), "cudnnCreateConvolutionDescriptor");
            Check.Cudnn(Cudnn.cudnnSetTensor4dDescriptor(xDesc, cudnnTensorFormat_t.CUDNN_TENSOR_NCHW, cudnnDataType_t.CUDNN_DATA_FLOAT, 1, 1, 5, 5), "cudnnSetTensor4dDescriptor");
            Check.Cudnn(Cudnn.cudnnSetFilter4dDescriptor(wDesc, cudnnDataType_t.CUDNN_DATA_FLOAT, cudnnTensorFormat_t.CUDNN_TENSOR_NCHW, 1, 1, 2, 2), "cudnnSetFilter4dDescriptor");
            Check.Cudnn(Cudnn.cudnnSetConvolution2dDescriptor(convDesc, 0, 0, 1, 1, 2, 2, cudnnConvolutionMode_t.CUDNN_CROSS_CORRELATION, cudnnDataType_t.CUDNN_DATA_FLOAT), "cudnnSetConvolution2dDescriptor");
            Check.Cudnn(Cudnn.cudnnSetConvolutionMathType(convDesc, cudnnMathType_t.CUDNN_FMA_MATH), "cudnnSetConvolutionMathType");
            int n, c, h, wOut;
            Check.Cudnn(Cudnn.cudnnGetConvolution2dForwardOutputDim(convDesc, xDesc, wDesc, &n, &c, &h, &wOut), "cudnnGetConvolution2dForwardOutputDim");
            Assert.That((n, c, h, wOut), Is.EqualTo((1, 1, 3, 3)));
            Check.Cudnn(Cudnn.cudnnSetTensor4dDescriptor(yDesc, cudnnTensorFormat_t.CUDNN_TENSOR_NCHW, cudnnDataType_t.CUDNN_DATA_FLOAT, 1, 1, 3, 3), "cudnnSetTensor4dDescriptor");

            const int requested = 8;
            var perf = stackalloc cudnnConvolutionFwdAlgoPerf_t[requested];
            int returned = 0;
            Check.Cudnn(Cudnn.cudnnFindConvolutionForwardAlgorithmEx(ctx.CudnnHandle, xDesc, dx.Pointer, wDesc, dw.Pointer, convDesc, yDesc, dy.Pointer,
                requested, &returned, perf, 0, 0), "cudnnFindConvolutionForwardAlgorithmEx");
            Assert.That(returned, Is.InRange(1, requested));
            Assert.That(perf[0].status, Is.EqualTo(0), "the best algorithm must have run");
            Assert.That((int)perf[0].algo, Is.InRange(0, 7));
            Assert.That(perf[0].time, Is.GreaterThanOrEqualTo(0f).And.LessThan(10_000f));
            Assert.That((int)perf[0].mathType, Is.InRange(0, 3));
            Assert.That((int)perf[0].determinism, Is.InRange(0, 1));

            nuint workspaceBytes = 0;
            Check.Cudnn(Cudnn.cudnnGetConvolutionForwardWorkspaceSize(ctx.CudnnHandle, xDesc, wDesc, convDesc, yDesc, perf[0].algo, &workspaceBytes),
                "cudnnGetConvolutionForwardWorkspaceSize");
            var workspace = ctx.Pool.Rent((long)workspaceBytes);
            try
            {
                float alpha = 1, beta = 0;
                Check.Cudnn(Cudnn.cudnnConvolutionForward(ctx.CudnnHandle, &alpha, xDesc, dx.Pointer, wDesc, dw.Pointer, convDesc, perf[0].algo,
                    workspace.Pointer, workspaceBytes, &beta, yDesc, dy.Pointer), "cudnnConvolutionForward");
            }
            finally { ctx.Pool.Return(workspace); }
            var y = new float[9];
            fixed (float* p = y) ctx.CopyDeviceToHost(dy.Pointer, p, dy.Bytes);
            var expected = new float[9];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    expected[i * 3 + j] = x[i * 5 + j] + x[i * 5 + j + 2] + x[(i + 2) * 5 + j] + x[(i + 2) * 5 + j + 2];
            Assert.That(y, Is.EqualTo(expected));
        }
        finally
        {
            if (convDesc != 0) Cudnn.cudnnDestroyConvolutionDescriptor(convDesc);
            if (wDesc != 0) Cudnn.cudnnDestroyFilterDescriptor(wDesc);
            if (yDesc != 0) Cudnn.cudnnDestroyTensorDescriptor(yDesc);
            if (xDesc != 0) Cudnn.cudnnDestroyTensorDescriptor(xDesc);
            ctx.Pool.Return(dx);
            ctx.Pool.Return(dw);
            ctx.Pool.Return(dy);
        }
    }

    [Test]
    public void ACudnnErrorNamesTheCallAndTheStatus()
    {
        _ = Context;
        nint desc = 0;
        Check.Cudnn(Cudnn.cudnnCreateTensorDescriptor(&desc), "cudnnCreateTensorDescriptor");
        nint descriptor = desc;
        try
        {
            var error = Assert.Throws<CudaException>(() => Check.Cudnn(
                Cudnn.cudnnSetTensor4dDescriptor(descriptor, cudnnTensorFormat_t.CUDNN_TENSOR_NCHW, cudnnDataType_t.CUDNN_DATA_FLOAT, 1, -3, 5, 5),
                "cudnnSetTensor4dDescriptor"));
            Assert.That(error!.Message, Does.StartWith("cudnnSetTensor4dDescriptor failed: CUDNN_STATUS_BAD_PARAM"));
        }
        finally { Cudnn.cudnnDestroyTensorDescriptor(desc); }
    }
}
