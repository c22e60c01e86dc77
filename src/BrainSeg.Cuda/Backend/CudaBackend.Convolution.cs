using BrainSeg.Engine;

namespace BrainSeg.Cuda;

// GEMM through cuBLAS and convolution through cuDNN: forward and backward side by side.
public sealed unsafe partial class CudaBackend
{
    // ---- GEMM ----

    public void Gemm(bool transposeA, bool transposeB, double alpha, Tensor a, Tensor b, double beta, Tensor c)
    {
        Enter(nameof(Gemm));
        var (dt, m, n, k) = OpChecks.Gemm(this, transposeA, transposeB, a, b, c);
        if (m == 0 || n == 0) return;
        Model(a.ByteLength + b.ByteLength + (beta == 0 ? 1 : 2) * c.ByteLength, 2.0 * m * n * k);
        if (k == 0)
        {
            // An empty product: c = beta·c (beta = 0 ignores old contents, NaN included).
            if (beta == 0) Fill(c, 0);
            else Scale(c, beta);
            return;
        }
        // cuBLAS is column-major: a row-major matrix is its transpose there. So compute
        // cᵀ (n×m) = op(b)ᵀ·op(a)ᵀ, passing b first; each leading dimension is the row-major row length.
        var opB = transposeB ? cublasOperation_t.CUBLAS_OP_T : cublasOperation_t.CUBLAS_OP_N;
        var opA = transposeA ? cublasOperation_t.CUBLAS_OP_T : cublasOperation_t.CUBLAS_OP_N;
        int ldb = b.Shape[1], lda = a.Shape[1], ldc = n;
        _ctx.Counters.Launch();
        if (dt == DType.Float32)
        {
            float fa = (float)alpha, fb = (float)beta;
            Check.Cublas(Cublas.cublasSgemm_v2(_ctx.CublasHandle, opB, opA, n, m, k, &fa, Ptr(b), ldb, Ptr(a), lda, &fb, Ptr(c), ldc),
                "cublasSgemm_v2");
        }
        else
        {
            Check.Cublas(Cublas.cublasDgemm_v2(_ctx.CublasHandle, opB, opA, n, m, k, &alpha, Ptr(b), ldb, Ptr(a), lda, &beta, Ptr(c), ldc),
                "cublasDgemm_v2");
        }
    }

    // ---- convolution ----

    public void Conv2dForward(Tensor x, Tensor w, Tensor y, Conv2dSpec spec, Tensor? bias = null, bool relu = false)
    {
        Enter(nameof(Conv2dForward));
        var dt = OpChecks.Conv2dForward(this, x, w, y, spec, bias);
        var plan = Plan("Conv2dForward", dt, x, w, y, spec);
        if (y.Numel == 0) return;
        bool epilogue = bias is not null || relu;
        long epilogueFlops = y.Numel * ((bias is null ? 0 : 1) + (relu ? 1 : 0));
        if (x.Numel > 0 && w.Numel > 0 && RunFused(plan, ConvolutionDirection.Forward, dt, x, w, y, spec, bias, relu))
        {
            // One pass: the output is written once, with its bias and ReLU; a deferred input is read from its batch norm's input.
            ModelConvolution(x, w, y);
            Model(bias?.ByteLength ?? 0, epilogueFlops);
            return;
        }
        ModelConvolution(x, w, y);
        if (epilogue) Model(2 * y.ByteLength, epilogueFlops);
        if (x.Numel == 0 || w.Numel == 0) Fill(y, 0); // an empty sum
        else if (!RunGraph(plan, ConvolutionDirection.Forward, dt, x, w, y, spec)) Convolve(plan, dt, x, w, y);
        if (epilogue) BiasAndRelu("Conv2dForward", dt, y, bias, y.Shape.C, (long)y.Shape.H * y.Shape.W, relu);
    }

    private void Convolve(ConvPlan plan, DType dt, Tensor x, Tensor w, Tensor y)
    {
        var algo = plan.Forward ??= SearchForward(plan, Ptr(x), Ptr(w), Ptr(y));
        var ws = _workspace.Ensure(algo.WorkspaceBytes);
        float f1 = 1, f0 = 0;
        double d1 = 1, d0 = 0;
        void* one = dt == DType.Float32 ? &f1 : &d1, zero = dt == DType.Float32 ? &f0 : &d0;
        UseMath(plan, algo);
        _ctx.Counters.Launch();
        Check.Cudnn(Cudnn.cudnnConvolutionForward(_ctx.CudnnHandle, one, plan.Input, Ptr(x), plan.Filter, Ptr(w), plan.Convolution,
            (cudnnConvolutionFwdAlgo_t)algo.Algorithm, ws, (nuint)algo.WorkspaceBytes, zero, plan.Output, Ptr(y)), "cudnnConvolutionForward");
    }

    public void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, Conv2dSpec spec, Tensor? x = null)
    {
        Enter(nameof(Conv2dBackwardData));
        var dt = OpChecks.Conv2dBackwardData(this, dy, w, dx, spec);
        var plan = Plan("Conv2dBackwardData", dt, dx, w, dy, spec);
        if (dx.Numel == 0) return;
        ModelConvolution(dx, w, dy);
        if (dy.Numel == 0 || w.Numel == 0) { Fill(dx, 0); return; }
        // x a batch norm's output it never wrote: its backward's sums are made here too, where cuDNN fuses them.
        if (x is not null && Deferred(x) is { } norm && x.Shape == dx.Shape && dx.Storage is CudaStorage { IsRoot: true }
            && RunFused(plan, ConvolutionDirection.BackwardData, dt, dx, w, dy, spec, gradientOf: norm)) return;
        if (RunGraph(plan, ConvolutionDirection.BackwardData, dt, dx, w, dy, spec)) return;
        var algo = plan.BackwardData ??= SearchBackwardData(plan, Ptr(dy), Ptr(w), Ptr(dx));
        var ws = _workspace.Ensure(algo.WorkspaceBytes);
        float f1 = 1, f0 = 0;
        double d1 = 1, d0 = 0;
        void* one = dt == DType.Float32 ? &f1 : &d1, zero = dt == DType.Float32 ? &f0 : &d0;
        UseMath(plan, algo);
        _ctx.Counters.Launch();
        Check.Cudnn(Cudnn.cudnnConvolutionBackwardData(_ctx.CudnnHandle, one, plan.Filter, Ptr(w), plan.Output, Ptr(dy), plan.Convolution,
            (cudnnConvolutionBwdDataAlgo_t)algo.Algorithm, ws, (nuint)algo.WorkspaceBytes, zero, plan.Input, Ptr(dx)), "cudnnConvolutionBackwardData");
    }

    public void Conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Conv2dSpec spec)
    {
        Enter(nameof(Conv2dBackwardFilter));
        var dt = OpChecks.Conv2dBackwardFilter(this, x, dy, dw, spec);
        var plan = Plan("Conv2dBackwardFilter", dt, x, dw, dy, spec);
        if (dw.Numel == 0) return;
        ModelConvolution(x, dw, dy);
        if (x.Numel == 0 || dy.Numel == 0) { Fill(dw, 0); return; }
        if (RunFused(plan, ConvolutionDirection.BackwardFilter, dt, x, dw, dy, spec)) return;
        if (RunGraph(plan, ConvolutionDirection.BackwardFilter, dt, x, dw, dy, spec)) return;
        var algo = plan.BackwardFilter ??= SearchBackwardFilter(plan, Ptr(x), Ptr(dy), Ptr(dw));
        var ws = _workspace.Ensure(algo.WorkspaceBytes);
        float f1 = 1, f0 = 0;
        double d1 = 1, d0 = 0;
        void* one = dt == DType.Float32 ? &f1 : &d1, zero = dt == DType.Float32 ? &f0 : &d0;
        UseMath(plan, algo);
        _ctx.Counters.Launch();
        Check.Cudnn(Cudnn.cudnnConvolutionBackwardFilter(_ctx.CudnnHandle, one, plan.Input, Ptr(x), plan.Output, Ptr(dy), plan.Convolution,
            (cudnnConvolutionBwdFilterAlgo_t)algo.Algorithm, ws, (nuint)algo.WorkspaceBytes, zero, plan.Filter, Ptr(dw)), "cudnnConvolutionBackwardFilter");
    }

    /// <summary>
    /// One pass of a convolution in any direction: the image, the filter and the output each cross memory once
    /// (the ideal of an implicit GEMM), and 2·N·K·C·R·S·Ho·Wo FLOPs.
    /// </summary>
    private void ModelConvolution(Tensor image, Tensor filter, Tensor output)
    {
        var (w, y) = (filter.Shape, output.Shape);
        Model(image.ByteLength + filter.ByteLength + output.ByteLength, 2.0 * y.N * y.C * y.H * y.W * w.C * w.H * w.W);
    }

    // ---- plans: descriptors per geometry; the legacy API's algorithms measured once per direction where the graph API fails ----

    private readonly record struct ConvKey(DType DType, TensorLayout Layout, int N, int C, int H, int W, int K, int R, int S, int Dilation, int Padding);

    /// <summary>The chosen cuDNN algorithm of one direction, the math type it runs with and the workspace it needs.</summary>
    private readonly record struct ConvAlgorithm(int Algorithm, cudnnMathType_t Math, long WorkspaceBytes);

    private sealed class ConvPlan : IDisposable
    {
        public nint Input, Filter, Output, Convolution;
        public ConvKey Key;
        /// <summary>Float32 without TF32: only FMA kernels may run.</summary>
        public bool FmaOnly;
        /// <summary>The math type the algorithm searches run under (each chosen algorithm then sets its own).</summary>
        public cudnnMathType_t SearchMath;
        public ConvAlgorithm? Forward, BackwardData, BackwardFilter;
        /// <summary>Per pass (ConvolutionDirection): the graph API's chosen engine, or whether that pass falls back to the legacy API.</summary>
        public readonly GraphPass?[] Passes = new GraphPass?[3];
        public readonly bool[] Legacy = new bool[3];
        /// <summary>Per pass and fusion: the chosen fused pass, or null where the plain pass and separate ones run (CudaBackend.Fusion.cs).</summary>
        public readonly Dictionary<(ConvolutionDirection, ConvolutionFusion), GraphPass?> Fused = [];

        public void Dispose()
        {
            for (var i = 0; i < Passes.Length; i++)
            {
                Passes[i]?.Dispose();
                Passes[i] = null;
            }
            foreach (var pass in Fused.Values) pass?.Dispose();
            Fused.Clear();
            // Teardown: report nothing, but never leak a descriptor because another failed.
            if (Input != 0) Cudnn.cudnnDestroyTensorDescriptor(Input);
            if (Output != 0) Cudnn.cudnnDestroyTensorDescriptor(Output);
            if (Filter != 0) Cudnn.cudnnDestroyFilterDescriptor(Filter);
            if (Convolution != 0) Cudnn.cudnnDestroyConvolutionDescriptor(Convolution);
            Input = Output = Filter = Convolution = 0;
        }
    }

    private readonly Dictionary<ConvKey, ConvPlan> _convPlans = new();
    private readonly List<string> _convolutionChoices = [];

    /// <summary>Every cuDNN algorithm chosen so far, one line per (geometry, direction), for reports and diagnosis.</summary>
    public IReadOnlyList<string> ConvolutionChoices
    {
        get { lock (_convolutionChoices) return _convolutionChoices.ToArray(); }
    }

    private void DisposeConvolutionPlans()
    {
        foreach (var plan in _convPlans.Values) plan.Dispose();
        _convPlans.Clear();
    }

    /// <summary>The cached plan for input x, filter w and output y (already validated by OpChecks).</summary>
    private ConvPlan Plan(string op, DType dt, Tensor x, Tensor w, Tensor y, Conv2dSpec spec)
    {
        var layout = Nhwc(op, x, w, y) == 1 ? TensorLayout.Nhwc : TensorLayout.Nchw;
        var key = new ConvKey(dt, layout, x.Shape.N, x.Shape.C, x.Shape.H, x.Shape.W, w.Shape.N, w.Shape.H, w.Shape.W, spec.Dilation, spec.Padding);
        if (_convPlans.TryGetValue(key, out var plan)) return plan;
        if (x.Numel == 0 || w.Numel == 0 || y.Numel == 0) return new ConvPlan(); // nothing to run: callers return early

        plan = new ConvPlan { Key = key };
        try
        {
            var type = dt == DType.Float32 ? cudnnDataType_t.CUDNN_DATA_FLOAT : cudnnDataType_t.CUDNN_DATA_DOUBLE;
            // One format for all three: a tensor whose order is trivial is the same memory in either.
            var format = key.Layout == TensorLayout.Nhwc ? cudnnTensorFormat_t.CUDNN_TENSOR_NHWC : cudnnTensorFormat_t.CUDNN_TENSOR_NCHW;
            nint d;
            Check.Cudnn(Cudnn.cudnnCreateTensorDescriptor(&d), "cudnnCreateTensorDescriptor");
            plan.Input = d;
            Check.Cudnn(Cudnn.cudnnSetTensor4dDescriptor(d, format, type, x.Shape.N, x.Shape.C, x.Shape.H, x.Shape.W), "cudnnSetTensor4dDescriptor(input)");
            Check.Cudnn(Cudnn.cudnnCreateTensorDescriptor(&d), "cudnnCreateTensorDescriptor");
            plan.Output = d;
            Check.Cudnn(Cudnn.cudnnSetTensor4dDescriptor(d, format, type, y.Shape.N, y.Shape.C, y.Shape.H, y.Shape.W), "cudnnSetTensor4dDescriptor(output)");
            Check.Cudnn(Cudnn.cudnnCreateFilterDescriptor(&d), "cudnnCreateFilterDescriptor");
            plan.Filter = d;
            Check.Cudnn(Cudnn.cudnnSetFilter4dDescriptor(d, type, format, w.Shape.N, w.Shape.C, w.Shape.H, w.Shape.W), "cudnnSetFilter4dDescriptor");
            Check.Cudnn(Cudnn.cudnnCreateConvolutionDescriptor(&d), "cudnnCreateConvolutionDescriptor");
            plan.Convolution = d;
            Check.Cudnn(Cudnn.cudnnSetConvolution2dDescriptor(d, spec.Padding, spec.Padding, 1, 1, spec.Dilation, spec.Dilation,
                cudnnConvolutionMode_t.CUDNN_CROSS_CORRELATION, type), "cudnnSetConvolution2dDescriptor");
            // FMA math keeps float32 convolutions off TF32 tensor cores (parity with the CPU within 1e-4).
            var math = dt == DType.Float64 ? cudnnMathType_t.CUDNN_DEFAULT_MATH
                : Options.AllowTf32 ? cudnnMathType_t.CUDNN_TENSOR_OP_MATH : cudnnMathType_t.CUDNN_FMA_MATH;
            Check.Cudnn(Cudnn.cudnnSetConvolutionMathType(d, math), "cudnnSetConvolutionMathType");
            plan.FmaOnly = math == cudnnMathType_t.CUDNN_FMA_MATH;
            plan.SearchMath = math;

            // cuDNN must agree with our output size, or the descriptors describe different convolutions.
            int on, oc, oh, ow;
            Check.Cudnn(Cudnn.cudnnGetConvolution2dForwardOutputDim(plan.Convolution, plan.Input, plan.Filter, &on, &oc, &oh, &ow),
                "cudnnGetConvolution2dForwardOutputDim");
            if (on != y.Shape.N || oc != y.Shape.C || oh != y.Shape.H || ow != y.Shape.W)
                throw new CudaException($"{op}: cuDNN computes output [{on}, {oc}, {oh}, {ow}] for input {x.Shape}, filter {w.Shape}, {spec}; expected {y.Shape}.");
        }
        catch
        {
            plan.Dispose();
            throw;
        }
        _convPlans[key] = plan;
        return plan;
    }

    /// <summary>
    /// The temporary workspace lent to the algorithm search: the configured cap, at most half the free
    /// memory. Returned to the pool afterwards (only the chosen algorithm's size is kept).
    /// </summary>
    private long SearchWorkspaceBytes()
    {
        _ctx.RefuseWhileCapturing("an algorithm search (cuDNN runs and times the candidates, and waits for them)");
        var free = _ctx.MemoryInfo().FreeBytes;
        return Math.Max(0, Math.Min(Options.AlgorithmSearchWorkspaceBytes, free / 2) & ~((1L << 20) - 1));
    }

    // The searches run real kernels on the tensors given (outputs are overwritten afterwards anyway) and
    // synchronise: they happen once per geometry, so warm up before capturing a CUDA graph.

    private ConvAlgorithm SearchForward(ConvPlan plan, ulong x, ulong w, ulong y)
    {
        const int requested = (int)cudnnConvolutionFwdAlgo_t.CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
        var results = stackalloc cudnnConvolutionFwdAlgoPerf_t[requested];
        int returned = 0;
        var bytes = SearchWorkspaceBytes();
        Check.Cudnn(Cudnn.cudnnSetConvolutionMathType(plan.Convolution, plan.SearchMath), "cudnnSetConvolutionMathType");
        var ws = bytes > 0 ? _ctx.Pool.Rent(bytes) : default;
        try
        {
            _ctx.Counters.AlgorithmSearch();
            _ctx.Counters.HostSync();   // the search times its candidates: it waits for the device
            Check.Cudnn(Cudnn.cudnnFindConvolutionForwardAlgorithmEx(_ctx.CudnnHandle, plan.Input, x, plan.Filter, w, plan.Convolution,
                plan.Output, y, requested, &returned, results, ws.Pointer, (nuint)bytes), "cudnnFindConvolutionForwardAlgorithmEx");
        }
        finally
        {
            if (ws.Bytes > 0) _ctx.Pool.Return(ws);
        }
        var candidates = new List<Candidate>();
        for (var i = 0; i < returned; i++)
            candidates.Add(new((int)results[i].algo, results[i].status, (long)results[i].memory, results[i].determinism, results[i].mathType));
        var chosen = Choose("forward", plan, candidates, a => (cudnnConvolutionFwdAlgo_t)a is cudnnConvolutionFwdAlgo_t.CUDNN_CONVOLUTION_FWD_ALGO_FFT
            or cudnnConvolutionFwdAlgo_t.CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING or cudnnConvolutionFwdAlgo_t.CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD
            or cudnnConvolutionFwdAlgo_t.CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED);
        UseMath(plan, chosen);
        nuint size = 0;
        Check.Cudnn(Cudnn.cudnnGetConvolutionForwardWorkspaceSize(_ctx.CudnnHandle, plan.Input, plan.Filter, plan.Convolution, plan.Output,
            (cudnnConvolutionFwdAlgo_t)chosen.Algorithm, &size), "cudnnGetConvolutionForwardWorkspaceSize");
        return chosen with { WorkspaceBytes = Math.Max(chosen.WorkspaceBytes, (long)size) };
    }

    private ConvAlgorithm SearchBackwardData(ConvPlan plan, ulong dy, ulong w, ulong dx)
    {
        const int requested = (int)cudnnConvolutionBwdDataAlgo_t.CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
        var results = stackalloc cudnnConvolutionBwdDataAlgoPerf_t[requested];
        int returned = 0;
        var bytes = SearchWorkspaceBytes();
        Check.Cudnn(Cudnn.cudnnSetConvolutionMathType(plan.Convolution, plan.SearchMath), "cudnnSetConvolutionMathType");
        var ws = bytes > 0 ? _ctx.Pool.Rent(bytes) : default;
        try
        {
            _ctx.Counters.AlgorithmSearch();
            _ctx.Counters.HostSync();   // the search times its candidates: it waits for the device
            Check.Cudnn(Cudnn.cudnnFindConvolutionBackwardDataAlgorithmEx(_ctx.CudnnHandle, plan.Filter, w, plan.Output, dy, plan.Convolution,
                plan.Input, dx, requested, &returned, results, ws.Pointer, (nuint)bytes), "cudnnFindConvolutionBackwardDataAlgorithmEx");
        }
        finally
        {
            if (ws.Bytes > 0) _ctx.Pool.Return(ws);
        }
        var candidates = new List<Candidate>();
        for (var i = 0; i < returned; i++)
            candidates.Add(new((int)results[i].algo, results[i].status, (long)results[i].memory, results[i].determinism, results[i].mathType));
        var chosen = Choose("backward-data", plan, candidates, a => (cudnnConvolutionBwdDataAlgo_t)a is cudnnConvolutionBwdDataAlgo_t.CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT
            or cudnnConvolutionBwdDataAlgo_t.CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING or cudnnConvolutionBwdDataAlgo_t.CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD
            or cudnnConvolutionBwdDataAlgo_t.CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED);
        UseMath(plan, chosen);
        nuint size = 0;
        Check.Cudnn(Cudnn.cudnnGetConvolutionBackwardDataWorkspaceSize(_ctx.CudnnHandle, plan.Filter, plan.Output, plan.Convolution, plan.Input,
            (cudnnConvolutionBwdDataAlgo_t)chosen.Algorithm, &size), "cudnnGetConvolutionBackwardDataWorkspaceSize");
        return chosen with { WorkspaceBytes = Math.Max(chosen.WorkspaceBytes, (long)size) };
    }

    private ConvAlgorithm SearchBackwardFilter(ConvPlan plan, ulong x, ulong dy, ulong dw)
    {
        const int requested = (int)cudnnConvolutionBwdFilterAlgo_t.CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
        var results = stackalloc cudnnConvolutionBwdFilterAlgoPerf_t[requested];
        int returned = 0;
        var bytes = SearchWorkspaceBytes();
        Check.Cudnn(Cudnn.cudnnSetConvolutionMathType(plan.Convolution, plan.SearchMath), "cudnnSetConvolutionMathType");
        var ws = bytes > 0 ? _ctx.Pool.Rent(bytes) : default;
        try
        {
            _ctx.Counters.AlgorithmSearch();
            _ctx.Counters.HostSync();   // the search times its candidates: it waits for the device
            Check.Cudnn(Cudnn.cudnnFindConvolutionBackwardFilterAlgorithmEx(_ctx.CudnnHandle, plan.Input, x, plan.Output, dy, plan.Convolution,
                plan.Filter, dw, requested, &returned, results, ws.Pointer, (nuint)bytes), "cudnnFindConvolutionBackwardFilterAlgorithmEx");
        }
        finally
        {
            if (ws.Bytes > 0) _ctx.Pool.Return(ws);
        }
        var candidates = new List<Candidate>();
        for (var i = 0; i < returned; i++)
            candidates.Add(new((int)results[i].algo, results[i].status, (long)results[i].memory, results[i].determinism, results[i].mathType));
        var chosen = Choose("backward-filter", plan, candidates, a => (cudnnConvolutionBwdFilterAlgo_t)a is cudnnConvolutionBwdFilterAlgo_t.CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT
            or cudnnConvolutionBwdFilterAlgo_t.CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING or cudnnConvolutionBwdFilterAlgo_t.CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD
            or cudnnConvolutionBwdFilterAlgo_t.CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED);
        UseMath(plan, chosen);
        nuint size = 0;
        Check.Cudnn(Cudnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(_ctx.CudnnHandle, plan.Input, plan.Output, plan.Convolution, plan.Filter,
            (cudnnConvolutionBwdFilterAlgo_t)chosen.Algorithm, &size), "cudnnGetConvolutionBackwardFilterWorkspaceSize");
        return chosen with { WorkspaceBytes = Math.Max(chosen.WorkspaceBytes, (long)size) };
    }

    private readonly record struct Candidate(int Algorithm, int Status, long Memory, cudnnDeterminism_t Determinism, cudnnMathType_t Math);

    /// <summary>
    /// The fastest successful candidate (cuDNN sorts by time) that respects the options: no tensor-op math
    /// for float32 unless TF32 is allowed, and a deterministic one when any is and determinism is preferred.
    /// cuDNN may report an algorithm under another math type than the descriptor's, and it runs (and sizes
    /// the workspace of) the pair (algorithm, math type), so the pair is kept and set before every call.
    /// </summary>
    private ConvAlgorithm Choose(string direction, ConvPlan plan, List<Candidate> candidates, Func<int, bool> isTransform)
    {
        var usable = candidates.Where(c => c.Status == 0 && (!plan.FmaOnly ||
            c.Math is not (cudnnMathType_t.CUDNN_TENSOR_OP_MATH or cudnnMathType_t.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))).ToList();
        // Exact float32 also leaves out the FFT and Winograd algorithms: they compute the convolution through
        // a transform whose rounding exceeds direct summation's. Kept only when nothing else runs.
        if (plan.FmaOnly && usable.Any(c => !isTransform(c.Algorithm)))
            usable.RemoveAll(c => isTransform(c.Algorithm));
        if (usable.Count == 0)
            throw new CudaException($"cuDNN found no usable {direction} convolution algorithm: " +
                string.Join("; ", candidates.Select(c => $"algo {c.Algorithm} status {c.Status} math {c.Math} workspace {c.Memory} B")) +
                (candidates.Count == 0 ? "none returned" : "") +
                ". Free device memory (the search lends each candidate at most " + SearchWorkspaceBytes() + " bytes) or allow TF32.");
        var chosen = Options.DeterministicAlgorithms && usable.Any(c => c.Determinism == cudnnDeterminism_t.CUDNN_DETERMINISTIC)
            ? usable.First(c => c.Determinism == cudnnDeterminism_t.CUDNN_DETERMINISTIC)
            : usable[0];
        // Float32 without TF32 stays on FMA kernels whatever was reported.
        var math = plan.FmaOnly ? cudnnMathType_t.CUDNN_FMA_MATH : chosen.Math;
        lock (_convolutionChoices)
            _convolutionChoices.Add($"{direction} {plan.Key}: algorithm {chosen.Algorithm}, {math}, workspace {chosen.Memory} B");
        return new ConvAlgorithm(chosen.Algorithm, math, chosen.Memory);
    }

    /// <summary>Sets the descriptor's math type to the algorithm's: the three directions share one descriptor.</summary>
    private static void UseMath(ConvPlan plan, ConvAlgorithm algo) =>
        Check.Cudnn(Cudnn.cudnnSetConvolutionMathType(plan.Convolution, algo.Math), "cudnnSetConvolutionMathType");
}
