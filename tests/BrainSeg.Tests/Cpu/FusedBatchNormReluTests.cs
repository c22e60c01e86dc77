using BrainSeg.Engine;
using NUnit.Framework;
using static BrainSeg.Tests.Cpu.Reference;

namespace BrainSeg.Tests.Cpu;

/// <summary>
/// Batch norm with the fused ReLU against batch norm followed by the separate ReLU ops, bit for bit: the
/// fusion saves a pass and a tensor, never a rounding.
/// </summary>
[TestFixture(DType.Float32)]
[TestFixture(DType.Float64)]
public class FusedBatchNormReluTests(DType dt)
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
        Backend.BatchNormBackward(x, dm, gamma, stats.SaveMean, stats.SaveInvStd, grads.Dx, grads.Dgamma, grads.Dbeta);

        // Fused: one forward, one backward that masks dy by its own output.
        using var fusedStats = NewStats();
        using var fused = Backend.Empty(XShape, dt);
        Backend.BatchNormForwardTraining(x, gamma, beta, fused, fusedStats.RunningMean, fusedStats.RunningVar, fusedStats.SaveMean,
            fusedStats.SaveInvStd, 0.1, 1e-4, relu: true);
        using var fusedGrads = NewGrads();
        Backend.BatchNormBackward(x, dy, gamma, fusedStats.SaveMean, fusedStats.SaveInvStd, fusedGrads.Dx, fusedGrads.Dgamma, fusedGrads.Dbeta,
            reluOutput: fused);

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
