using BrainSeg.Engine;
using static BrainSeg.Cuda.cudnnBackendNumericalNote_t;

namespace BrainSeg.Cuda;

/// <summary>What was chosen for one pass of one convolution geometry, and how: for reports and bench --json.</summary>
/// <param name="Source">"timed" (candidates timed now), "cache" (remembered on disk) or "legacy" (the graph API failed; see Note).</param>
/// <param name="Engine">The graph API's engine and knobs ("index:type=value,..."); "-" for legacy.</param>
/// <param name="Notes">The chosen engine's numerical notes (tensor-core, nondeterministic, winograd, ...), comma-separated.</param>
/// <param name="Milliseconds">The chosen engine's time when it was timed (now, or when remembered); NaN for legacy.</param>
/// <param name="Timed">Every candidate timed now (none when the choice came from the cache), fastest chosen.</param>
/// <param name="Note">What was not run and why, or why the legacy API serves this pass.</param>
public sealed record ConvolutionEngineReport(string Direction, string Problem, string Source, string Engine, string Notes, long WorkspaceBytes,
    double Milliseconds, IReadOnlyList<TimedEngine> Timed, string Note);

/// <summary>One candidate's median time.</summary>
public sealed record TimedEngine(string Engine, string Notes, double Milliseconds);

// Convolution engines chosen by timing through cuDNN's graph API: each pass of each geometry is an operation
// graph; the engines its heuristics propose, filtered by precision and determinism, are run on the real tensors
// and the fastest is kept, remembered on disk (EngineCache) and executed from then on. Where the graph API fails,
// the legacy cudnnFind* path (CudaBackend.Convolution.cs) runs instead and the report says why.
public sealed unsafe partial class CudaBackend
{
    /// <summary>At most this many candidates are timed per pass (heuristics' best first), bounding the first step's time.</summary>
    private const int MaxTimedEngines = 16;

    /// <summary>Timed runs per candidate after one warm-up run; the median counts.</summary>
    private const int TimedRuns = 3;

    private static readonly Lazy<long> CudnnVersion = new(() => (long)Cudnn.cudnnGetVersion());

    /// <summary>
    /// A pass's graph and the chosen engine's plan (and that engine's time), valid for pointers at least as aligned as it was
    /// built for.
    /// </summary>
    private sealed class GraphPass(ConvolutionGraph graph, ExecutionPlan plan, (int X, int W, int Y) alignment, double milliseconds,
        int perChannelAlignment = 16) : IDisposable
    {
        public ConvolutionGraph Graph { get; } = graph;
        public ExecutionPlan Plan { get; } = plan;
        public (int X, int W, int Y) Alignment { get; } = alignment;
        public int PerChannelAlignment { get; } = perChannelAlignment;
        public double Milliseconds { get; } = milliseconds;

        /// <summary>Whether pointers of these alignments may run on this plan.</summary>
        public bool Fits((int X, int W, int Y) a, int perChannel = 16) =>
            a.X >= Alignment.X && a.W >= Alignment.W && a.Y >= Alignment.Y && perChannel >= PerChannelAlignment;

        public void Dispose()
        {
            Plan.Dispose();
            Graph.Dispose();
        }
    }

    private readonly List<ConvolutionEngineReport> _engineReports = [];

    /// <summary>Every convolution pass's engine choice so far, in the order they were made.</summary>
    public IReadOnlyList<ConvolutionEngineReport> EngineReports
    {
        get { lock (_engineReports) return _engineReports.ToArray(); }
    }

    private void Report(ConvolutionEngineReport report)
    {
        lock (_engineReports) _engineReports.Add(report);
        lock (_convolutionChoices)
            _convolutionChoices.Add($"{report.Direction} {report.Problem}: {report.Source} engine {report.Engine}, workspace {report.WorkspaceBytes} B" +
                (double.IsNaN(report.Milliseconds) ? "" : $", {report.Milliseconds:G4} ms") + (report.Note.Length > 0 ? $" ({report.Note})" : ""));
    }

    /// <summary>
    /// Runs one pass through the graph API on x, w, y as that pass names them (dx for x in the backward data pass, dw for w
    /// in the backward filter pass). False when this pass of this geometry uses the legacy API instead.
    /// </summary>
    private bool RunGraph(ConvPlan plan, ConvolutionDirection direction, DType dt, Tensor x, Tensor w, Tensor y, Conv2dSpec spec)
    {
        var operands = new GraphOperands(Ptr(x), Ptr(w), Ptr(y));
        var pass = GraphPassFor(plan, direction, dt, x, w, y, spec);
        if (pass is null) return false;
        var workspace = _workspace.Ensure(pass.Plan.WorkspaceBytes);
        _ctx.Counters.Launch();
        pass.Graph.Execute(pass.Plan, operands, workspace);
        return true;
    }

    /// <summary>
    /// The graph API's chosen engine for one pass of this geometry at these pointers' alignment (chosen now if need be, timed
    /// on the tensors' memory as it is); null where the legacy API serves it.
    /// </summary>
    private GraphPass? GraphPassFor(ConvPlan plan, ConvolutionDirection direction, DType dt, Tensor x, Tensor w, Tensor y, Conv2dSpec spec)
    {
        int d = (int)direction;
        if (Options.LegacyConvolutionSearch || plan.Legacy[d]) return null;
        ulong xp = RawPtr(x), wp = RawPtr(w), yp = RawPtr(y);
        var alignment = (Alignment(xp), Alignment(wp), Alignment(yp));
        var pass = plan.Passes[d];
        if (pass is not null && !pass.Fits(alignment))
        {
            pass.Dispose();  // a less aligned view than the plan was made for: choose again for this alignment
            plan.Passes[d] = pass = null;
        }
        if (pass is not null) return pass;
        try
        {
            return plan.Passes[d] = ChooseEngine(plan, direction, dt, x.Shape, w.Shape, y.Shape, spec, alignment, new GraphOperands(xp, wp, yp));
        }
        catch (CudaException e)
        {
            plan.Legacy[d] = true;
            Report(new(PassName(direction), plan.Key.ToString(), "legacy", "-", "", 0, double.NaN, [], $"graph API: {e.Message}"));
            return null;
        }
    }

    /// <summary>The largest power of two up to 16 bytes that divides the address: what cuDNN may assume of it.</summary>
    private static int Alignment(ulong pointer) => (int)Math.Min(16UL, pointer & (~pointer + 1));

    private static string PassName(ConvolutionDirection direction, ConvolutionFusion fusion = default) => direction switch
    {
        ConvolutionDirection.Forward => "forward",
        ConvolutionDirection.BackwardData => "backward-data",
        _ => "backward-filter",
    } + (fusion.IsNone ? "" : " " + fusion);

    /// <summary>
    /// The engine of one pass (with <paramref name="fusion"/>, a fused pass): remembered on disk, or timed on the real tensors.
    /// Throws <see cref="CudaException"/> when cuDNN refuses the graph or no engine runs.
    /// </summary>
    private GraphPass ChooseEngine(ConvPlan plan, ConvolutionDirection direction, DType dt, Shape x, Shape w, Shape y, Conv2dSpec spec,
        (int, int, int) alignment, in GraphOperands operands, ConvolutionFusion fusion = default, int perChannelAlignment = 16)
    {
        var graph = new ConvolutionGraph(_ctx.CudnnHandle, direction, dt, x, w, y, spec, plan.Key.Layout, alignment, fusion, perChannelAlignment);
        string name = PassName(direction, fusion);
        try
        {
            string key = EngineKey(name, plan.Key, alignment, fusion.IsNone ? null : perChannelAlignment);
            if (EngineCache.TryGet(key, out var remembered))
            {
                try
                {
                    var configured = graph.Configure(remembered.Choice);
                    var cached = graph.Plan(configured.Config);
                    Report(new(name, plan.Key.ToString(), "cache", remembered.Choice.ToString(), configured.NoteNames,
                        cached.WorkspaceBytes, remembered.Milliseconds, [], ""));
                    return new GraphPass(graph, cached, alignment, remembered.Milliseconds, perChannelAlignment);
                }
                catch (CudaException)
                {
                    EngineCache.Forget(key);  // e.g. a cuDNN update renumbered its engines: time them again
                }
            }
            var (best, chosen, ms, timed, skipped) = TimeEngines(graph, dt, operands);
            EngineCache.Remember(key, new EngineCache.Entry(chosen.Choice, best.WorkspaceBytes, ms));
            Report(new(name, plan.Key.ToString(), "timed", chosen.Choice.ToString(), chosen.NoteNames, best.WorkspaceBytes, ms, timed,
                skipped.Count == 0 ? "" : "not run: " + string.Join("; ", skipped)));
            return new GraphPass(graph, best, alignment, ms, perChannelAlignment);
        }
        catch
        {
            graph.Dispose();
            throw;
        }
    }

    /// <summary>Times every admissible engine on the real tensors and keeps the fastest; the rest are disposed.</summary>
    private (ExecutionPlan Plan, EngineCandidate Chosen, double Milliseconds, List<TimedEngine> Timed, List<string> NotRun) TimeEngines(
        ConvolutionGraph graph, DType dt, in GraphOperands operands)
    {
        var candidates = Admissible(graph, dt);
        ExecutionPlan? fastest = null;
        EngineCandidate? chosen = null;
        double fastestMs = double.PositiveInfinity;
        var notRun = new List<string>();
        var timed = new List<TimedEngine>();
        foreach (var candidate in candidates)
        {
            ExecutionPlan plan;
            try { plan = graph.Plan(candidate.Config); }
            catch (CudaException e) { notRun.Add($"{candidate.Choice} {e.ErrorName ?? "refused"}"); continue; }
            double ms;
            try { ms = Time(graph, plan, operands); }
            catch (CudaException e)
            {
                // Out of memory for its workspace, or a launch it could not make: said in the report, never dropped silently.
                notRun.Add($"{candidate.Choice} workspace {plan.WorkspaceBytes} B {e.ErrorName ?? e.Message}");
                plan.Dispose();
                continue;
            }
            timed.Add(new TimedEngine(candidate.Choice.ToString(), candidate.NoteNames, ms));
            if (ms < fastestMs)
            {
                fastest?.Dispose();
                (fastest, chosen, fastestMs) = (plan, candidate, ms);
            }
            else plan.Dispose();
        }
        if (fastest is null)
            throw new CudaException($"no engine ran ({candidates.Count} admissible" + (notRun.Count > 0 ? "; " + string.Join("; ", notRun) : "") + ")");
        return (fastest, chosen!, fastestMs, timed, notRun);
    }

    /// <summary>
    /// The candidates this backend's options admit, in the heuristics' order: the instant heuristics' list, then the
    /// fallback list's engines not already in it. Never engines that convert float inputs to a narrower type; for exact
    /// float32 no tensor-core (TF32) or reduced-precision engine, and no FFT or Winograd transform unless nothing else
    /// is admissible (their rounding exceeds direct summation's); with determinism asked for, no non-deterministic engine.
    /// </summary>
    private List<EngineCandidate> Admissible(ConvolutionGraph graph, DType dt)
    {
        var all = graph.Proposed(MaxTimedEngines);
        bool exact = dt == DType.Float32 && !Options.AllowTf32;
        var admitted = all.Where(c => !c.Notes.Contains(CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS)
            && !(exact && c.Notes.Any(n => n is CUDNN_NUMERICAL_NOTE_TENSOR_CORE or CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION))
            && !(Options.DeterministicAlgorithms && c.Notes.Contains(CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC))).ToList();
        static bool Transform(EngineCandidate c) => c.Notes.Any(n => n is CUDNN_NUMERICAL_NOTE_FFT or CUDNN_NUMERICAL_NOTE_WINOGRAD
            or CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4 or CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6 or CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13);
        if (exact && admitted.Any(c => !Transform(c))) admitted.RemoveAll(Transform);
        return admitted.Take(MaxTimedEngines).ToList();
    }

    /// <summary>One warm-up run, then the median of <see cref="TimedRuns"/> runs between CUDA events, with a workspace lent by the pool.</summary>
    private double Time(ConvolutionGraph graph, ExecutionPlan plan, GraphOperands operands)
    {
        _ctx.RefuseWhileCapturing("an algorithm search (each candidate engine is run and timed, and the host waits for it)");
        _ctx.Counters.AlgorithmSearch();
        var ws = _ctx.Pool.Rent(plan.WorkspaceBytes);
        try
        {
            return TimeRuns(() => graph.Execute(plan, operands, ws.Pointer));
        }
        finally
        {
            _ctx.Pool.Return(ws);
        }
    }

    /// <summary>The median time of <see cref="TimedRuns"/> runs of <paramref name="run"/> between CUDA events, after one warm-up run.</summary>
    private double TimeRuns(Action run)
    {
        _ctx.Counters.HostSync();   // each timed run waits for its end event
        run();
        using var start = CudaEvent.Create();
        using var end = CudaEvent.Create();
        var times = new double[TimedRuns];
        for (var i = 0; i < TimedRuns; i++)
        {
            start.Record(_ctx.Stream);
            run();
            end.Record(_ctx.Stream);
            times[i] = end.ElapsedMs(start);
        }
        Array.Sort(times);
        return times[TimedRuns / 2];
    }

    /// <summary>
    /// What makes a remembered choice valid: device, cuDNN version, pass (with its fusion), geometry, layout, alignment (a fused
    /// pass's per-channel tensors' too), precision, determinism.
    /// </summary>
    private string EngineKey(string pass, ConvKey k, (int X, int W, int Y) a, int? perChannelAlignment) =>
        $"{_ctx.DeviceName.Replace('\t', ' ')} sm{_ctx.ComputeCapability.Major}{_ctx.ComputeCapability.Minor} cudnn{CudnnVersion.Value} " +
        $"{pass} {k.DType} {k.Layout.ToString().ToLowerInvariant()} n{k.N} c{k.C} h{k.H} w{k.W} k{k.K} r{k.R} s{k.S} d{k.Dilation} p{k.Padding} " +
        $"a{a.X}/{a.W}/{a.Y}{(perChannelAlignment is { } p ? $"/{p}" : "")} {(Options.AllowTf32 ? "tf32" : "fp32")} {(Options.DeterministicAlgorithms ? "deterministic" : "any")}";
}
