using BrainSeg.Engine;

namespace BrainSeg.Cuda;

/// <summary>
/// Asks the device's cuDNN whether its runtime fusion can take the batch norm and ReLU that surround each hidden
/// convolution of the networks: for each fused pattern and input type, the engines the heuristics propose and how
/// many of them build an execution plan. Nothing is run. The backend uses every pattern but the statistics wherever it
/// plans and times faster than the separate passes (CudaBackend.Fusion.cs): a pattern with no plan in float here means
/// the separate passes on this device. The statistics as the forward's epilogue is asked only to know whether it could be
/// built too.
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
        ConvolutionGraph graph;
        try
        {
            graph = new ConvolutionGraph(handle, direction, type, x, w, y, Conv2dSpec.Valid, TensorLayout.Nhwc, (16, 16, 16), fusion, 16);
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
        _ => ("data gradient → BN backward sums (training)", ConvolutionDirection.BackwardData, new(GradientReluSums: true)),
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
}
