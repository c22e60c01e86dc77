using BrainSeg.Engine;
using static BrainSeg.Cuda.cudnnBackendAttributeName_t;
using static BrainSeg.Cuda.cudnnBackendAttributeType_t;
using static BrainSeg.Cuda.cudnnBackendDescriptorType_t;

namespace BrainSeg.Cuda;

/// <summary>
/// Asks the device's cuDNN whether its runtime fusion can take the batch norm and ReLU that surround each hidden
/// convolution of the networks: for each fused pattern and input type, the engines the heuristics propose and how
/// many of them build an execution plan. Nothing is run. The answer decides whether fused passes are worth
/// building: a pattern with no plan in float32 cannot replace the separate batch-norm passes at fp32/TF32.
/// </summary>
public static class FusionProbe
{
    /// <summary>One pattern in one input type: engines proposed and planned (with their numerical notes), or why the graph itself was refused.</summary>
    public sealed record Row(string Pattern, string Inputs, int Proposed, int Planned, string PlannedEngines, string? Refusal)
    {
        public override string ToString() => $"{Pattern,-44} {Inputs,-6} " +
            (Refusal is not null ? $"graph refused: {Refusal}" : $"{Planned} of {Proposed} engines plan" + (Planned > 0 ? $": {PlannedEngines}" : ""));
    }

    /// <summary>The patterns on the FCN's 32→32 3×3 layer over <paramref name="batch"/> channels-last planes of <paramref name="side"/>².</summary>
    public static IReadOnlyList<Row> Run(CudaBackend backend, int batch = 300, int side = 49)
    {
        ArgumentNullException.ThrowIfNull(backend);
        backend.Context.MakeCurrent();
        var rows = new List<Row>();
        foreach (var (inputs, type) in new[] { ("float", cudnnDataType_t.CUDNN_DATA_FLOAT), ("half", cudnnDataType_t.CUDNN_DATA_HALF) })
            foreach (var pattern in Enum.GetValues<FusedPattern>())
                rows.Add(Probe(backend.Context.CudnnHandle, pattern, inputs, type, batch, side));
        return rows;
    }

    private static Row Probe(nint handle, FusedPattern pattern, string inputs, cudnnDataType_t type, int batch, int side)
    {
        var name = FusedGraph.Describe(pattern);
        FusedGraph graph;
        try
        {
            graph = new FusedGraph(handle, pattern, type, batch, side);
        }
        catch (CudaException e)
        {
            return new Row(name, inputs, 0, 0, "", e.Message);
        }
        using (graph)
        {
            // A heuristics mode that has nothing for a fused graph may refuse it: that mode proposes no engine.
            var candidates = graph.Proposed(16, skipRefused: true);
            var planned = new List<string>();
            foreach (var c in candidates)
            {
                try
                {
                    using var plan = graph.Plan(c.Config);
                    planned.Add(c.NoteNames.Length == 0 ? $"{c.Choice.GlobalIndex}" : $"{c.Choice.GlobalIndex}[{c.NoteNames}]");
                }
                catch (CudaException)
                {
                    // Proposed but not buildable on this device: counted by the difference.
                }
            }
            return new Row(name, inputs, candidates.Count, planned.Count, string.Join(' ', planned), null);
        }
    }
}

/// <summary>What a fused graph would take over from the separate batch-norm passes.</summary>
internal enum FusedPattern
{
    /// <summary>Inference: the folded batch norm's bias and the ReLU as the convolution's epilogue.</summary>
    ConvBiasRelu,

    /// <summary>Training forward: the batch-norm statistics of the convolution's output, made as it is written.</summary>
    ConvStatistics,

    /// <summary>Training forward: the previous layer's batch norm (scale, shift) and ReLU applied as this convolution reads its input, and this output's statistics.</summary>
    NormReluConvStatistics,

    /// <summary>Training backward: the filter gradient over the normalised, rectified input recomputed as it is read.</summary>
    NormReluFilterGradient,
}

/// <summary>The operation graph of one <see cref="FusedPattern"/> on [N,32,side,side] → [N,32,side−2,side−2], channels-last.</summary>
internal sealed unsafe class FusedGraph : OperationGraph
{
    private const int Channels = 32, Kernel = 3;

    public FusedGraph(nint handle, FusedPattern pattern, cudnnDataType_t io, int batch, int side) : base(handle)
    {
        try
        {
            const cudnnDataType_t f32 = cudnnDataType_t.CUDNN_DATA_FLOAT;
            var layout = TensorLayout.Nhwc;
            Shape input = new(batch, Channels, side, side), output = new(batch, Channels, side - Kernel + 1, side - Kernel + 1);
            Shape filter = new(Channels, Channels, Kernel, Kernel), perChannel = new(1, Channels, 1, 1);
            long id = 0;
            BackendDescriptor Real(Shape s, cudnnDataType_t t) => Tensor(++id, t, s, layout, 16);
            BackendDescriptor Virtual(Shape s) => Tensor(++id, f32, s, layout, 16, isVirtual: true);
            var conv = Convolution(f32, Conv2dSpec.Valid);
            var x = Real(input, io);
            switch (pattern)
            {
                case FusedPattern.ConvBiasRelu:
                {
                    BackendDescriptor w = Real(filter, io), sum = Virtual(output), biased = Virtual(output), y = Real(output, io);
                    Build(ConvolutionOperation(ConvolutionDirection.Forward, f32, conv, x, w, sum),
                        Pointwise(cudnnPointwiseMode_t.CUDNN_POINTWISE_ADD, sum, Real(perChannel, f32), biased),
                        Pointwise(cudnnPointwiseMode_t.CUDNN_POINTWISE_RELU_FWD, biased, null, y));
                    break;
                }
                case FusedPattern.ConvStatistics:
                {
                    BackendDescriptor w = Real(filter, io), y = Real(output, io);
                    Build(ConvolutionOperation(ConvolutionDirection.Forward, f32, conv, x, w, y),
                        Statistics(y, Real(perChannel, f32), Real(perChannel, f32)));
                    break;
                }
                case FusedPattern.NormReluConvStatistics:
                {
                    var (a, b, c, r) = NormRelu(x, Real(perChannel, f32), Real(perChannel, f32), Virtual(input), Virtual(input), Virtual(input));
                    BackendDescriptor w = Real(filter, io), y = Real(output, io);
                    Build(a, b, c, ConvolutionOperation(ConvolutionDirection.Forward, f32, conv, r, w, y),
                        Statistics(y, Real(perChannel, f32), Real(perChannel, f32)));
                    break;
                }
                default:
                {
                    var (a, b, c, r) = NormRelu(x, Real(perChannel, f32), Real(perChannel, f32), Virtual(input), Virtual(input), Virtual(input));
                    BackendDescriptor dy = Real(output, io), dw = Real(filter, io);
                    Build(a, b, c, ConvolutionOperation(ConvolutionDirection.BackwardFilter, f32, conv, r, dw, dy));
                    break;
                }
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static string Describe(FusedPattern pattern) => pattern switch
    {
        FusedPattern.ConvBiasRelu => "conv → +bias → ReLU (inference)",
        FusedPattern.ConvStatistics => "conv → BN statistics",
        FusedPattern.NormReluConvStatistics => "scale, shift, ReLU → conv → BN statistics",
        _ => "scale, shift, ReLU → filter gradient",
    };

    /// <summary>x·scale + shift, then ReLU, into three virtual tensors: the three operations and the rectified tensor.</summary>
    private (BackendDescriptor, BackendDescriptor, BackendDescriptor, BackendDescriptor) NormRelu(BackendDescriptor x,
        BackendDescriptor scale, BackendDescriptor shift, BackendDescriptor scaled, BackendDescriptor shifted, BackendDescriptor rectified) =>
        (Pointwise(cudnnPointwiseMode_t.CUDNN_POINTWISE_MUL, x, scale, scaled),
         Pointwise(cudnnPointwiseMode_t.CUDNN_POINTWISE_ADD, scaled, shift, shifted),
         Pointwise(cudnnPointwiseMode_t.CUDNN_POINTWISE_RELU_FWD, shifted, null, rectified),
         rectified);

    private BackendDescriptor Pointwise(cudnnPointwiseMode_t mode, BackendDescriptor x, BackendDescriptor? b, BackendDescriptor y)
    {
        var pw = Own(BackendDescriptor.Create(CUDNN_BACKEND_POINTWISE_DESCRIPTOR))
            .SetEnum(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, (int)mode)
            .SetEnum(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, (int)cudnnDataType_t.CUDNN_DATA_FLOAT)
            .Finish();
        var op = Own(BackendDescriptor.Create(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR))
            .Set(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw)
            .Set(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
        if (b is not null) op.Set(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b);
        return op.Set(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y).Finish();
    }

    private BackendDescriptor Statistics(BackendDescriptor y, BackendDescriptor sum, BackendDescriptor squares) =>
        Own(BackendDescriptor.Create(CUDNN_BACKEND_OPERATION_GEN_STATS_DESCRIPTOR))
            .SetEnum(CUDNN_ATTR_OPERATION_GENSTATS_MODE, CUDNN_TYPE_GENSTATS_MODE, (int)cudnnGenStatsMode_t.CUDNN_GENSTATS_SUM_SQSUM)
            .SetEnum(CUDNN_ATTR_OPERATION_GENSTATS_MATH_PREC, CUDNN_TYPE_DATA_TYPE, (int)cudnnDataType_t.CUDNN_DATA_FLOAT)
            .Set(CUDNN_ATTR_OPERATION_GENSTATS_XDESC, y)
            .Set(CUDNN_ATTR_OPERATION_GENSTATS_SUMDESC, sum)
            .Set(CUDNN_ATTR_OPERATION_GENSTATS_SQSUMDESC, squares)
            .Finish();
}
