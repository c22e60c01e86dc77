using BrainSeg.Engine;

namespace BrainSeg.Seg.Training;

/// <summary>
/// Iterations recorded once and replayed: on a backend that can record a step (CUDA graphs), the first iterations on
/// a set of input shapes run eagerly, their updates are then recorded, and every later iteration only stages its
/// patches and replays them with one launch. The updates read and write the same tensors every time (the staged
/// inputs, the parameters, the optimiser state, the loss values), and dropout draws fresh masks at each replay
/// exactly as an eager iteration would, so replayed and eager training give the same parameters bit for bit.
/// </summary>
public sealed partial class Trainer
{
    // Eager iterations before recording: the first makes the trainer's lazily created state (loss values, targets,
    // optimiser buffers), which may take blocks its own temporaries freed; the second then rents exactly what a replay will.
    private const int EagerIterationsBeforeRecording = 2;

    private IStepGraph? _recorded;
    private int _eagerIterations;

    /// <summary>
    /// Whether iterations are recorded and replayed where the backend can (true by default); false runs every
    /// iteration eagerly, the reference. A backend that cannot record (the CPU) always runs eagerly.
    /// </summary>
    public bool ReplaySteps { get; set; } = true;

    /// <summary>Why the device refused to record the iterations, which then run eagerly; null while nothing was refused.</summary>
    public string? ReplayRefused { get; private set; }

    /// <summary>Whether the iterations are being replayed from a recording now.</summary>
    public bool IsReplaying => _recorded is not null;

    /// <summary>The iteration's updates: replayed when recorded, else queued eagerly and then recorded for the next iteration.</summary>
    private void RunUpdates()
    {
        if (_recorded is not null && ReplaySteps)
        {
            _recorded.Replay();
            return;
        }
        QueueUpdates();
        if (!ReplaySteps || ReplayRefused is not null || _backend is not IGraphBackend recorder
            || ++_eagerIterations < EagerIterationsBeforeRecording) return;
        try
        {
            _recorded = recorder.Capture(QueueUpdates, Random);
        }
        catch (Exception e) when (e is not InvalidOperationException and not ArgumentException and not OutOfMemoryException)
        {
            // The device or driver would not record (a library call that cannot be captured): train eagerly, say why.
            ReplayRefused = e.Message;
        }
    }

    /// <summary>Forgets the recording (the staged inputs changed shape, so their tensors moved).</summary>
    private void DropRecording()
    {
        _recorded?.Dispose();
        _recorded = null;
        _eagerIterations = 0;
    }
}
