using System.Diagnostics;
using BrainSeg.Engine;

namespace BrainSeg.Seg.Benchmarking;

/// <summary>
/// Times one repetition. The CUDA clock (in the CLI, which references the CUDA runtime) records device
/// events on the backend's stream; this one is for backends whose ops finish before they return.
/// </summary>
public interface IBenchClock
{
    /// <summary>Marks the start of a repetition (after all earlier work).</summary>
    void Start();

    /// <summary>Waits for the repetition's work and returns its milliseconds.</summary>
    double StopMs();

    /// <summary>The most memory the measurement held: device pool peak on a GPU, process peak working set on the CPU.</summary>
    long PeakBytes();
}

/// <summary>Wall clock around each repetition, with a synchronisation at both ends (a no-op on the CPU).</summary>
public sealed class StopwatchClock(IBackend backend) : IBenchClock
{
    private long _started;

    public void Start()
    {
        backend.Synchronize();
        _started = Stopwatch.GetTimestamp();
    }

    public double StopMs()
    {
        backend.Synchronize();
        return Stopwatch.GetElapsedTime(_started).TotalMilliseconds;
    }

    public long PeakBytes()
    {
        using var self = Process.GetCurrentProcess();
        return self.PeakWorkingSet64;
    }
}
