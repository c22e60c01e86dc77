using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;
using NUnit.Framework;
using static BrainSeg.Tests.Cpu.Reference;

namespace BrainSeg.Tests.Cpu;

/// <summary>
/// The optimised paths against naive float64 loops, and every backward op against its adjoint identity
/// or central finite differences in float64.
/// </summary>
public class CpuGradientTests
{
    // (N, C, H, W, K, R, S, dilation, padding): odd widths exercise the vector tails.
    private static readonly object[] ConvCases =
    [
        new object[] { 2, 3, 7, 9, 5, 3, 3, 1, 0 },
        new object[] { 1, 4, 13, 11, 3, 3, 3, 2, 2 },
        new object[] { 2, 5, 19, 21, 7, 3, 3, 4, 1 },
        new object[] { 1, 2, 25, 23, 17, 2, 3, 8, 3 },
        new object[] { 1, 3, 37, 35, 6, 3, 3, 16, 16 },
        new object[] { 3, 1, 6, 5, 2, 1, 1, 1, 0 },
        new object[] { 2, 32, 11, 11, 32, 3, 3, 1, 0 },
        new object[] { 1, 32, 20, 20, 32, 3, 3, 1, 1 }, // one image: the threads split its tiles instead
        new object[] { 2, 4, 60, 58, 5, 3, 3, 1, 0 }, // several tiles per output row, tiles running across row ends
        new object[] { 2, 3, 55, 57, 6, 3, 3, 16, 0 }, // wide dilation: tiles kept inside rows, taps skipped on padding
        new object[] { 2, 3, 5, 6, 4, 1, 1, 1, 1 }, // padding wider than the filter reaches: backward data by the plain loops
        new object[] { 1, 40, 6, 7, 7, 1, 1, 1, 0 }, // output channels not a multiple of the register tile
    ];

    [TestCaseSource(nameof(ConvCases))]
    public void ConvolutionMatchesNaiveReference(int n, int c, int h, int w, int k, int r, int s, int d, int pad)
    {
        var spec = new Conv2dSpec(d, pad);
        int ho = spec.OutputSize(h, r), wo = spec.OutputSize(w, s);
        var xs = Random(n * c * h * w, 1);
        var ws = Random(k * c * r * s, 2);
        var dys = Random(n * k * ho * wo, 3);
        var expectedY = Conv(xs, ws, n, c, h, w, k, r, s, spec);

        foreach (var dt in new[] { DType.Float32, DType.Float64 })
        {
            using var x = Make(xs, dt, n, c, h, w);
            using var wt = Make(ws, dt, k, c, r, s);
            using var dy = Make(dys, dt, n, k, ho, wo);
            using var y = Backend.Empty(new Shape(n, k, ho, wo), dt);
            using var dx = Backend.Empty(x.Shape, dt);
            using var dw = Backend.Empty(wt.Shape, dt);
            Backend.Fill(y, double.NaN);
            Backend.Fill(dx, double.NaN);
            Backend.Fill(dw, double.NaN);
            Backend.Conv2dForward(x, wt, y, spec);
            Backend.Conv2dBackwardData(dy, wt, dx, spec);
            Backend.Conv2dBackwardFilter(x, dy, dw, spec);
            var tolerance = dt == DType.Float32 ? 1e-5 : 1e-12;
            Assert.That(RelativeError(Values(y), expectedY), Is.LessThan(tolerance), $"forward {dt}");

            // Backward ops against the reference's adjoint: <conv(x), dy> = <x, convᵀ_data(dy)> = <w, convᵀ_filter(x, dy)>
            // checked coordinate-wise through the reference (each unit vector of x / w).
            var expectedDx = new double[xs.Length];
            var expectedDw = new double[ws.Length];
            ReferenceBackward(xs, ws, dys, n, c, h, w, k, r, s, spec, expectedDx, expectedDw);
            Assert.That(RelativeError(Values(dx), expectedDx), Is.LessThan(tolerance), $"backward data {dt}");
            Assert.That(RelativeError(Values(dw), expectedDw), Is.LessThan(tolerance), $"backward filter {dt}");
        }
    }

    /// <summary>The transpose of the reference loop, written as the same sum scattered back.</summary>
    private static void ReferenceBackward(double[] x, double[] w, double[] dy, int n, int c, int h, int wd, int k, int r, int s,
        Conv2dSpec spec, double[] dx, double[] dw)
    {
        int ho = spec.OutputSize(h, r), wo = spec.OutputSize(wd, s);
        for (var b = 0; b < n; b++)
            for (var o = 0; o < k; o++)
                for (var i = 0; i < ho; i++)
                    for (var j = 0; j < wo; j++)
                    {
                        var g = dy[((b * k + o) * ho + i) * wo + j];
                        for (var ch = 0; ch < c; ch++)
                            for (var p = 0; p < r; p++)
                                for (var q = 0; q < s; q++)
                                {
                                    int xi = i + p * spec.Dilation - spec.Padding, xj = j + q * spec.Dilation - spec.Padding;
                                    if (xi < 0 || xi >= h || xj < 0 || xj >= wd) continue;
                                    int xa = ((b * c + ch) * h + xi) * wd + xj, wa = ((o * c + ch) * r + p) * s + q;
                                    dx[xa] += w[wa] * g;
                                    dw[wa] += x[xa] * g;
                                }
                    }
    }

    [Test]
    public void ConvolutionBackwardSatisfiesTheAdjointIdentity()
    {
        var spec = new Conv2dSpec(Dilation: 2, Padding: 1);
        using var x = F64(Random(2 * 3 * 8 * 7, 4), 2, 3, 8, 7);
        using var w = F64(Random(4 * 3 * 3 * 3, 5), 4, 3, 3, 3);
        var yShape = new Shape(2, 4, spec.OutputSize(8, 3), spec.OutputSize(7, 3));
        using var dy = F64(Random((int)yShape.Numel, 6), yShape.ToArray());
        using var y = Backend.Empty(yShape, DType.Float64);
        using var dx = Backend.Empty(x.Shape, DType.Float64);
        using var dw = Backend.Empty(w.Shape, DType.Float64);
        Backend.Conv2dForward(x, w, y, spec);
        Backend.Conv2dBackwardData(dy, w, dx, spec);
        Backend.Conv2dBackwardFilter(x, dy, dw, spec);
        var lhs = Dot(y.ToHost<double>(), dy.ToHost<double>());
        Assert.That(Dot(x.ToHost<double>(), dx.ToHost<double>()), Is.EqualTo(lhs).Within(1e-12 * Math.Abs(lhs)));
        Assert.That(Dot(w.ToHost<double>(), dw.ToHost<double>()), Is.EqualTo(lhs).Within(1e-12 * Math.Abs(lhs)));
    }

    [TestCase(5)]
    [TestCase(1)] // one image: the threads split tiles and filter blocks instead of images
    public void Float32ConvolutionIsBitIdenticalRunToRunAndAcrossThreadCounts(int images)
    {
        var spec = new Conv2dSpec(Dilation: 2, Padding: 1);
        var results = new List<float[]>();
        foreach (var threads in new[] { 1, 2, 2 })
        {
            var backend = new CpuBackend(threads);
            using var x = Tensor.FromHost(backend, ToFloat(Random(images * 8 * 30 * 29, 7)), images, 8, 30, 29);
            using var w = Tensor.FromHost(backend, ToFloat(Random(6 * 8 * 3 * 3, 9)), 6, 8, 3, 3);
            using var dy = Tensor.FromHost(backend, ToFloat(Random(images * 6 * 28 * 27, 8)), images, 6, 28, 27);
            using var y = backend.Empty(dy.Shape, DType.Float32);
            using var dx = backend.Empty(x.Shape, DType.Float32);
            using var dw = backend.Empty(w.Shape, DType.Float32);
            backend.Conv2dForward(x, w, y, spec);
            backend.Conv2dBackwardData(dy, w, dx, spec);
            backend.Conv2dBackwardFilter(x, dy, dw, spec);
            results.Add([.. y.ToHost<float>(), .. dx.ToHost<float>(), .. dw.ToHost<float>()]);
        }
        Assert.That(results[1], Is.EqualTo(results[0]));
        Assert.That(results[2], Is.EqualTo(results[0]));
    }

    private static readonly object[] GemmCases =
    [
        new object[] { false, false, 7, 19, 5 },
        new object[] { true, false, 33, 17, 40 },
        new object[] { false, true, 6, 16, 3 },
        new object[] { true, true, 13, 29, 37 },
        new object[] { false, false, 70, 150, 300 },
        new object[] { true, true, 1, 1, 1 },
        new object[] { false, true, 130, 2100, 3 }, // more rows and columns than one packed block
    ];

    [TestCaseSource(nameof(GemmCases))]
    public void GemmMatchesNaiveReference(bool ta, bool tb, int m, int n, int k)
    {
        var a = Random(m * k, 11);
        var b = Random(k * n, 12);
        var c0 = Random(m * n, 13);
        foreach (var dt in new[] { DType.Float32, DType.Float64 })
            foreach (var beta in new[] { 0.0, 0.5 })
            {
                using var ta_ = Make(a, dt, ta ? k : m, ta ? m : k);
                using var tb_ = Make(b, dt, tb ? n : k, tb ? k : n);
                using var c = Make(c0, dt, m, n);
                if (beta == 0) Backend.Fill(c, double.NaN); // beta = 0 must ignore the old contents
                Backend.Gemm(ta, tb, 1.5, ta_, tb_, beta, c);
                var expected = Gemm(ta, tb, m, n, k, 1.5, a, b, beta, c0);
                Assert.That(RelativeError(Values(c), expected), Is.LessThan(dt == DType.Float32 ? 1e-5 : 1e-13), $"{dt} beta {beta}");
            }
    }

    [Test]
    public void BatchNormBackwardMatchesFiniteDifferences([Values] bool withGamma, [Values] bool relu)
    {
        const double eps = 1e-3, h = 1e-6;
        var shape = new Shape(2, 3, 2, 3);
        var xs = Random((int)shape.Numel, 21, 2);
        var r = Random((int)shape.Numel, 22);
        var gammaValues = new[] { 0.5, 1.5, -2.0 };
        var betaValues = new[] { 0.1, -0.2, 0.3 };

        double Loss(double[] xv, double[] gv, double[] bv)
        {
            using var x = F64(xv, shape.ToArray());
            using var gamma = F64(gv, 3);
            using var beta = F64(bv, 3);
            using var y = Backend.Empty(shape, DType.Float64);
            using var rm = F64(new double[3], 3);
            using var rv = F64(new double[3], 3);
            using var sm = Backend.Empty(new Shape(3), DType.Float64);
            using var si = Backend.Empty(new Shape(3), DType.Float64);
            Backend.BatchNormForwardTraining(x, withGamma ? gamma : null, beta, y, rm, rv, sm, si, 0.1, eps, relu);
            return Dot(y.ToHost<double>(), r);
        }

        {
            using var x = F64(xs, shape.ToArray());
            using var gamma = F64(gammaValues, 3);
            using var beta = F64(betaValues, 3);
            using var y = Backend.Empty(shape, DType.Float64);
            using var rm = F64(new double[3], 3);
            using var rv = F64(new double[3], 3);
            using var sm = Backend.Empty(new Shape(3), DType.Float64);
            using var si = Backend.Empty(new Shape(3), DType.Float64);
            using var dy = F64(r, shape.ToArray());
            using var dx = Backend.Empty(shape, DType.Float64);
            using var dgamma = Backend.Empty(new Shape(3), DType.Float64);
            using var dbeta = Backend.Empty(new Shape(3), DType.Float64);
            Backend.Fill(dgamma, 42);
            Backend.BatchNormForwardTraining(x, withGamma ? gamma : null, beta, y, rm, rv, sm, si, 0.1, eps, relu);
            Backend.BatchNormBackward(x, dy, withGamma ? gamma : null, beta, sm, si, dx, dgamma, dbeta, relu);
            if (relu) Assert.That(y.ToHost<double>(), Has.Some.EqualTo(0.0), "the ReLU must cut some outputs for the test to mean anything");

            var gv = withGamma ? gammaValues : [1.0, 1, 1];
            var numericDx = FiniteDifference(xs, v => Loss(v, gv, betaValues), h);
            var numericDbeta = FiniteDifference(betaValues, v => Loss(xs, gv, v), h);
            Assert.That(dx.ToHost<double>(), Is.EqualTo(numericDx).Within(1e-6), "dx");
            Assert.That(dbeta.ToHost<double>(), Is.EqualTo(numericDbeta).Within(1e-6), "dbeta");
            if (withGamma)
                Assert.That(dgamma.ToHost<double>(), Is.EqualTo(FiniteDifference(gammaValues, v => Loss(xs, v, betaValues), h)).Within(1e-6), "dgamma");
            else
                Assert.That(dgamma.ToHost<double>(), Is.EqualTo(new double[] { 42, 42, 42 }), "dgamma untouched without gamma");
        }
    }

    [Test]
    public void SoftmaxCrossEntropyBackwardMatchesFiniteDifferences()
    {
        var shape = new Shape(2, 4, 1, 3);
        var logits = Random((int)shape.Numel, 31, 3);
        var target = new double[logits.Length];
        var rng = new System.Random(32);
        for (var v = 0; v < 6; v++)
        {
            // Soft targets that sum to 1 per voxel.
            var raw = Enumerable.Range(0, 4).Select(_ => rng.NextDouble()).ToArray();
            for (var c = 0; c < 4; c++) target[(v / 3 * 4 + c) * 3 + v % 3] = raw[c] / raw.Sum();
        }

        double Loss(double[] l)
        {
            using var lt = F64(l, shape.ToArray());
            using var tt = F64(target, shape.ToArray());
            using var probs = Backend.Empty(shape, DType.Float64);
            using var loss = Backend.Empty(new Shape(1), DType.Float64);
            Backend.SoftmaxCrossEntropyForward(lt, tt, probs, loss);
            return loss.ToHost<double>()[0];
        }

        using var lt = F64(logits, shape.ToArray());
        using var tt = F64(target, shape.ToArray());
        using var probs = Backend.Empty(shape, DType.Float64);
        using var loss = Backend.Empty(new Shape(1), DType.Float64);
        using var dloss = F64([1], 1);
        using var dlogits = Backend.Empty(shape, DType.Float64);
        Backend.SoftmaxCrossEntropyForward(lt, tt, probs, loss);
        Backend.SoftmaxCrossEntropyBackward(probs, tt, dloss, dlogits);
        Assert.That(dlogits.ToHost<double>(), Is.EqualTo(FiniteDifference(logits, Loss, 1e-6)).Within(1e-8));
    }

    [Test]
    public void MaxPoolAndCropBackwardsAreAdjoints()
    {
        var xs = Random(2 * 2 * 7 * 7, 41);
        using var x = F64(xs, 2, 2, 7, 7);
        using var y = Backend.Empty(new Shape(2, 2, 3, 3), DType.Float64);
        using var arg = Backend.Empty(y.Shape, DType.Int32);
        Backend.MaxPoolForward(x, y, arg, window: 3, stride: 2);
        var dys = Random(18 * 2, 42);
        using var dy = F64(dys, 2, 2, 3, 3);
        using var dx = Backend.Empty(x.Shape, DType.Float64);
        Backend.MaxPoolBackward(dy, arg, dx);
        // Max pooling is locally linear: the gradient matches finite differences away from ties.
        double Pool(double[] v)
        {
            using var xt = F64(v, 2, 2, 7, 7);
            using var yt = Backend.Empty(y.Shape, DType.Float64);
            using var at = Backend.Empty(y.Shape, DType.Int32);
            Backend.MaxPoolForward(xt, yt, at, 3, 2);
            return Dot(yt.ToHost<double>(), dys);
        }
        Assert.That(dx.ToHost<double>(), Is.EqualTo(FiniteDifference(xs, Pool, 1e-7)).Within(1e-7));

        using var crop = Backend.Empty(new Shape(2, 2, 4, 3), DType.Float64);
        Backend.CenterCrop(x, crop);
        var cs = Random(2 * 2 * 4 * 3, 43);
        using var c = F64(cs, 2, 2, 4, 3);
        using var padded = Backend.Empty(x.Shape, DType.Float64);
        Backend.CenterPad(c, padded);
        Assert.That(Dot(crop.ToHost<double>(), cs), Is.EqualTo(Dot(xs, padded.ToHost<double>())).Within(1e-12));
    }

    private static double[] FiniteDifference(double[] at, Func<double[], double> f, double h)
    {
        var grad = new double[at.Length];
        for (var i = 0; i < at.Length; i++)
        {
            var plus = (double[])at.Clone();
            var minus = (double[])at.Clone();
            plus[i] += h;
            minus[i] -= h;
            grad[i] = (f(plus) - f(minus)) / (2 * h);
        }
        return grad;
    }
}
