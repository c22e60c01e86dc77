using BrainSeg.Engine;
using static BrainSeg.Cuda.cudnnBackendAttributeName_t;
using static BrainSeg.Cuda.cudnnBackendAttributeType_t;
using static BrainSeg.Cuda.cudnnBackendDescriptorType_t;

namespace BrainSeg.Cuda;

/// <summary>
/// An operation graph of cuDNN's graph API and what is asked of it: the engines its heuristics propose, a
/// remembered engine rebuilt, execution plans. Subclasses build the tensors and operations; the descriptors
/// made on the way live as long as the graph.
/// </summary>
internal abstract unsafe class OperationGraph(nint cudnnHandle) : IDisposable
{
    private const int MaxKnobs = 64;

    private readonly List<BackendDescriptor> _owned = [];

    /// <summary>The cuDNN handle the graph and its plans belong to.</summary>
    protected nint Handle { get; } = cudnnHandle;

    private BackendDescriptor Graph { get; set; } = null!;

    protected BackendDescriptor Own(BackendDescriptor d)
    {
        _owned.Add(d);
        return d;
    }

    /// <summary>Finalizes the graph over <paramref name="operations"/>.</summary>
    protected void Build(params ReadOnlySpan<BackendDescriptor> operations) =>
        Graph = Own(BackendDescriptor.Create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR))
            .SetHandle(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, Handle)
            .Set(CUDNN_ATTR_OPERATIONGRAPH_OPS, operations)
            .Finish();

    /// <summary>A 4-D tensor (N, C, H, W) whose memory order lives in its strides alone; a virtual one is never in memory (an intermediate of a fused graph).</summary>
    protected BackendDescriptor Tensor(long id, cudnnDataType_t type, Shape shape, TensorLayout layout, int alignment, bool isVirtual = false)
    {
        long n = shape.N, c = shape.C, h = shape.H, w = shape.W;
        ReadOnlySpan<long> strides = layout == TensorLayout.Nchw ? [c * h * w, h * w, w, 1] : [h * w * c, 1, w * c, c];
        var tensor = Own(BackendDescriptor.Create(CUDNN_BACKEND_TENSOR_DESCRIPTOR))
            .SetEnum(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, (int)type)
            .Set(CUDNN_ATTR_TENSOR_DIMENSIONS, n, c, h, w)
            .Set(CUDNN_ATTR_TENSOR_STRIDES, strides)
            .Set(CUDNN_ATTR_TENSOR_UNIQUE_ID, id)
            .Set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, alignment);
        if (isVirtual)
        {
            byte yes = 1;
            tensor.Set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &yes);
        }
        return tensor.Finish();
    }

    /// <summary>A stride-1 cross-correlation of <paramref name="spec"/>'s dilation and padding, computed in <paramref name="type"/>.</summary>
    protected BackendDescriptor Convolution(cudnnDataType_t type, Conv2dSpec spec) =>
        Own(BackendDescriptor.Create(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR))
            .SetEnum(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, (int)type)
            .SetEnum(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, (int)cudnnConvolutionMode_t.CUDNN_CROSS_CORRELATION)
            .Set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, 2)
            .Set(CUDNN_ATTR_CONVOLUTION_DILATIONS, spec.Dilation, spec.Dilation)
            .Set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, 1, 1)
            .Set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, spec.Padding, spec.Padding)
            .Set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, spec.Padding, spec.Padding)
            .Finish();

    /// <summary>One pass of the convolution <paramref name="conv"/> over x, w, y (dx, w, dy for the data gradient; x, dw, dy for the filter gradient), alpha 1, beta 0.</summary>
    protected BackendDescriptor ConvolutionOperation(ConvolutionDirection direction, cudnnDataType_t type, BackendDescriptor conv,
        BackendDescriptor x, BackendDescriptor w, BackendDescriptor y)
    {
        // alpha = 1, beta = 0 in the compute type: float for float data, double for double.
        bool single = type == cudnnDataType_t.CUDNN_DATA_FLOAT;
        float f1 = 1, f0 = 0;
        double d1 = 1, d0 = 0;
        var scalarType = single ? CUDNN_TYPE_FLOAT : CUDNN_TYPE_DOUBLE;
        void* one = single ? &f1 : &d1, zero = single ? &f0 : &d0;
        var (kind, alpha, beta, convAttr, xAttr, wAttr, yAttr) = direction switch
        {
            ConvolutionDirection.Forward => (CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y),
            ConvolutionDirection.BackwardData => (CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY),
            _ => (CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY),
        };
        return Own(BackendDescriptor.Create(kind))
            .Set(alpha, scalarType, 1, one)
            .Set(beta, scalarType, 1, zero)
            .Set(convAttr, conv)
            .Set(xAttr, x)
            .Set(wAttr, w)
            .Set(yAttr, y)
            .Finish();
    }

    /// <summary>y = x (mode) b, or y = mode(x) for a unary mode; b is a tensor of x's shape or [1, C, 1, 1].</summary>
    protected BackendDescriptor Pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t compute, BackendDescriptor x, BackendDescriptor? b, BackendDescriptor y)
    {
        var op = Own(BackendDescriptor.Create(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR))
            .Set(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, PointwiseMode(mode, compute))
            .Set(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
        if (b is not null) op.Set(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b);
        return op.Set(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y).Finish();
    }

    /// <summary>dx = dy where x > 0, else 0.</summary>
    protected BackendDescriptor ReluBackward(cudnnDataType_t compute, BackendDescriptor dy, BackendDescriptor x, BackendDescriptor dx) =>
        Own(BackendDescriptor.Create(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR))
            .Set(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, PointwiseMode(cudnnPointwiseMode_t.CUDNN_POINTWISE_RELU_BWD, compute))
            .Set(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x)
            .Set(CUDNN_ATTR_OPERATION_POINTWISE_DYDESC, dy)
            .Set(CUDNN_ATTR_OPERATION_POINTWISE_DXDESC, dx)
            .Finish();

    private BackendDescriptor PointwiseMode(cudnnPointwiseMode_t mode, cudnnDataType_t compute) =>
        Own(BackendDescriptor.Create(CUDNN_BACKEND_POINTWISE_DESCRIPTOR))
            .SetEnum(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, (int)mode)
            .SetEnum(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, (int)compute)
            .Finish();

    /// <summary>
    /// Every engine cuDNN proposes for the graph: the heuristics' list (mode A), then the fallback list's engines not
    /// already in it, at most <paramref name="max"/> of each. A heuristics mode that refuses the graph throws, unless
    /// <paramref name="skipRefused"/>: then it proposes nothing.
    /// </summary>
    public List<EngineCandidate> Proposed(int max, bool skipRefused = false)
    {
        var all = new List<EngineCandidate>();
        foreach (var mode in new[] { cudnnBackendHeurMode_t.CUDNN_HEUR_MODE_A, cudnnBackendHeurMode_t.CUDNN_HEUR_MODE_FALLBACK })
        {
            try
            {
                foreach (var c in Candidates(mode, max))
                    if (!all.Any(a => a.Choice.Equals(c.Choice))) all.Add(c);
            }
            catch (CudaException) when (skipRefused)
            {
            }
        }
        return all;
    }

    /// <summary>The engine configurations cuDNN's heuristics propose, best first, with what they are.</summary>
    public List<EngineCandidate> Candidates(cudnnBackendHeurMode_t mode, int max)
    {
        using var heuristics = BackendDescriptor.Create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR)
            .Set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, Graph)
            .SetEnum(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, (int)mode)
            .Finish();
        var configs = heuristics.GetDescriptors(CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, max);
        var result = new List<EngineCandidate>(configs.Length);
        foreach (var config in configs)
        {
            try
            {
                result.Add(Describe(Own(config)));
            }
            catch (CudaException)
            {
                // A configuration that cannot be read is one candidate fewer, not a failure.
            }
        }
        return result;
    }

    private static EngineCandidate Describe(BackendDescriptor config)
    {
        var engines = config.GetDescriptors(CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_BACKEND_ENGINE_DESCRIPTOR, 1);
        try
        {
            if (engines.Length == 0) throw new CudaException("an engine configuration without an engine");
            long index = engines[0].GetInt64(CUDNN_ATTR_ENGINE_GLOBAL_INDEX);
            var notes = engines[0].GetEnums(CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                (int)cudnnBackendNumericalNote_t.CUDNN_NUMERICAL_NOTE_TYPE_COUNT);
            var knobs = new List<(int, long)>();
            foreach (var choice in config.GetDescriptors(CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR, MaxKnobs))
            {
                using (choice)
                    knobs.Add((choice.GetEnums(CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1)[0], choice.GetInt64(CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE)));
            }
            return new EngineCandidate(config, new EngineChoice(index, [.. knobs]), [.. notes.Select(n => (cudnnBackendNumericalNote_t)n)]);
        }
        finally
        {
            foreach (var e in engines) e.Dispose();
        }
    }

    /// <summary>The configuration of a remembered choice: engine <c>GlobalIndex</c> of this graph with the same knob values.</summary>
    public EngineCandidate Configure(EngineChoice choice)
    {
        var engine = Own(BackendDescriptor.Create(CUDNN_BACKEND_ENGINE_DESCRIPTOR))
            .Set(CUDNN_ATTR_ENGINE_OPERATION_GRAPH, Graph)
            .Set(CUDNN_ATTR_ENGINE_GLOBAL_INDEX, choice.GlobalIndex)
            .Finish();
        var knobs = new BackendDescriptor[choice.Knobs.Length];
        for (var i = 0; i < knobs.Length; i++)
            knobs[i] = Own(BackendDescriptor.Create(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR))
                .SetEnum(CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, choice.Knobs[i].Type)
                .Set(CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, choice.Knobs[i].Value)
                .Finish();
        var config = Own(BackendDescriptor.Create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR)).Set(CUDNN_ATTR_ENGINECFG_ENGINE, engine);
        if (knobs.Length > 0) config.Set(CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, knobs);
        return Describe(config.Finish());
    }

    /// <summary>An execution plan of <paramref name="config"/>; throws when cuDNN cannot run that engine on this graph.</summary>
    public ExecutionPlan Plan(BackendDescriptor config)
    {
        var plan = BackendDescriptor.Create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
        try
        {
            plan.SetHandle(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, Handle).Set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, config).Finish();
            return new ExecutionPlan(plan, plan.GetInt64(CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE));
        }
        catch
        {
            plan.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        for (var i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        _owned.Clear();
    }
}
