using BrainSeg.Engine;
using NUnit.Framework;
using static BrainSeg.Tests.Cpu.Reference;

namespace BrainSeg.Tests.Cpu;

/// <summary>
/// Fused ops against the separate ops they replace, bit for bit: batch norm with its ReLU, and the convolution
/// with its bias and ReLU. A fusion saves passes and tensors, never a rounding.
/// </summary>
[TestFixture(DType.Float32)]
[TestFixture(DType.Float64)]
public class FusedOpsTests(DType dt)
{
    private static readonly Shape XShape = new(3, 4, 5, 7);
    private static readonly Shape C = new(4);

    [Test]
    public void TrainingForwardAndBackwardEqualBatchNormThenRelu([Values] bool withGamma)
    {
        using var x = Make(Random((int)XShape.Numel, 1, 3), XShape);
        using var gamma = withGamma ? Make([0.5, 1.5, -2, 1], C) : null;
        using var beta = Make([0.3, -0.2, 0, 0.1], C);
        using var dy = Make(Random((int)XShape.Numel, 2), XShape);

        // Unfused: BN → y, ReLU → r; backward ReLU → dm, BN → dx.
        using var stats = NewStats();
        using var y = Backend.Empty(XShape, dt);
        using var r = Backend.Empty(XShape, dt);
        Backend.BatchNormForwardTraining(x, gamma, beta, y, stats.RunningMean, stats.RunningVar, stats.SaveMean, stats.SaveInvStd, 0.1, 1e-4);
        Backend.ReluForward(y, r);
        using var dm = Backend.Empty(XShape, dt);
        Backend.ReluBackward(r, dy, dm);
        using var grads = NewGrads();
        Backend.BatchNormBackward(x, dm, gamma, beta, stats.SaveMean, stats.SaveInvStd, grads.Dx, grads.Dgamma, grads.Dbeta);

        // Fused: one forward, one backward that recomputes the ReLU's mask from x and the saved statistics.
        using var fusedStats = NewStats();
        using var fused = Backend.Empty(XShape, dt);
        Backend.BatchNormForwardTraining(x, gamma, beta, fused, fusedStats.RunningMean, fusedStats.RunningVar, fusedStats.SaveMean,
            fusedStats.SaveInvStd, 0.1, 1e-4, relu: true);
        using var fusedGrads = NewGrads();
        Backend.BatchNormBackward(x, dy, gamma, beta, fusedStats.SaveMean, fusedStats.SaveInvStd, fusedGrads.Dx, fusedGrads.Dgamma,
            fusedGrads.Dbeta, relu: true);

        Assert.That(Bits(r).Count(b => b == 0), Is.InRange(XShape.Numel / 4, 3 * XShape.Numel / 4), "about half the outputs are rectified");
        Assert.Multiple(() =>
        {
            Assert.That(Bits(fused), Is.EqualTo(Bits(r)), "y");
            Assert.That(Bits(fusedStats.RunningMean), Is.EqualTo(Bits(stats.RunningMean)), "running mean");
            Assert.That(Bits(fusedStats.RunningVar), Is.EqualTo(Bits(stats.RunningVar)), "running variance");
            Assert.That(Bits(fusedGrads.Dx), Is.EqualTo(Bits(grads.Dx)), "dx");
            Assert.That(Bits(fusedGrads.Dbeta), Is.EqualTo(Bits(grads.Dbeta)), "dbeta");
            if (withGamma) Assert.That(Bits(fusedGrads.Dgamma), Is.EqualTo(Bits(grads.Dgamma)), "dgamma");
        });
    }

    // The backward's recomputed mask at the edge of rounding: with μ = 0, invStd = 2⁻⁶⁰, no γ and β = 0 the forward's
    // output is T(x·2⁻⁶⁰), which float rounds to 0 for x = 2⁻⁹¹ and 2⁻⁹⁰ (2⁻¹⁵¹, and the tie 2⁻¹⁵⁰) while double keeps
    // them; exactly 0 and negative values never pass.
    [Test]
    public void FusedBackwardMasksExactlyWhereTheRoundedOutputIsPositive()
    {
        double[] xs = [Math.ScaleB(1, -91), Math.ScaleB(1, -90), Math.ScaleB(1, -89), 0, -Math.ScaleB(1, -89), 1, -1];
        var shape = new Shape(xs.Length, 1, 1, 1);
        var one = new Shape(1);
        var invStd = Math.ScaleB(1, -60);
        var positive = Array.ConvertAll(xs, v => dt == DType.Float32 ? (float)(v * invStd) > 0 : v * invStd > 0);
        var tiny = dt == DType.Float64;
        Assert.That(positive, Is.EqualTo(new[] { tiny, tiny, true, false, false, true, false }), "the expected mask");
        using var x = Make(xs, shape);
        using var beta = Make([0], one);
        using var saveMean = Make([0], one);
        using var saveInvStd = Make([invStd], one);
        using var dy = Make(Array.ConvertAll(xs, _ => 1.0), shape);
        using var masked = Make(Array.ConvertAll(positive, p => p ? 1.0 : 0), shape);
        using var fusedDx = Backend.Empty(shape, dt);
        using var fusedDbeta = Backend.Empty(one, dt);
        using var dx = Backend.Empty(shape, dt);
        using var dbeta = Backend.Empty(one, dt);
        Backend.BatchNormBackward(x, dy, null, beta, saveMean, saveInvStd, fusedDx, null, fusedDbeta, relu: true);
        Backend.BatchNormBackward(x, masked, null, beta, saveMean, saveInvStd, dx, null, dbeta);
        Assert.Multiple(() =>
        {
            Assert.That(dt == DType.Float32 ? fusedDbeta.ToHost<float>()[0] : fusedDbeta.ToHost<double>()[0], Is.EqualTo(positive.Count(p => p)), "dbeta = Σ of the unmasked dy");
            Assert.That(Bits(fusedDx), Is.EqualTo(Bits(dx)), "dx");
        });
    }

    [Test]
    public void InferenceForwardEqualsBatchNormThenRelu()
    {
        using var x = Make(Random((int)XShape.Numel, 3, 3), XShape);
        using var gamma = Make([0.5, 1.5, -2, 1], C);
        using var beta = Make([0.3, -0.2, 0, 0.1], C);
        using var mean = Make([0.1, -0.3, 0.2, 0], C);
        using var variance = Make([0.5, 2, 1, 1.5], C);
        using var y = Backend.Empty(XShape, dt);
        using var r = Backend.Empty(XShape, dt);
        using var fused = Backend.Empty(XShape, dt);
        Backend.BatchNormForwardInference(x, gamma, beta, y, mean, variance, 1e-4);
        Backend.ReluForward(y, r);
        Backend.BatchNormForwardInference(x, gamma, beta, fused, mean, variance, 1e-4, relu: true);
        Assert.That(Bits(r), Does.Contain(0L), "some outputs are rectified");
        Assert.That(Bits(fused), Is.EqualTo(Bits(r)));
    }

    // (N, C, H, W, K, R, dilation, padding): in float32 the tile path (several tiles per row, tiles across row ends and
    // inside rows, output channels not a multiple of the 4-row tile, 1×1, padding past the filter); float64 runs the
    // plain loops and a separate bias and ReLU pass.
    private static readonly object[] ConvCases =
    [
        new object[] { 2, 3, 9, 11, 6, 3, 1, 0 },
        new object[] { 1, 5, 40, 38, 7, 3, 1, 1 },
        new object[] { 2, 3, 55, 57, 5, 3, 16, 0 },
        new object[] { 3, 8, 6, 7, 9, 1, 1, 0 },
        new object[] { 1, 2, 5, 6, 3, 1, 1, 2 },
    ];

    [TestCaseSource(nameof(ConvCases))]
    public void ConvolutionWithBiasAndReluEqualsTheSeparateOps(int n, int c, int h, int w, int k, int r, int d, int pad)
    {
        var spec = new Conv2dSpec(d, pad);
        var yShape = new Shape(n, k, spec.OutputSize(h, r), spec.OutputSize(w, r));
        var xs = Random(n * c * h * w, 4);
        xs[0] = double.NaN; // a NaN input stays NaN through the ReLU, fused or not
        using var x = Make(xs, new Shape(n, c, h, w));
        using var filter = Make(Random(k * c * r * r, 5), new Shape(k, c, r, r));
        using var bias = Make(Random(k, 6, 0.5), new Shape(k));

        foreach (var (withBias, relu) in new[] { (true, true), (true, false), (false, true) })
        {
            using var convolved = Backend.Empty(yShape, dt);
            using var rectified = Backend.Empty(yShape, dt);
            Backend.Conv2dForward(x, filter, convolved, spec);
            if (withBias) Backend.AddChannelBias(convolved, bias);
            if (relu) Backend.ReluForward(convolved, rectified);
            var separate = relu ? rectified : convolved;
            using var fused = Backend.Empty(yShape, dt);
            Backend.Fill(fused, double.NaN);
            Backend.Conv2dForward(x, filter, fused, spec, withBias ? bias : null, relu);

            var bits = Bits(separate);
            if (relu) Assert.That(bits.Count(b => b == 0), Is.InRange(1, yShape.Numel - 1), "some outputs rectified, some not");
            Assert.That(Bits(fused), Is.EqualTo(bits), $"bias {withBias}, relu {relu}");
        }
    }

    private Tensor Make(double[] values, Shape shape) =>
        dt == DType.Float32 ? Tensor.FromHost(Backend, ToFloat(values), shape.ToArray()) : Tensor.FromHost(Backend, values, shape.ToArray());

    /// <summary>The raw bits of every element (float32 widened to long), so that only identical values compare equal.</summary>
    private static long[] Bits(Tensor t) => t.DType == DType.Float32
        ? Array.ConvertAll(t.ToHost<float>(), v => (long)BitConverter.SingleToInt32Bits(v))
        : Array.ConvertAll(t.ToHost<double>(), BitConverter.DoubleToInt64Bits);

    private Stats NewStats() => new(Make([0, 0.5, -1, 2], C), Make([1, 2, 0.5, 1], C), Backend.Empty(C, dt), Backend.Empty(C, dt));

    private Grads NewGrads() => new(Backend.Empty(XShape, dt), Backend.Empty(C, dt), Backend.Empty(C, dt));

    private sealed record Stats(Tensor RunningMean, Tensor RunningVar, Tensor SaveMean, Tensor SaveInvStd) : IDisposable
    {
        public void Dispose()
        {
            foreach (var t in new[] { RunningMean, RunningVar, SaveMean, SaveInvStd }) t.Dispose();
        }
    }

    private sealed record Grads(Tensor Dx, Tensor Dgamma, Tensor Dbeta) : IDisposable
    {
        public void Dispose()
        {
            Dx.Dispose();
            Dgamma.Dispose();
            Dbeta.Dispose();
        }
    }
}
