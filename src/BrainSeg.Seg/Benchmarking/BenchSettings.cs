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

    /// <summary>Distinct input batches the repetitions rotate over, so caches do not flatter.</summary>
    public const int InputSets = 4;

    public int TimedReps => Step == BenchStep.Segment ? Math.Max(3, Reps / 10) : Reps;
    public int WarmupReps => Step == BenchStep.Segment ? 1 : Warmup;

    public void Validate()
    {
        if (Batch < 1) throw new ArgumentException($"--batch must be at least 1, got {Batch}.");
        if (Reps < 1) throw new ArgumentException($"--reps must be at least 1, got {Reps}.");
        if (Warmup < 0) throw new ArgumentException($"--warmup cannot be negative, got {Warmup}.");
        if (Classes < 2) throw new ArgumentException($"--classes must be at least 2, got {Classes}.");
        if (TimeLimitSeconds < 0) throw new ArgumentException($"--time-limit cannot be negative, got {TimeLimitSeconds}.");
        if (Volume < 1) throw new ArgumentException($"--volume must be at least 1, got {Volume}.");
        if (Dilation is < 1 or > 16) throw new ArgumentException($"--dilation must be in 1..16 (the 51×51 conv input leaves a 19×19 output at 16), got {Dilation}.");
    }
}

/// <summary>One measurement, in the fields the PyTorch peer prints.</summary>
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
    long PeakBytes);
