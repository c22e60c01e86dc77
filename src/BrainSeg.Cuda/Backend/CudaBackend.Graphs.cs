using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;

namespace BrainSeg.Cuda;

// Whole-step CUDA graphs (IGraphBackend): a step captured once from the stream and replayed with one launch.
public sealed unsafe partial class CudaBackend : IGraphBackend
{
    /// <summary>The dropout kernels' device offset base while no graph is captured: a word that stays 0.</summary>
    private DeviceBuffer _eagerOffsetWord;

    /// <summary>The device word dropout kernels add to their host offset: the eager word, or that of the graph being captured.</summary>
    private ulong _offsetWord;

    private void CreateOffsetWord()
    {
        _eagerOffsetWord = _ctx.Pool.Rent(sizeof(ulong));
        _ctx.Memset32(_eagerOffsetWord.Pointer, 0, 2);
        _offsetWord = _eagerOffsetWord.Pointer;
    }

    public IStepGraph Capture(Action step, RandomStream random)
    {
        Enter(nameof(Capture));
        ArgumentNullException.ThrowIfNull(step);
        ArgumentNullException.ThrowIfNull(random);
        if (_ctx.IsCapturing) throw new InvalidOperationException("Capture: a step is already being captured; captures do not nest.");
        Kernel("elementwise", "advance_offset", DType.Float64);   // loaded now: no module loads inside a capture
        var word = _ctx.Pool.Rent(sizeof(ulong), fresh: true);   // the free blocks are the step's
        _ctx.Memset32(word.Pointer, 0, 2);
        ulong start = random.Offset;
        List<(ulong, long)>? held = null;
        CudaGraph graph;
        WorkCounts work;
        _ctx.Pool.BeginCapture();
        _ctx.Counters.BeginRecording();
        _ctx.IsCapturing = true;
        _offsetWord = word.Pointer;
        try
        {
            graph = CudaGraph.Capture(_ctx, () =>
            {
                step();
                Enter(nameof(Capture));
                // The last node: the next replay draws where an eager call after this one would.
                AdvanceOffset(word.Pointer, random.Offset - start);
                held = _ctx.Pool.EndCapture();
            });
        }
        catch
        {
            _ctx.Pool.AbandonCapture();
            if (held is not null) _ctx.Pool.ReleaseHeld(held);
            _ctx.Pool.Return(word);
            random.Offset = start;   // nothing the step drew for ever ran
            throw;
        }
        finally
        {
            _ctx.IsCapturing = false;
            _offsetWord = _eagerOffsetWord.Pointer;
            work = _ctx.Counters.EndRecording();
        }
        return new StepGraph(this, graph, word, held!, work, random, start, random.Offset - start);
    }

    /// <summary>*word += by on the stream (one thread).</summary>
    private void AdvanceOffset(ulong word, ulong by)
    {
        void** args = stackalloc void*[] { &word, &by };
        Kernel("elementwise", "advance_offset", DType.Float64).Launch(1, 1, 1, 1, 1, 1, 0, _ctx.Stream, args);
    }

    /// <summary>
    /// A captured step. Its offset word holds, when a replay starts, how far past the capture's first offset that
    /// replay draws: 0 for the first (the offsets reserved while capturing), and the captured last node adds the
    /// step's consumption after each. The host mirrors the word, so draws made outside the graph between replays
    /// (another graph or eager work on the same stream) cost one small launch that moves the word on, not a wait.
    /// </summary>
    private sealed class StepGraph(CudaBackend backend, CudaGraph graph, DeviceBuffer word, List<(ulong, long)> held,
        WorkCounts work, RandomStream random, ulong start, ulong consumption) : IStepGraph
    {
        private ulong _word;       // the device word's value when the next replay starts
        private long _replays;
        private bool _disposed;

        public WorkCounts CapturedWork { get; } = work;

        public void Replay()
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            backend.Enter(nameof(Replay));
            if (_replays > 0)
            {
                ulong wanted = random.Offset - start;   // unsigned: wraps consistently with the kernel's addition
                if (wanted != _word) backend.AdvanceOffset(word.Pointer, wanted - _word);
                _word = wanted;
                random.Offset += consumption;
            }
            backend.Counters.Replayed(nameof(Replay), CapturedWork);
            graph.Launch();
            _word += consumption;
            _replays++;
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            if (backend.IsDisposed) return;   // the context freed everything already
            backend._ctx.MakeCurrent();
            graph.Dispose();
            // Work queued after the last replay is ordered behind it on the one stream, so the blocks may be reused.
            backend._ctx.Pool.ReleaseHeld(held);
            backend._ctx.Pool.Return(word);
        }
    }
}
