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
internal sealed unsafe class ConvolutionGraph : OperationGraph
{
    // The tensors' unique ids in the graph and in every variant pack.
    private const long XId = 'x', WId = 'w', YId = 'y';

    public ConvolutionGraph(nint cudnnHandle, ConvolutionDirection direction, DType dtype, Shape x, Shape w, Shape y,
        Conv2dSpec spec, TensorLayout layout, (int X, int W, int Y) alignment) : base(cudnnHandle)
    {
        Direction = direction;
        try
        {
            var type = dtype == DType.Float32 ? cudnnDataType_t.CUDNN_DATA_FLOAT : cudnnDataType_t.CUDNN_DATA_DOUBLE;
            var xd = Tensor(XId, type, x, layout, alignment.X);
            var wd = Tensor(WId, type, w, layout, alignment.W);
            var yd = Tensor(YId, type, y, layout, alignment.Y);
            var conv = Convolution(type, spec);
            Build(ConvolutionOperation(direction, type, conv, xd, wd, yd));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public ConvolutionDirection Direction { get; }

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
        Check.Cudnn(CudnnGraph.cudnnBackendExecute(Handle, plan.Descriptor.Handle, pack.Handle), $"cudnnBackendExecute({Direction})");
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
