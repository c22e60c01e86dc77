using BrainSeg.Mri;

namespace BrainSeg.Seg.Statistics;

/// <summary>Mean and sample standard deviation (n − 1 in the denominator; 0 for a single value).</summary>
public readonly record struct MeanSd(double Mean, double Sd, int Count)
{
    public static MeanSd Of(ReadOnlySpan<double> values)
    {
        if (values.Length == 0) return new MeanSd(double.NaN, double.NaN, 0);
        double mean = 0;
        foreach (double v in values) mean += v;
        mean /= values.Length;
        double squares = 0;
        foreach (double v in values) squares += (v - mean) * (v - mean);
        return new MeanSd(mean, values.Length > 1 ? Math.Sqrt(squares / (values.Length - 1)) : 0, values.Length);
    }

    public override string ToString() => FormattableString.Invariant($"{Mean:F4} ± {Sd:F4}");
}

/// <summary>A paired two-sided t-test of B − A.</summary>
public readonly record struct TTestResult(double MeanDifference, double T, int DegreesOfFreedom, double P)
{
    /// <summary>"**" for p &lt; 0.01, "*" for p &lt; 0.05, as the paper's Figure 3 marks them; "" otherwise.</summary>
    public string Mark => P < 0.01 ? "**" : P < 0.05 ? "*" : "";
}

public static class PairedTTest
{
    /// <summary>
    /// Paired two-sided Student t-test of <paramref name="b"/> − <paramref name="a"/> (same images, same order).
    /// Identical pairs give t = 0, p = 1; a constant non-zero difference gives t = ±∞, p = 0.
    /// </summary>
    public static TTestResult Test(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        if (a.Length != b.Length)
            throw new BadInputException($"A paired t-test needs the same images in both groups; got {a.Length} and {b.Length} values.");
        if (a.Length < 2)
            throw new BadInputException($"A paired t-test needs at least 2 pairs, got {a.Length}.");
        var differences = new double[a.Length];
        for (int i = 0; i < a.Length; i++) differences[i] = b[i] - a[i];
        var d = MeanSd.Of(differences);
        int df = a.Length - 1;
        if (d.Sd == 0)
            return d.Mean == 0
                ? new TTestResult(0, 0, df, 1)
                : new TTestResult(d.Mean, d.Mean > 0 ? double.PositiveInfinity : double.NegativeInfinity, df, 0);
        double t = d.Mean / (d.Sd / Math.Sqrt(a.Length));
        return new TTestResult(d.Mean, t, df, TwoSidedP(t, df));
    }

    /// <summary>P(|T| ≥ |t|) for Student's t with <paramref name="df"/> degrees of freedom: I_{df/(df+t²)}(df/2, 1/2).</summary>
    public static double TwoSidedP(double t, double df)
    {
        if (!(df > 0)) throw new ArgumentOutOfRangeException(nameof(df), $"Degrees of freedom must be positive, got {df}.");
        if (double.IsNaN(t)) return double.NaN;
        if (double.IsInfinity(t)) return 0;
        return RegularizedIncompleteBeta(df / 2, 0.5, df / (df + t * t));
    }

    /// <summary>
    /// I_x(a, b), the regularized incomplete beta function, by its continued fraction (modified Lentz),
    /// using the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly.
    /// </summary>
    public static double RegularizedIncompleteBeta(double a, double b, double x)
    {
        if (!(a > 0 && b > 0)) throw new ArgumentOutOfRangeException(nameof(a), "The incomplete beta function needs a > 0 and b > 0.");
        if (!(x >= 0 && x <= 1)) throw new ArgumentOutOfRangeException(nameof(x), $"x must lie in [0, 1], got {x}.");
        if (x == 0 || x == 1) return x;
        double logFront = LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * Math.Log(x) + b * Math.Log(1 - x);
        if (x < (a + 1) / (a + b + 2))
            return Math.Exp(logFront) * BetaContinuedFraction(a, b, x) / a;
        return 1 - Math.Exp(logFront) * BetaContinuedFraction(b, a, 1 - x) / b;
    }

    static double BetaContinuedFraction(double a, double b, double x)
    {
        const double tiny = 1e-300, epsilon = 1e-15;
        double c = 1, d = 1 - (a + b) * x / (a + 1);
        if (Math.Abs(d) < tiny) d = tiny;
        d = 1 / d;
        double h = d;
        for (int m = 1; m <= 10_000; m++)
        {
            // Even step: d_{2m} = m(b − m)x / ((a + 2m − 1)(a + 2m)).
            double numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
            d = 1 + numerator * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + numerator / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            h *= d * c;
            // Odd step: d_{2m+1} = −(a + m)(a + b + m)x / ((a + 2m)(a + 2m + 1)).
            numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
            d = 1 + numerator * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + numerator / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            double step = d * c;
            h *= step;
            if (Math.Abs(step - 1) < epsilon) return h;
        }
        throw new ArithmeticException($"The incomplete beta continued fraction did not converge for a={a}, b={b}, x={x}.");
    }

    /// <summary>ln Γ(x) for x &gt; 0 (Lanczos, g = 7, 9 terms; about 15 significant digits).</summary>
    public static double LogGamma(double x)
    {
        ReadOnlySpan<double> coefficients =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
        ];
        if (x < 0.5) // reflection: Γ(x)Γ(1 − x) = π / sin(πx)
            return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        x -= 1;
        double sum = coefficients[0];
        for (int i = 1; i < coefficients.Length; i++) sum += coefficients[i] / (x + i);
        double t = x + 7.5;
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(sum);
    }
}
