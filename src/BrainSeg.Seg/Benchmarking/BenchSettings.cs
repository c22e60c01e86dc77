using BrainSeg.Mri;
using BrainSeg.Engine;

namespace BrainSeg.Seg.Benchmarking;

/// <summary>What `brainseg bench` measures.</summary>
public enum BenchStep
{
    /// <summary>FCN training step: forward + backward + RMSprop on 51×51 patches.</summary>
    Fcn,
    /// <summary>Dilated-network training step on 87×87 patches.</summary>
    Dilated,
    /// <summary>One adversarial iteration: Ls, Ld and La, each on its own minibatch of the batch size.</summary>
    Adversarial,
    /// <summary>Whole-volume FCN inference, slice by slice, labels copied back to the host.</summary>
    Segment,
    /// <summary>One 32→32 3×3 convolution layer, forward and backward (data and filter).</summary>
    Conv,
    /// <summary>Batch norm (γ, β) with its ReLU on [N,32,49,49], training forward and backward.</summary>
    BatchNorm,
}

/// <summary>One measurement's settings. The defaults are those of the PyTorch peer (benchmarks/peers/torch_peer.py).</summary>
public sealed record BenchSettings
{
    public BenchStep Step { get; init; } = BenchStep.Fcn;

    /// <summary>Patches per step; slices per forward pass for <see cref="BenchStep.Segment"/>.</summary>
    public int Batch { get; init; } = 100;

    /// <summary>Timed repetitions (the median is reported). Segment uses max(3, Reps/10), as the peer does.</summary>
    public int Reps { get; init; } = 50;

    /// <summary>Untimed repetitions first (kernel compilation, algorithm search, pool growth). Segment uses 1.</summary>
    public int Warmup { get; init; } = 10;

    public int Classes { get; init; } = 7;

    /// <summary>Side of the cubic volume for <see cref="BenchStep.Segment"/>.</summary>
    public int Volume { get; init; } = 256;

    /// <summary>Dilation of the <see cref="BenchStep.Conv"/> layer.</summary>
    public int Dilation { get; init; } = 1;

    /// <summary>
    /// Stops the timed repetitions early once this many seconds have gone by (at least 3 are timed), so a
    /// slow step still reports within a fixed budget; the reported repetition count says how many ran. 0: no limit.
    /// </summary>
    public double TimeLimitSeconds { get; init; }

    /// <summary>
    /// Training steps (<see cref="BenchStep.Fcn"/>, <see cref="BenchStep.Dilated"/>) and the adversarial iteration as
    /// CUDA graphs: the first runs eagerly and is captured, every later one copies its input set into the captured
    /// inputs and replays (the adversarial iteration through the trainer's own recording, <see cref="Training.Trainer.ReplaySteps"/>).
    /// </summary>
    public bool Graphs { get; init; }

    /// <summary>Distinct input batches the repetitions rotate over, so caches do not flatter.</summary>
    public const int InputSets = 4;

    public int TimedReps => Step == BenchStep.Segment ? Math.Max(3, Reps / 10) : Reps;
    public int WarmupReps => Step == BenchStep.Segment ? 1 : Warmup;

    public void Validate()
    {
        if (Batch < 1) throw new BadInputException($"--batch must be at least 1, got {Batch}.");
        if (Reps < 1) throw new BadInputException($"--reps must be at least 1, got {Reps}.");
        if (Warmup < 0) throw new BadInputException($"--warmup cannot be negative, got {Warmup}.");
        if (Classes < 2) throw new BadInputException($"--classes must be at least 2, got {Classes}.");
        if (TimeLimitSeconds < 0) throw new BadInputException($"--time-limit cannot be negative, got {TimeLimitSeconds}.");
        if (Volume < 1) throw new BadInputException($"--volume must be at least 1, got {Volume}.");
        if (Dilation is < 1 or > 16) throw new BadInputException($"--dilation must be in 1..16 (the 51×51 conv input leaves a 19×19 output at 16), got {Dilation}.");
        if (Graphs && Step is not (BenchStep.Fcn or BenchStep.Dilated or BenchStep.Adversarial))
            throw new BadInputException($"--graphs on applies to --step fcn, dilated and adversarial, not {Step.ToString().ToLowerInvariant()}; drop --graphs or pick one of those steps.");
    }
}

/// <summary>
/// One measurement, in the fields the PyTorch peer prints, plus the managed heap bytes allocated per timed
/// repetition (after warm-up a step should allocate next to nothing: tensors come from the pools).
/// </summary>
public sealed record BenchResult(
    BenchSettings Settings,
    string Device,
    string Variant,
    double MedianMs,
    double MinMs,
    double MaxMs,
    int TimedReps,
    double UnitsPerSecond,
    double Tflops,
    long PeakBytes,
    long HostAllocatedBytesPerRep,
    WorkCounts? Counted = null);

/// <summary>
/// A step's mean time per repetition split by op (see <see cref="BenchRunner.Profile"/>), and on a counting
/// backend the work each op queued over <see cref="Reps"/> repetitions.
/// </summary>
public sealed record BenchProfile(double StepMs, IReadOnlyList<BenchProfile.Row> Ops,
    IReadOnlyList<(string Op, WorkCounts Counts)>? Counted = null, int Reps = 1)
{
    /// <summary>One op (convolutions: one row per geometry): calls and milliseconds per repetition.</summary>
    public sealed record Row(string Op, double Calls, double Ms);

    /// <summary>Time of the step that no profiled op accounts for: host work between ops, and ops called around the profiler (the optimiser).</summary>
    public double RemainderMs => StepMs - Ops.Sum(o => o.Ms);

    /// <summary>A table, largest first, with the share of the step.</summary>
    public IEnumerable<string> Lines()
    {
        yield return $"profile: {StepMs:F3} ms per step with per-op timing on";
        yield return $"  {"op",-44} {"calls",7} {"ms",10} {"share",7}";
        foreach (var o in Ops)
            yield return $"  {o.Op,-44} {o.Calls,7:0.#} {o.Ms,10:F3} {o.Ms / StepMs,7:P1}";
        yield return $"  {"(outside the profiled ops)",-44} {"",7} {RemainderMs,10:F3} {RemainderMs / StepMs,7:P1}";
        if (Counted is null) yield break;
        yield return "counted per step (by the backend; bytes and FLOPs modelled from shapes):";
        yield return $"  {"op",-30} {"launches",9} {"syncs",6} {"allocs",7} {"copies",7} {"searches",9} {"MB",10} {"GFLOP",9}";
        foreach (var (op, c) in Counted)
            yield return $"  {op,-30} {c.Launches / (double)Reps,9:0.##} {c.HostSyncs / (double)Reps,6:0.##} {c.DeviceAllocs / (double)Reps,7:0.##} " +
                         $"{c.Copies / (double)Reps,7:0.##} {c.AlgorithmSearches / (double)Reps,9:0.##} {c.Bytes / Reps / 1e6,10:F1} {c.Flops / Reps / 1e9,9:F2}";
    }
}
