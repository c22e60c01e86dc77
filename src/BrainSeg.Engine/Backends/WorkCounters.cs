namespace BrainSeg.Engine;

/// <summary>
/// Work a backend queued, as counted by the backend itself, so the figures are the same on a device and on
/// any stand-in for its libraries. Launches are kernels, library calls (cuDNN, cuBLAS) and memsets; copies
/// are host↔device and device↔device transfers; a host sync is any wait of the host for the device;
/// device allocations are calls to the driver's allocator (pool misses). Bytes and FLOPs are modelled
/// from the shapes of each op: every pass of a kernel over a tensor counts its bytes read or written. A replay of a
/// captured step (<see cref="IStepGraph"/>) is one launch, also counted in <c>GraphLaunches</c>, and the modelled
/// bytes and FLOPs of the work it runs.
/// </summary>
public readonly record struct WorkCounts(
    long Launches, long HostSyncs, long DeviceAllocs, long Copies, long AlgorithmSearches, double Bytes, double Flops,
    long GraphLaunches = 0)
{
    public static WorkCounts operator +(WorkCounts a, WorkCounts b) => new(
        a.Launches + b.Launches, a.HostSyncs + b.HostSyncs, a.DeviceAllocs + b.DeviceAllocs, a.Copies + b.Copies,
        a.AlgorithmSearches + b.AlgorithmSearches, a.Bytes + b.Bytes, a.Flops + b.Flops, a.GraphLaunches + b.GraphLaunches);

    public static WorkCounts operator -(WorkCounts a, WorkCounts b) => new(
        a.Launches - b.Launches, a.HostSyncs - b.HostSyncs, a.DeviceAllocs - b.DeviceAllocs, a.Copies - b.Copies,
        a.AlgorithmSearches - b.AlgorithmSearches, a.Bytes - b.Bytes, a.Flops - b.Flops, a.GraphLaunches - b.GraphLaunches);

    public bool IsEmpty => this == default;
}

/// <summary>
/// Running totals of <see cref="WorkCounts"/>, overall and by op. The backend names the op it is in at each
/// entry point (<see cref="Enter"/>); everything counted until the next entry is charged to it. Counting
/// allocates nothing once every op has been seen.
/// </summary>
public sealed class WorkCounters
{
    private sealed class Tally
    {
        public long Launches, HostSyncs, DeviceAllocs, Copies, AlgorithmSearches, GraphLaunches;
        public double Bytes, Flops;

        public WorkCounts Counts => new(Launches, HostSyncs, DeviceAllocs, Copies, AlgorithmSearches, Bytes, Flops, GraphLaunches);
    }

    private readonly Dictionary<string, Tally> _byOp = new(StringComparer.Ordinal);
    private Tally _total = new();
    private Tally _op;
    private Tally? _counted;   // the real totals while a recording counts apart

    public WorkCounters() => _op = Charge("(outside ops)");

    /// <summary>Everything counted so far.</summary>
    public WorkCounts Total => _total.Counts;

    /// <summary>The op the backend is in (as last given to <see cref="Enter"/>), for messages.</summary>
    public string CurrentOp { get; private set; } = "(outside ops)";

    /// <summary>
    /// Counts what follows apart, until <see cref="EndRecording"/> returns it: work recorded into a graph runs only
    /// when the graph is replayed (<see cref="Replayed"/>), so it is not added to the totals or to any op.
    /// </summary>
    public void BeginRecording()
    {
        if (_counted is not null) throw new InvalidOperationException("A recording is already under way.");
        _counted = _total;
        _total = new Tally();
        _op = new Tally();
    }

    /// <summary>Ends <see cref="BeginRecording"/>: the work recorded, and counting goes back to the totals.</summary>
    public WorkCounts EndRecording()
    {
        if (_counted is null) throw new InvalidOperationException("No recording is under way.");
        var recorded = _total.Counts;
        _total = _counted;
        _counted = null;
        _op = Charge(CurrentOp);
        return recorded;
    }

    /// <summary>One replay of recorded work, charged to <paramref name="op"/>: one launch, and the work's modelled bytes and FLOPs.</summary>
    public void Replayed(string op, WorkCounts work)
    {
        Enter(op);
        Launch();
        _total.GraphLaunches++;
        _op.GraphLaunches++;
        Model(work.Bytes, work.Flops);
    }

    /// <summary>A copy of the totals of each op so far.</summary>
    public IReadOnlyDictionary<string, WorkCounts> ByOp() => _byOp.ToDictionary(kv => kv.Key, kv => kv.Value.Counts, StringComparer.Ordinal);

    /// <summary>Charges what follows to <paramref name="op"/> (a constant name: no string is built per call).</summary>
    public void Enter(string op)
    {
        CurrentOp = op;
        if (_counted is null) _op = Charge(op);
    }

    private Tally Charge(string op)
    {
        if (!_byOp.TryGetValue(op, out var tally)) _byOp[op] = tally = new Tally();
        return tally;
    }

    public void Launch() { _total.Launches++; _op.Launches++; }
    public void HostSync() { _total.HostSyncs++; _op.HostSyncs++; }
    public void DeviceAlloc() { _total.DeviceAllocs++; _op.DeviceAllocs++; }
    public void Copy() { _total.Copies++; _op.Copies++; }
    public void AlgorithmSearch() { _total.AlgorithmSearches++; _op.AlgorithmSearches++; }

    /// <summary>Adds an op's modelled device-memory traffic and arithmetic.</summary>
    public void Model(double bytes, double flops)
    {
        _total.Bytes += bytes;
        _op.Bytes += bytes;
        _total.Flops += flops;
        _op.Flops += flops;
    }

    /// <summary>Per-op differences between two <see cref="ByOp"/> snapshots; ops with nothing counted are left out.</summary>
    public static IReadOnlyList<(string Op, WorkCounts Counts)> Difference(
        IReadOnlyDictionary<string, WorkCounts> after, IReadOnlyDictionary<string, WorkCounts> before) =>
        [.. after.Select(kv => (kv.Key, kv.Value - before.GetValueOrDefault(kv.Key)))
            .Where(r => !r.Item2.IsEmpty)
            .OrderByDescending(r => r.Item2.Bytes).ThenBy(r => r.Key, StringComparer.Ordinal)];
}

/// <summary>A backend that counts the work it queues (<see cref="WorkCounters"/>).</summary>
public interface ICountingBackend
{
    WorkCounters Counters { get; }
}
