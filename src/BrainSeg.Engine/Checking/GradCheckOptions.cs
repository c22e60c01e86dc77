namespace BrainSeg.Engine.Checking;

public enum GradCheckMode
{
    /// <summary><see cref="FullJacobian"/> when it costs at most <see cref="GradCheckOptions.FullJacobianMaxEvaluations"/> evaluations, else <see cref="RandomDirections"/>.</summary>
    Auto,

    /// <summary>Every entry of the Jacobian: one backward pass per output element, two forward passes per input element.</summary>
    FullJacobian,

    /// <summary>
    /// Directional derivatives (torch's fast mode, JAX's check_grads): for a random output weighting v and
    /// random input directions u, compare ⟨∇ₓ⟨v, f⟩, u⟩ with the central difference of ⟨v, f(x + t·u)⟩.
    /// </summary>
    RandomDirections,
}

/// <summary>How <see cref="GradCheck"/> differentiates numerically and what it accepts.</summary>
public sealed record GradCheckOptions
{
    /// <summary>Central-difference step (absolute). 1e-6 suits float64.</summary>
    public double Epsilon { get; init; } = 1e-6;

    /// <summary>Largest accepted relative error (float64: 1e-6 is the expected order).</summary>
    public double Tolerance { get; init; } = 1e-6;

    /// <summary>Absolute errors at or below this pass whatever the relative error (gradients that are exactly zero).</summary>
    public double AbsoluteTolerance { get; init; } = 1e-10;

    public GradCheckMode Mode { get; init; } = GradCheckMode.Auto;

    /// <summary>Auto mode picks the full Jacobian when (output elements + 2 × input elements) is at most this.</summary>
    public int FullJacobianMaxEvaluations { get; init; } = 1500;

    /// <summary>Random directions per input in <see cref="GradCheckMode.RandomDirections"/> mode.</summary>
    public int Directions { get; init; } = 2;

    /// <summary>
    /// In random-direction mode, a direction along which the function is not smooth within ±ε (a ReLU or
    /// max-pool switch; detected when the differences with steps ε and ε/2 disagree) is replaced by a new
    /// one, at most this many times per input. Only numerical values decide this, so it cannot hide a
    /// wrong analytic gradient.
    /// </summary>
    public int MaxRedraws { get; init; } = 4;

    /// <summary>Seed of the random output weighting and directions.</summary>
    public ulong Seed { get; init; } = 2017;

    /// <summary>Names of the inputs in the result (default "input0", "input1", …).</summary>
    public IReadOnlyList<string>? InputNames { get; init; }

    /// <summary>
    /// Random-direction mode only: inputs perturbed together along one direction, each group giving one
    /// row of the result (e.g. the image alone and all parameters of a network together, which costs two
    /// checks instead of one per tensor). Null: every input is its own group.
    /// </summary>
    public IReadOnlyList<GradCheckGroup>? Groups { get; init; }

    /// <summary>Runs before every evaluation of the function, e.g. to rewind a dropout stream so each pass draws the same mask.</summary>
    public Action? BeforeEachEvaluation { get; init; }
}

/// <summary>
/// Inputs perturbed together in random-direction mode. <paramref name="Epsilon"/> overrides the step for
/// this group: a network's parameters move every pre-activation at once, so a smaller step keeps ReLU and
/// max-pool switches out of ±ε (float64 leaves room down to about 1e-8).
/// </summary>
public sealed record GradCheckGroup(string Name, int[] Inputs, double? Epsilon = null);
