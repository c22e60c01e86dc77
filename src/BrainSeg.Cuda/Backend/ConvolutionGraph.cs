using BrainSeg.Engine;
using static BrainSeg.Cuda.cudnnBackendAttributeName_t;
using static BrainSeg.Cuda.cudnnBackendAttributeType_t;
using static BrainSeg.Cuda.cudnnBackendDescriptorType_t;

namespace BrainSeg.Cuda;

/// <summary>Which of a convolution's three passes.</summary>
public enum ConvolutionDirection { Forward, BackwardData, BackwardFilter }

/// <summary>
/// One pass of one 2-D convolution as a cuDNN operation graph (graph API): the x, w and y tensors with their
/// dimensions, strides and alignment, the convolution, the one operation and the graph over it. Engines are
/// listed by cuDNN's heuristics, or rebuilt from a remembered (engine, knobs) choice, and turned into execution
/// plans; <see cref="Execute"/> runs a plan on device pointers. The stride of every tensor is given, so the same
/// graph describes NCHW or channels-last data.
/// </summary>
internal sealed unsafe class ConvolutionGraph : IDisposable
{
    // The tensors' unique ids in the graph and in every variant pack.
    private const long XId = 'x', WId = 'w', YId = 'y';
    private const int MaxKnobs = 64;

    private readonly List<BackendDescriptor> _owned = [];
    private readonly nint _handle;

    public ConvolutionGraph(nint cudnnHandle, ConvolutionDirection direction, DType dtype, Shape x, Shape w, Shape y,
        Conv2dSpec spec, TensorLayout layout, (int X, int W, int Y) alignment)
    {
        _handle = cudnnHandle;
        Direction = direction;
        try
        {
            var type = dtype == DType.Float32 ? cudnnDataType_t.CUDNN_DATA_FLOAT : cudnnDataType_t.CUDNN_DATA_DOUBLE;
            var xd = Tensor(XId, type, x, layout, alignment.X);
            var wd = Tensor(WId, type, w, layout, alignment.W);
            var yd = Tensor(YId, type, y, layout, alignment.Y);
            var conv = Own(BackendDescriptor.Create(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR))
                .SetEnum(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, (int)type)
                .SetEnum(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, (int)cudnnConvolutionMode_t.CUDNN_CROSS_CORRELATION)
                .Set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, 2)
                .Set(CUDNN_ATTR_CONVOLUTION_DILATIONS, spec.Dilation, spec.Dilation)
                .Set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, 1, 1)
                .Set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, spec.Padding, spec.Padding)
                .Set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, spec.Padding, spec.Padding)
                .Finish();
            var op = Operation(direction, type, conv, xd, wd, yd);
            Graph = Own(BackendDescriptor.Create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR))
                .SetHandle(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, cudnnHandle)
                .Set(CUDNN_ATTR_OPERATIONGRAPH_OPS, op)
                .Finish();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public ConvolutionDirection Direction { get; }
    private BackendDescriptor Graph { get; } = null!;

    private BackendDescriptor Own(BackendDescriptor d)
    {
        _owned.Add(d);
        return d;
    }

    private BackendDescriptor Tensor(long id, cudnnDataType_t type, Shape shape, TensorLayout layout, int alignment)
    {
        long n = shape.N, c = shape.C, h = shape.H, w = shape.W;
        // Dimensions are always (N, C, H, W); the layout lives in the strides alone.
        ReadOnlySpan<long> strides = layout == TensorLayout.Nchw ? [c * h * w, h * w, w, 1] : [h * w * c, 1, w * c, c];
        return Own(BackendDescriptor.Create(CUDNN_BACKEND_TENSOR_DESCRIPTOR))
            .SetEnum(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, (int)type)
            .Set(CUDNN_ATTR_TENSOR_DIMENSIONS, n, c, h, w)
            .Set(CUDNN_ATTR_TENSOR_STRIDES, strides)
            .Set(CUDNN_ATTR_TENSOR_UNIQUE_ID, id)
            .Set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, alignment)
            .Finish();
    }

    private BackendDescriptor Operation(ConvolutionDirection direction, cudnnDataType_t type, BackendDescriptor conv,
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
            plan.SetHandle(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, _handle).Set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, config).Finish();
            return new ExecutionPlan(plan, plan.GetInt64(CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE));
        }
        catch
        {
            plan.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="plan"/> on device pointers: x, w, y as the graph names them (for the backward data pass x is dx
    /// and y is dy; for the backward filter pass w is dw).
    /// </summary>
    public void Execute(ExecutionPlan plan, ulong x, ulong w, ulong y, ulong workspace)
    {
        long* ids = stackalloc long[] { XId, WId, YId };
        ulong* pointers = stackalloc ulong[] { x, w, y };
        using var pack = BackendDescriptor.Create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR)
            .Set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, ids)
            .Set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, pointers)
            .Set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace)
            .Finish();
        Check.Cudnn(CudnnGraph.cudnnBackendExecute(_handle, plan.Descriptor.Handle, pack.Handle), $"cudnnBackendExecute({Direction})");
    }

    public void Dispose()
    {
        for (var i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        _owned.Clear();
    }
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
