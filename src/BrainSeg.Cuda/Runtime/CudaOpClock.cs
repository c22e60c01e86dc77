using BrainSeg.Engine;

namespace BrainSeg.Cuda;

/// <summary>
/// Per-op device time for <see cref="ProfilingBackend"/>: an event recorded on the context's stream before
/// and after each op, read when <see cref="Drain"/> waits for the last one. Events are reused across drains,
/// so a profiled step creates none after its first repetition.
/// </summary>
public sealed class CudaOpClock(CudaContext context) : IOpClock, IDisposable
{
    private readonly List<CudaEvent> _events = [];
    private readonly List<(string Op, int Start, int End)> _spans = [];
    private int _used;

    public object Begin() => Record();

    public void End(object started, string op) => _spans.Add((op, (int)started, Record()));

    private int Record()
    {
        context.MakeCurrent();
        if (_used == _events.Count) _events.Add(CudaEvent.Create());
        _events[_used].Record(context.Stream);
        return _used++;
    }

    public IReadOnlyList<(string Op, double Ms)> Drain()
    {
        context.MakeCurrent();
        var result = _spans.Select(s => (s.Op, (double)_events[s.End].ElapsedMs(_events[s.Start]))).ToList();
        _spans.Clear();
        _used = 0;
        return result;
    }

    public void Dispose()
    {
        context.MakeCurrent();
        foreach (var e in _events) e.Dispose();
        _events.Clear();
    }
}
