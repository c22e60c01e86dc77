using System.CommandLine;
using BrainSeg.Cuda;
using BrainSeg.Engine;

namespace BrainSeg.Cli.Common;

/// <summary>How float32 work runs on a GPU: full FMA precision, or TF32 tensor cores (10-bit mantissa products).</summary>
public enum Precision { Fp32, Tf32 }

/// <summary>
/// The GPU math a verb asked for: <c>--precision fp32|tf32</c> (default: TF32 on GPUs that have it, sm_80 and newer,
/// as PyTorch does) and <c>--deterministic</c> (only convolution engines that give the same bits every run; off by
/// default, since the fastest filter-gradient engines split their reductions).
/// </summary>
public sealed record GpuMath(Precision? Requested, bool Deterministic)
{
    /// <summary>FMA math and deterministic engines: what gradient checks and parity comparisons need.</summary>
    public static GpuMath Exact { get; } = new(Precision.Fp32, true);

    /// <summary>The precision on a device of compute capability <paramref name="major"/>.x: the requested one, or TF32 from sm_80 on.</summary>
    public Precision On(int major) => Requested ?? (major >= 8 ? Precision.Tf32 : Precision.Fp32);

    /// <summary>The backend options for a device of compute capability <paramref name="major"/>.x.</summary>
    public CudaBackendOptions Options(int major) =>
        new() { AllowTf32 = On(major) == Precision.Tf32, DeterministicAlgorithms = Deterministic };

    /// <summary>"tf32" or "fp32" (with "/deterministic"), as log.csv, checkpoints and bench JSON record it.</summary>
    public static string Describe(IBackend backend) => backend.Precision;
}

/// <summary>The shared <c>--precision</c> and <c>--deterministic</c> options.</summary>
public sealed class GpuMathOptions
{
    public Option<string?> Precision { get; } = new("--precision")
    {
        Description = "Float32 math on a GPU: fp32 (FMA, no tensor cores) or tf32 (tensor cores; the default on sm_80 and newer). The CPU always computes fp32.",
        HelpName = "fp32|tf32",
    };

    public Option<bool> Deterministic { get; } = new("--deterministic")
    {
        Description = "On a GPU, use only convolution engines that give the same bits every run (slower; off by default).",
    };

    public GpuMathOptions() => Precision.AcceptOnlyFromAmong("fp32", "tf32");

    public void AddTo(Command command)
    {
        command.Options.Add(Precision);
        command.Options.Add(Deterministic);
    }

    public GpuMath Read(ParseResult parsed) => new(
        parsed.GetValue(Precision) is { } p ? Enum.Parse<Precision>(p, ignoreCase: true) : null,
        parsed.GetValue(Deterministic));
}
