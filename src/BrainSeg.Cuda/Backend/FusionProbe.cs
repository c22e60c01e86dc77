using BrainSeg.Engine;

namespace BrainSeg.Cuda;

/// <summary>
/// Asks the device's cuDNN whether its runtime fusion can take the batch norm and ReLU that surround each hidden
/// convolution of the networks: for each fused pattern and input type, the engines the heuristics propose and how
/// many of them build an execution plan. Nothing is run. The backend uses the patterns marked "training" or "inference"
/// wherever they plan and time faster than the separate passes (CudaBackend.Fusion.cs): a pattern with no plan in float
/// here means the separate passes on this device. The others (the statistics as the forward's epilogue, the batch-norm
/// backward as the prologue of the gradient passes) are asked only to know whether they could be built too.
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
        var (name, direction, fusion) = Describe(pattern);
        const int channels = 32, kernel = 3;
        Shape x = new(batch, channels, side, side), w = new(channels, channels, kernel, kernel);
        Shape y = new(batch, channels, side - kernel + 1, side - kernel + 1);
        OperationGraph graph;
        try
        {
            graph = pattern is FusedPattern.NormBackwardData or FusedPattern.NormBackwardFilter
                ? new NormBackwardPrologueGraph(handle, direction, type, x, w, y, TensorLayout.Nhwc)
                : new ConvolutionGraph(handle, direction, type, x, w, y, Conv2dSpec.Valid, TensorLayout.Nhwc, (16, 16, 16), fusion, 16);
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

    private static (string Name, ConvolutionDirection Direction, ConvolutionFusion Fusion) Describe(FusedPattern pattern) => pattern switch
    {
        FusedPattern.ConvBiasRelu => ("conv → +bias → ReLU (inference)", ConvolutionDirection.Forward, new(Bias: true, Relu: true)),
        FusedPattern.NormReluConv => ("scale, shift, ReLU → conv (training)", ConvolutionDirection.Forward, new(InputNormRelu: true)),
        FusedPattern.NormReluFilterGradient => ("scale, shift, ReLU → filter gradient", ConvolutionDirection.BackwardFilter, new(InputNormRelu: true)),
        FusedPattern.ConvStatistics => ("conv → BN statistics (not used)", ConvolutionDirection.Forward, new(Statistics: true)),
        FusedPattern.GradientReluSums => ("data gradient → BN backward sums (training)", ConvolutionDirection.BackwardData, new(GradientReluSums: true)),
        FusedPattern.NormBackwardData => ("BN backward → data gradient (not used)", ConvolutionDirection.BackwardData, default),
        _ => ("BN backward → filter gradient (not used)", ConvolutionDirection.BackwardFilter, default),
    };
}

/// <summary>What a fused graph takes over from the separate passes around a hidden convolution.</summary>
internal enum FusedPattern
{
    /// <summary>Inference: the folded batch norm's bias and the ReLU as the convolution's epilogue.</summary>
    ConvBiasRelu,

    /// <summary>Training forward: the previous layer's batch norm (scale, shift) and ReLU applied as this convolution reads its input.</summary>
    NormReluConv,

    /// <summary>Training backward: the filter gradient over the normalised, rectified input recomputed as it is read.</summary>
    NormReluFilterGradient,

    /// <summary>The batch-norm statistics of the convolution's output made as it is written (sums in float lose a variance that is small against its mean: not used).</summary>
    ConvStatistics,

    /// <summary>Training backward: the data gradient also summed, through the previous batch norm's ReLU, as that batch norm's backward needs.</summary>
    GradientReluSums,

    /// <summary>Training backward: the batch norm's backward pass applied as the data gradient of the convolution before it reads its dy (not used).</summary>
    NormBackwardData,

    /// <summary>The same as the filter gradient of that convolution reads its dy (not used).</summary>
    NormBackwardFilter,
}

/// <summary>
/// A question for cuDNN, not a pass the backend runs: the data pass of a batch norm + ReLU's backward as the prologue
/// of the gradient passes of the convolution before it. Their dy = a·g + b + c·x per channel, with g = the gradient at
/// the batch norm's output where x·scale + shift > 0 (else 0), and x the batch norm's input: two full tensors and five
/// per-channel ones. Where cuDNN plans it for both passes, the batch-norm backward would need no pass of its own (with
/// the sums from the data gradient's epilogue): the last of the bytes between the step and half of them.
/// </summary>
internal sealed class NormBackwardPrologueGraph : OperationGraph
{
    public NormBackwardPrologueGraph(nint cudnnHandle, ConvolutionDirection direction, cudnnDataType_t io, Shape x, Shape w, Shape y,
        TensorLayout layout) : base(cudnnHandle)
    {
        try
        {
            var compute = io == cudnnDataType_t.CUDNN_DATA_DOUBLE ? io : cudnnDataType_t.CUDNN_DATA_FLOAT;
            long id = 0;
            BackendDescriptor Real(Shape s) => Tensor(++id, io, s, layout, 16);
            BackendDescriptor Virtual() => Tensor(++id, compute, y, layout, 16, isVirtual: true);
            BackendDescriptor PerChannel() => Tensor(++id, compute, new Shape(1, y.C, 1, 1), layout, 16);
            var ops = new List<BackendDescriptor>();
            BackendDescriptor Op(cudnnPointwiseMode_t mode, BackendDescriptor a, BackendDescriptor b)
            {
                var result = Virtual();
                ops.Add(Pointwise(mode, compute, a, b, result));
                return result;
            }
            const cudnnPointwiseMode_t add = cudnnPointwiseMode_t.CUDNN_POINTWISE_ADD, mul = cudnnPointwiseMode_t.CUDNN_POINTWISE_MUL;
            BackendDescriptor gradient = Real(y), norm = Real(y), masked = Virtual();
            ops.Add(ReluBackward(compute, gradient, Op(add, Op(mul, norm, PerChannel()), PerChannel()), masked));
            var dy = Op(add, Op(add, Op(mul, masked, PerChannel()), PerChannel()), Op(mul, norm, PerChannel()));
            ops.Add(ConvolutionOperation(direction, compute, Convolution(compute, Conv2dSpec.Valid), Real(x), Real(w), dy));
            Build(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ops));
        }
        catch
        {
            Dispose();
            throw;
        }
    }
}
