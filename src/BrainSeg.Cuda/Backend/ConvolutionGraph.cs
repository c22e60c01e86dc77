using BrainSeg.Engine;
using static BrainSeg.Cuda.cudnnBackendAttributeName_t;
using static BrainSeg.Cuda.cudnnBackendAttributeType_t;
using static BrainSeg.Cuda.cudnnBackendDescriptorType_t;

namespace BrainSeg.Cuda;

/// <summary>Which of a convolution's three passes.</summary>
public enum ConvolutionDirection { Forward, BackwardData, BackwardFilter }

/// <summary>
/// What a convolution pass computes besides the convolution, inside the same cuDNN graph (runtime fusion): a prologue
/// max(x·scale + shift, 0) per input channel applied as the input is read (forward and filter-gradient passes); an
/// epilogue on the forward's output: + bias per channel, then ReLU, and the per-channel sum and sum of squares of what
/// is written (batch-norm statistics); and an epilogue on the data gradient (<see cref="GradientReluSums"/>). The
/// default is the plain convolution.
/// </summary>
/// <param name="GradientReluSums">The data gradient's epilogue: besides the gradient itself, the per-channel sums that the
/// backward of the batch norm + ReLU which made the convolution's input needs, Σg and Σg·(norm − mean), g being the
/// gradient where norm·scale + shift > 0 (else 0) and norm the batch norm's input.</param>
internal readonly record struct ConvolutionFusion(bool InputNormRelu = false, bool Bias = false, bool Relu = false, bool Statistics = false,
    bool GradientReluSums = false)
{
    public bool IsNone => this == default;

    /// <summary>"", or what is fused in the order it runs, e.g. "scale+shift+relu→conv→statistics".</summary>
    public override string ToString() => IsNone ? "" :
        (InputNormRelu ? "scale+shift+relu→" : "") + "conv" + (Bias ? "+bias" : "") + (Relu ? "+relu" : "") + (Statistics ? "→statistics" : "")
        + (GradientReluSums ? "→relu-backward→sums" : "");
}

/// <summary>The device pointers of one execution, by the names the graph gives its tensors (0 for those it lacks).</summary>
internal readonly record struct GraphOperands(ulong X, ulong W, ulong Y, ulong Bias = 0, ulong Scale = 0, ulong Shift = 0, ulong Sum = 0,
    ulong SquareSum = 0, ulong Norm = 0, ulong Mean = 0, ulong ProductSum = 0);

/// <summary>
/// One pass of one 2-D convolution as a cuDNN operation graph (graph API): the x, w and y tensors with their
/// dimensions, strides and alignment, the convolution, its operation and any fused prologue or epilogue
/// (<see cref="ConvolutionFusion"/>), and the graph over them. Engines are listed by cuDNN's heuristics, or rebuilt from
/// a remembered (engine, knobs) choice, and turned into execution plans; <see cref="Execute"/> runs a plan on device
/// pointers. The stride of every tensor is given, so the same graph describes NCHW or channels-last data.
/// </summary>
internal sealed unsafe class ConvolutionGraph : OperationGraph
{
    // The tensors' unique ids in the graph and in every variant pack; the fused graphs' intermediates are virtual (never in memory).
    private const long XId = 'x', WId = 'w', YId = 'y', BiasId = 'b', ScaleId = 'k', ShiftId = 'h', SumId = 's', SquareSumId = 'q',
        NormId = 'n', MeanId = 'm', ProductSumId = 'p';
    private long _virtualId = 'v' << 8;

    public ConvolutionGraph(nint cudnnHandle, ConvolutionDirection direction, DType dtype, Shape x, Shape w, Shape y,
        Conv2dSpec spec, TensorLayout layout, (int X, int W, int Y) alignment, ConvolutionFusion fusion = default, int perChannelAlignment = 16)
        : this(cudnnHandle, direction, dtype == DType.Float32 ? cudnnDataType_t.CUDNN_DATA_FLOAT : cudnnDataType_t.CUDNN_DATA_DOUBLE,
            x, w, y, spec, layout, alignment, fusion, perChannelAlignment)
    {
    }

    /// <param name="io">The type of x, w and y in memory (half only to ask cuDNN what it supports); the convolution and
    /// every fused operation compute in float, or in double for double data.</param>
    public ConvolutionGraph(nint cudnnHandle, ConvolutionDirection direction, cudnnDataType_t io, Shape x, Shape w, Shape y,
        Conv2dSpec spec, TensorLayout layout, (int X, int W, int Y) alignment, ConvolutionFusion fusion, int perChannelAlignment) : base(cudnnHandle)
    {
        (Direction, Fusion) = (direction, fusion);
        try
        {
            if ((fusion.Bias || fusion.Relu || fusion.Statistics) && direction != ConvolutionDirection.Forward
                || fusion.InputNormRelu && direction == ConvolutionDirection.BackwardData
                || fusion.GradientReluSums && direction != ConvolutionDirection.BackwardData)
                throw new ArgumentException($"A {direction} convolution pass cannot fuse {fusion}.");
            var compute = io == cudnnDataType_t.CUDNN_DATA_DOUBLE ? io : cudnnDataType_t.CUDNN_DATA_FLOAT;
            BackendDescriptor PerChannel(long id, int channels) => Tensor(id, compute, new Shape(1, channels, 1, 1), layout, perChannelAlignment);
            BackendDescriptor Virtual(Shape s) => Tensor(++_virtualId, compute, s, layout, 16, isVirtual: true);
            var ops = new List<BackendDescriptor>();
            var xd = Tensor(XId, io, x, layout, alignment.X);
            var wd = Tensor(WId, io, w, layout, alignment.W);
            var yd = Tensor(YId, io, y, layout, alignment.Y);
            // norm·scale + shift per channel, before a ReLU: the batch norm that made (or, backward, fed) the convolution's input.
            BackendDescriptor Normalised(BackendDescriptor norm)
            {
                BackendDescriptor scaled = Virtual(x), shifted = Virtual(x);
                ops.Add(Pointwise(cudnnPointwiseMode_t.CUDNN_POINTWISE_MUL, compute, norm, PerChannel(ScaleId, x.C), scaled));
                ops.Add(Pointwise(cudnnPointwiseMode_t.CUDNN_POINTWISE_ADD, compute, scaled, PerChannel(ShiftId, x.C), shifted));
                return shifted;
            }
            // The forward's and the filter gradient's prologue: the convolution reads a virtual input.
            var input = fusion.InputNormRelu ? Virtual(x) : xd;
            if (fusion.InputNormRelu) ops.Add(Pointwise(cudnnPointwiseMode_t.CUDNN_POINTWISE_RELU_FWD, compute, Normalised(xd), null, input));
            // The forward's epilogue: the convolution writes a virtual tensor that the bias and ReLU carry into y.
            var output = fusion.Bias || fusion.Relu ? Virtual(y) : yd;
            ops.Add(ConvolutionOperation(direction, compute, Convolution(compute, spec), input, wd, output));
            if (fusion.GradientReluSums)
            {
                // The data gradient (xd) is written as it is; the masked gradient and its product live only in the sums.
                var norm = Tensor(NormId, io, x, layout, alignment.X);
                BackendDescriptor masked = Virtual(x), centred = Virtual(x), product = Virtual(x);
                ops.Add(ReluBackward(compute, xd, Normalised(norm), masked));
                ops.Add(Sum(compute, masked, PerChannel(SumId, x.C)));
                ops.Add(Pointwise(cudnnPointwiseMode_t.CUDNN_POINTWISE_SUB, compute, norm, PerChannel(MeanId, x.C), centred));
                ops.Add(Pointwise(cudnnPointwiseMode_t.CUDNN_POINTWISE_MUL, compute, masked, centred, product));
                ops.Add(Sum(compute, product, PerChannel(ProductSumId, x.C)));
            }
            if (fusion.Bias)
            {
                var biased = fusion.Relu ? Virtual(y) : yd;
                ops.Add(Pointwise(cudnnPointwiseMode_t.CUDNN_POINTWISE_ADD, compute, output, PerChannel(BiasId, y.C), biased));
                output = biased;
            }
            if (fusion.Relu) ops.Add(Pointwise(cudnnPointwiseMode_t.CUDNN_POINTWISE_RELU_FWD, compute, output, null, yd));
            if (fusion.Statistics) ops.Add(Statistics(compute, yd, PerChannel(SumId, y.C), PerChannel(SquareSumId, y.C)));
            Build(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ops));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public ConvolutionDirection Direction { get; }
    public ConvolutionFusion Fusion { get; }

    /// <summary>
    /// Runs <paramref name="plan"/> on device pointers: x, w, y as the graph names them (for the backward data pass x is dx
    /// and y is dy; for the backward filter pass w is dw), and the per-channel tensors its fusion reads or writes.
    /// </summary>
    public void Execute(ExecutionPlan plan, in GraphOperands operands, ulong workspace)
    {
        long* ids = stackalloc long[11];
        ulong* pointers = stackalloc ulong[11];
        int count = 0;
        void Add(long id, ulong pointer)
        {
            ids[count] = id;
            pointers[count++] = pointer;
        }
        Add(XId, operands.X);
        Add(WId, operands.W);
        Add(YId, operands.Y);
        if (Fusion.InputNormRelu || Fusion.GradientReluSums)
        {
            Add(ScaleId, operands.Scale);
            Add(ShiftId, operands.Shift);
        }
        if (Fusion.GradientReluSums)
        {
            Add(NormId, operands.Norm);
            Add(MeanId, operands.Mean);
            Add(SumId, operands.Sum);
            Add(ProductSumId, operands.ProductSum);
        }
        if (Fusion.Bias) Add(BiasId, operands.Bias);
        if (Fusion.Statistics)
        {
            Add(SumId, operands.Sum);
            Add(SquareSumId, operands.SquareSum);
        }
        using var pack = BackendDescriptor.Create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR)
            .Set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, count, ids)
            .Set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, count, pointers)
            .Set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace)
            .Finish();
        Check.Cudnn(CudnnGraph.cudnnBackendExecute(Handle, plan.Descriptor.Handle, pack.Handle), $"cudnnBackendExecute({Direction}{(Fusion.IsNone ? "" : " " + Fusion)})");
    }

    /// <summary>The per-channel sum of x into the [1, C, 1, 1] tensor <paramref name="sum"/>.</summary>
    private BackendDescriptor Sum(cudnnDataType_t compute, BackendDescriptor x, BackendDescriptor sum)
    {
        var reduction = Own(BackendDescriptor.Create(CUDNN_BACKEND_REDUCTION_DESCRIPTOR))
            .SetEnum(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, (int)cudnnReduceTensorOp_t.CUDNN_REDUCE_TENSOR_ADD)
            .SetEnum(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, (int)compute)
            .Finish();
        return Own(BackendDescriptor.Create(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR))
            .Set(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x)
            .Set(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, sum)
            .Set(CUDNN_ATTR_OPERATION_REDUCTION_DESC, reduction)
            .Finish();
    }

    private BackendDescriptor Statistics(cudnnDataType_t compute, BackendDescriptor y, BackendDescriptor sum, BackendDescriptor squares) =>
        Own(BackendDescriptor.Create(CUDNN_BACKEND_OPERATION_GEN_STATS_DESCRIPTOR))
            .SetEnum(CUDNN_ATTR_OPERATION_GENSTATS_MODE, CUDNN_TYPE_GENSTATS_MODE, (int)cudnnGenStatsMode_t.CUDNN_GENSTATS_SUM_SQSUM)
            .SetEnum(CUDNN_ATTR_OPERATION_GENSTATS_MATH_PREC, CUDNN_TYPE_DATA_TYPE, (int)compute)
            .Set(CUDNN_ATTR_OPERATION_GENSTATS_XDESC, y)
            .Set(CUDNN_ATTR_OPERATION_GENSTATS_SUMDESC, sum)
            .Set(CUDNN_ATTR_OPERATION_GENSTATS_SQSUMDESC, squares)
            .Finish();
}

/// <summary>An engine of cuDNN's graph API and its knob settings: all it takes to rebuild the same configuration.</summary>
public sealed record EngineChoice(long GlobalIndex, (int Type, long Value)[] Knobs)
{
    /// <summary>"index" or "index:type=value,type=value".</summary>
    public override string ToString() =>
        Knobs.Length == 0 ? $"{GlobalIndex}" : $"{GlobalIndex}:{string.Join(',', Knobs.Select(k => $"{k.Type}={k.Value}"))}";

    public static bool TryParse(string text, out EngineChoice? choice)
    {
        choice = null;
        var parts = text.Split(':', 2);
        if (!long.TryParse(parts[0], out long index) || index < 0) return false;
        var knobs = new List<(int, long)>();
        if (parts.Length == 2)
            foreach (var pair in parts[1].Split(','))
            {
                var kv = pair.Split('=');
                if (kv.Length != 2 || !int.TryParse(kv[0], out int type) || !long.TryParse(kv[1], out long value)) return false;
                knobs.Add((type, value));
            }
        choice = new EngineChoice(index, [.. knobs]);
        return true;
    }

    public bool Equals(EngineChoice? other) => other is not null && GlobalIndex == other.GlobalIndex && Knobs.AsSpan().SequenceEqual(other.Knobs);
    public override int GetHashCode() => HashCode.Combine(GlobalIndex, Knobs.Length);
}

/// <summary>An engine configuration proposed by the heuristics, with its numerical notes (tensor cores, FFT, non-determinism, ...).</summary>
internal sealed record EngineCandidate(BackendDescriptor Config, EngineChoice Choice, cudnnBackendNumericalNote_t[] Notes)
{
    /// <summary>The notes in short words, e.g. "tensor-core,nondeterministic"; empty for none.</summary>
    public string NoteNames => string.Join(',', Notes.Select(n => n.ToString()["CUDNN_NUMERICAL_NOTE_".Length..].ToLowerInvariant().Replace('_', '-')));
}

/// <summary>A finalized execution plan and the workspace it needs.</summary>
internal sealed class ExecutionPlan(BackendDescriptor descriptor, long workspaceBytes) : IDisposable
{
    public BackendDescriptor Descriptor { get; } = descriptor;
    public long WorkspaceBytes { get; } = workspaceBytes;
    public void Dispose() => Descriptor.Dispose();
}
