using System.Globalization;
using System.Text;

namespace BrainSeg.Engine.Checking;

/// <summary>
/// The check of one input. Relative error: in full-Jacobian mode max|J_analytic − J_numeric| divided by the
/// largest |entry| of either Jacobian (norm-wise, so near-zero entries do not blow it up); in
/// random-direction mode |a − n| / max(|a|, |n|) for each directional derivative, maximised over directions.
/// </summary>
public sealed record InputCheck(string Name, long Elements, double MaxAbsoluteError, double MaxRelativeError, bool Passed, int Redraws = 0);

public sealed class GradCheckResult(GradCheckMode mode, GradCheckOptions options, IReadOnlyList<InputCheck> inputs)
{
    /// <summary>The mode actually used (never Auto).</summary>
    public GradCheckMode Mode { get; } = mode;
    public GradCheckOptions Options { get; } = options;
    public IReadOnlyList<InputCheck> Inputs { get; } = inputs;

    public double Tolerance => Options.Tolerance;
    public bool Passed => Inputs.All(i => i.Passed);
    public double MaxRelativeError => Inputs.Count == 0 ? 0 : Inputs.Max(i => i.MaxRelativeError);
    public double MaxAbsoluteError => Inputs.Count == 0 ? 0 : Inputs.Max(i => i.MaxAbsoluteError);

    /// <summary>Throws <see cref="GradCheckFailedException"/> listing the failing inputs (works with any test framework).</summary>
    public void ThrowIfFailed()
    {
        if (!Passed) throw new GradCheckFailedException(this);
    }

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"gradient check ({Mode}, ε={Options.Epsilon:g2}, tolerance {Options.Tolerance:g2}): {(Passed ? "passed" : "FAILED")}");
        foreach (var i in Inputs)
        {
            sb.Append(CultureInfo.InvariantCulture,
                $"\n  {(i.Passed ? "ok  " : "FAIL")} {i.Name} ({i.Elements} values): max rel {i.MaxRelativeError:0.00e+00}, max abs {i.MaxAbsoluteError:0.00e+00}");
            if (i.Redraws > 0) sb.Append(CultureInfo.InvariantCulture, $", {i.Redraws} non-smooth directions redrawn");
        }
        return sb.ToString();
    }
}

public sealed class GradCheckFailedException(GradCheckResult result) : Exception(result.ToString())
{
    public GradCheckResult Result { get; } = result;
}
