using BrainSeg.Mri;
using BrainSeg.Seg.Evaluation;
using BrainSeg.Seg.Statistics;
using NUnit.Framework;

namespace BrainSeg.Tests.Statistics;

public class StatisticsTests
{
    // Reference values computed with mpmath (30 digits): betainc(df/2, 1/2, 0, df/(df+t²), regularized=True),
    // which is what scipy.stats.t.sf(|t|, df) * 2 returns.
    [TestCase(2.0, 5, 0.10193947882985837)]
    [TestCase(1.0, 10, 0.34089313230205979)]
    [TestCase(3.5, 3, 0.039481037619282799)]
    [TestCase(0.5, 30, 0.62072300488512787)]
    [TestCase(10.0, 4, 0.00056200362271599122)]
    [TestCase(2.2281388519649385, 10, 0.05)] // the tabulated 97.5 % quantile of t(10)
    public void TwoSidedPMatchesReferenceValues(double t, int df, double expected)
    {
        Assert.That(PairedTTest.TwoSidedP(t, df), Is.EqualTo(expected).Within(1e-12 + 1e-9 * expected));
        Assert.That(PairedTTest.TwoSidedP(-t, df), Is.EqualTo(expected).Within(1e-12 + 1e-9 * expected), "two-sided: symmetric in t");
    }

    [TestCase(0.3)]
    [TestCase(1.7)]
    [TestCase(12.0)]
    public void ClosedFormsForOneAndTwoDegreesOfFreedom(double t)
    {
        // df = 1 is the Cauchy distribution; df = 2 has p = 1 − |t| / sqrt(2 + t²).
        Assert.That(PairedTTest.TwoSidedP(t, 1), Is.EqualTo(1 - 2 / Math.PI * Math.Atan(t)).Within(1e-13));
        Assert.That(PairedTTest.TwoSidedP(t, 2), Is.EqualTo(1 - t / Math.Sqrt(2 + t * t)).Within(1e-13));
    }

    [Test]
    public void IncompleteBetaAndLogGamma()
    {
        // I_0.4(2, 3) = 0.5248 exactly (a polynomial); I_0.3(1/2, 1/2) = (2/π) asin(sqrt(0.3)) (mpmath: 0.36901011956554538).
        Assert.That(PairedTTest.RegularizedIncompleteBeta(2, 3, 0.4), Is.EqualTo(0.5248).Within(1e-14));
        Assert.That(PairedTTest.RegularizedIncompleteBeta(0.5, 0.5, 0.3), Is.EqualTo(0.36901011956554538).Within(1e-13));
        Assert.That(PairedTTest.LogGamma(10), Is.EqualTo(Math.Log(362880)).Within(1e-12));
        Assert.That(PairedTTest.LogGamma(0.5), Is.EqualTo(0.5 * Math.Log(Math.PI)).Within(1e-13));
    }

    [Test]
    public void PairedTestOfSixImages()
    {
        // mpmath / scipy.stats.ttest_rel(b, a): t = 3.3709993123162115, p = 0.019868051523379401.
        double[] a = [0.81, 0.84, 0.79, 0.88, 0.86, 0.83];
        double[] b = [0.83, 0.85, 0.82, 0.89, 0.86, 0.86];
        var result = PairedTTest.Test(a, b);
        Assert.That(result.T, Is.EqualTo(3.3709993123162115).Within(1e-10));
        Assert.That(result.DegreesOfFreedom, Is.EqualTo(5));
        Assert.That(result.P, Is.EqualTo(0.019868051523379401).Within(1e-12));
        Assert.That(result.Mark, Is.EqualTo("*"));
        Assert.That(PairedTTest.Test(b, a).T, Is.EqualTo(-result.T).Within(1e-12));
        Assert.That(PairedTTest.Test(a, a).P, Is.EqualTo(1.0));
    }

    [Test]
    public void MeanAndSampleStandardDeviation()
    {
        var m = MeanSd.Of([2, 4, 4, 4, 5, 5, 7, 9]);
        Assert.That(m.Mean, Is.EqualTo(5));
        Assert.That(m.Sd, Is.EqualTo(Math.Sqrt(32.0 / 7)).Within(1e-14));
    }

    [Test]
    public void ComparisonBuildsRowsPerClassAndRejectsMismatches()
    {
        static EvaluationResult E(double wm, double gm, int components) => new("p", "r", 6,
            [new("background", 0.99, 1, 1, 0, 0), new("WM", wm, 1, 1, 0, 0), new("cGM", gm, 1, 1, 0, 0)], (wm + gm) / 2, components, 3);
        var a = new[] { E(0.81, 0.70, 40), E(0.84, 0.72, 35), E(0.79, 0.69, 50), E(0.88, 0.75, 41), E(0.86, 0.71, 38), E(0.83, 0.70, 44) };
        var b = new[] { E(0.83, 0.70, 20), E(0.85, 0.73, 18), E(0.82, 0.69, 25), E(0.89, 0.76, 22), E(0.86, 0.71, 19), E(0.86, 0.71, 21) };
        var comparison = MethodComparison.Compare(a, b, "without", "with");
        Assert.That(comparison.Rows.Select(r => r.Measure), Is.EqualTo(new[] { "Dice WM", "Dice cGM", "mean Dice", "components (total)" }));
        Assert.That(comparison.Rows[0].Test.P, Is.EqualTo(0.019868051523379401).Within(1e-12));
        Assert.That(comparison.Rows[3].Test.Mark, Is.EqualTo("**"));
        Assert.That(comparison.ToCsv().Split('\n')[1], Does.StartWith("Dice WM,without,"));
        Assert.That(comparison.ToMarkdown(), Does.Contain("| Dice WM |"));
        Assert.That(() => MethodComparison.Compare(a, b.Take(5).ToArray()), Throws.TypeOf<BadInputException>().With.Message.Contains("same image order"));
    }
}
