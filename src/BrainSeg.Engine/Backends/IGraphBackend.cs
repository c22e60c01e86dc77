using BrainSeg.Engine.Autograd;

namespace BrainSeg.Engine;

/// <summary>
/// A backend that can record a whole step once and replay it with one launch (CUDA graphs), so a step of a hundred
/// small kernels stops paying the host's per-launch cost. Backends without it (the CPU) run the step as it is.
/// </summary>
public interface IGraphBackend
{
    /// <summary>
    /// Records the work <paramref name="step"/> queues, without running it, into a graph replayed by
    /// <see cref="IStepGraph.Replay"/>. The step must have run eagerly at least once (so its lazily made state
    /// exists and the memory pool holds the blocks it needs). Its inputs and outputs are tensors made outside it,
    /// at fixed device addresses: upload into and read from them between replays; what the step itself makes must
    /// be disposed inside it. Host-side values the step computes (learning rates, shapes) are frozen at capture.
    /// Dropout draws come from <paramref name="random"/>: the offsets reserved during capture serve the first
    /// replay, and every later replay draws fresh masks and advances <paramref name="random"/> on the host by the
    /// step's consumption, exactly as further eager calls would (so a checkpoint's saved offset is the same).
    /// Throws <see cref="InvalidOperationException"/> (a defect) when the step waits for the device, copies from
    /// pageable host memory, allocates device memory, searches for an algorithm, or leaves a block it rented in use.
    /// </summary>
    IStepGraph Capture(Action step, RandomStream random);
}

/// <summary>A captured step (<see cref="IGraphBackend.Capture"/>); disposing it gives the memory it holds back to the pool.</summary>
public interface IStepGraph : IDisposable
{
    /// <summary>Queues one run of the captured step: as an eager call of the step would run at this point.</summary>
    void Replay();

    /// <summary>The work one replay runs, as the backend counted it while capturing (launches, bytes, FLOPs).</summary>
    WorkCounts CapturedWork { get; }
}
