using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;
using NUnit.Framework;
using static BrainSeg.Tests.Cpu.Reference;

namespace BrainSeg.Tests.Cpu;

/// <summary>Forward values of every op on small cases worked out by hand.</summary>
public class CpuOpsTests
{
    [Test]
    public void MemoryOpsRoundTripEveryDType()
    {
        using var f = F32([1, 2, 3], 3);
        using var d = Backend.Empty(new Shape(3), DType.Float64);
        using var i = Backend.Empty(new Shape(2), DType.Int32);
        Backend.Fill(d, 2.5);
        Backend.Fill(i, 7);
        using var f2 = Backend.Empty(new Shape(3), DType.Float32);
        Backend.Copy(f, f2);
        Assert.Multiple(() =>
        {
            Assert.That(f2.ToHost<float>(), Is.EqualTo(new float[] { 1, 2, 3 }));
            Assert.That(d.ToHost<double>(), Is.EqualTo(new[] { 2.5, 2.5, 2.5 }));
            Assert.That(i.ToHost<int>(), Is.EqualTo(new[] { 7, 7 }));
            Assert.That(f.HostSpan<float>()[1], Is.EqualTo(2f));
            Assert.Throws<InvalidOperationException>(() => f.HostSpan<double>());
            Assert.Throws<ArgumentException>(() => Backend.Copy(f, d));
        });
    }

    [Test]
    public void ElementwiseOps()
    {
        using var a = F64([1, 2, 3], 3);
        using var b = F64([4, 5, 6], 3);
        using var y = Backend.Empty(new Shape(3), DType.Float64);
        Backend.Add(a, b, y);
        Assert.That(y.ToHost<double>(), Is.EqualTo(new double[] { 5, 7, 9 }));
        Backend.Multiply(a, b, y);
        Assert.That(y.ToHost<double>(), Is.EqualTo(new double[] { 4, 10, 18 }));
        Backend.AddScaled(y, a, -2);
        Assert.That(y.ToHost<double>(), Is.EqualTo(new double[] { 2, 6, 12 }));
        Backend.Scale(y, 0.5);
        Assert.That(y.ToHost<double>(), Is.EqualTo(new double[] { 1, 3, 6 }));
        using var wrong = F64([1, 2], 2);
        Assert.Throws<ArgumentException>(() => Backend.Add(a, wrong, y));
    }

    [Test]
    public void ConvolutionValidHandComputed()
    {
        // y[i,j] = x[i,j] + x[i+1,j+1] for the filter [[1,0],[0,1]].
        using var x = F32([1, 2, 3, 4, 5, 6, 7, 8, 9], 1, 1, 3, 3);
        using var w = F32([1, 0, 0, 1], 1, 1, 2, 2);
        using var y = Backend.Empty(new Shape(1, 1, 2, 2), DType.Float32);
        Backend.Conv2dForward(x, w, y, Conv2dSpec.Valid);
        Assert.That(y.ToHost<float>(), Is.EqualTo(new float[] { 6, 8, 12, 14 }));
    }

    [Test]
    public void ConvolutionDilatedPaddedHandComputed([Values] bool float64)
    {
        // Dilation 2, padding 1: y[i,j] = x[i−1,j−1] + x[i+1,j+1], zero outside.
        var xs = new double[] { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
        var ws = new double[] { 1, 0, 0, 1 };
        var dt = float64 ? DType.Float64 : DType.Float32;
        using var x = float64 ? F64(xs, 1, 1, 3, 3) : F32(ToFloat(xs), 1, 1, 3, 3);
        using var w = float64 ? F64(ws, 1, 1, 2, 2) : F32(ToFloat(ws), 1, 1, 2, 2);
        using var y = Backend.Empty(new Shape(1, 1, 3, 3), dt);
        Backend.Conv2dForward(x, w, y, new Conv2dSpec(Dilation: 2, Padding: 1));
        var got = float64 ? y.ToHost<double>() : ToDouble(y.ToHost<float>());
        Assert.That(got, Is.EqualTo(new double[] { 5, 6, 0, 8, 10, 2, 0, 4, 5 }));
    }

    [Test]
    public void ConvolutionRejectsMismatchedShapes()
    {
        using var x = F32(new float[18], 1, 2, 3, 3);
        using var w = F32(new float[4], 1, 1, 2, 2);
        using var y = Backend.Empty(new Shape(1, 1, 2, 2), DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2dForward(x, w, y, Conv2dSpec.Valid));
        Assert.That(e!.Message, Does.Contain("Conv2dForward").And.Contain("channels"));
    }

    [Test]
    public void ChannelBiasAndSum()
    {
        using var y = F64([1, 2, 3, 4, 5, 6, 7, 8], 2, 2, 1, 2);
        using var bias = F64([10, 20], 2);
        Backend.AddChannelBias(y, bias);
        Assert.That(y.ToHost<double>(), Is.EqualTo(new double[] { 11, 12, 23, 24, 15, 16, 27, 28 }));
        using var db = Backend.Empty(new Shape(2), DType.Float64);
        Backend.ChannelSum(y, db);
        Assert.That(db.ToHost<double>(), Is.EqualTo(new double[] { 11 + 12 + 15 + 16, 23 + 24 + 27 + 28 }));
        using var flat = F32([1, 2, 3, 4], 2, 2);
        using var db2 = Backend.Empty(new Shape(2), DType.Float32);
        Backend.ChannelSum(flat, db2);
        Assert.That(db2.ToHost<float>(), Is.EqualTo(new float[] { 4, 6 }));
    }

    [Test]
    public void BatchNormTrainingAndInference()
    {
        // One channel with values 1..4: μ = 2.5, σ² = 1.25.
        using var x = F64([1, 2, 3, 4], 2, 1, 1, 2);
        using var gamma = F64([2], 1);
        using var beta = F64([1], 1);
        using var y = Backend.Empty(x.Shape, DType.Float64);
        using var rm = F64([0], 1);
        using var rv = F64([1], 1);
        using var sm = Backend.Empty(new Shape(1), DType.Float64);
        using var si = Backend.Empty(new Shape(1), DType.Float64);
        Backend.BatchNormForwardTraining(x, gamma, beta, y, rm, rv, sm, si, momentum: 0.1, eps: 1e-5);
        var inv = 1 / Math.Sqrt(1.25 + 1e-5);
        var expected = new[] { 1, 2, 3, 4 }.Select(v => 2 * (v - 2.5) * inv + 1).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(y.ToHost<double>(), Is.EqualTo(expected).Within(1e-12));
            Assert.That(sm.ToHost<double>()[0], Is.EqualTo(2.5).Within(1e-15));
            Assert.That(si.ToHost<double>()[0], Is.EqualTo(inv).Within(1e-12));
            Assert.That(rm.ToHost<double>()[0], Is.EqualTo(0.25).Within(1e-15));
            Assert.That(rv.ToHost<double>()[0], Is.EqualTo(0.9 + 0.1 * 1.25 * 4 / 3).Within(1e-15));
        });
        Backend.BatchNormForwardInference(x, null, beta, y, rm, rv, 1e-5);
        var infInv = 1 / Math.Sqrt(rv.ToHost<double>()[0] + 1e-5);
        Assert.That(y.ToHost<double>(), Is.EqualTo(new[] { 1, 2, 3, 4 }.Select(v => (v - 0.25) * infInv + 1).ToArray()).Within(1e-12));
    }

    [Test]
    public void BatchNormStatisticsHoldWhenTheFirstElementIsFarFromTheMean()
    {
        // The moments are taken about the channel's first element in one pass; an outlier there must not cost
        // accuracy against the two-pass textbook form.
        var values = Random(4 * 2 * 9 * 11, 5);
        for (var c = 0; c < 2; c++) values[c * 99] = 1e6 * (c + 1);
        using var x = F64(values, 4, 2, 9, 11);
        using var beta = F64([0, 0], 2);
        using var y = Backend.Empty(x.Shape, DType.Float64);
        using var rm = F64([0, 0], 2);
        using var rv = F64([1, 1], 2);
        using var sm = Backend.Empty(new Shape(2), DType.Float64);
        using var si = Backend.Empty(new Shape(2), DType.Float64);
        Backend.BatchNormForwardTraining(x, null, beta, y, rm, rv, sm, si, 0.1, 1e-5);
        for (var c = 0; c < 2; c++)
        {
            var channel = Enumerable.Range(0, 4).SelectMany(n => values.Skip((n * 2 + c) * 99).Take(99)).ToArray();
            var mean = channel.Average();
            var variance = channel.Sum(v => (v - mean) * (v - mean)) / channel.Length;
            Assert.That(sm.ToHost<double>()[c], Is.EqualTo(mean).Within(1e-12 * Math.Abs(mean)), $"mean {c}");
            Assert.That(si.ToHost<double>()[c], Is.EqualTo(1 / Math.Sqrt(variance + 1e-5)).Within(1e-12 / Math.Sqrt(variance)), $"inverse std {c}");
        }
    }

    [Test]
    public void BatchNormFloat32MatchesFloat64OnLargeOffsets([Values] bool relu)
    {
        // A large mean with a small spread: one-pass float sums would lose the variance. Planes of 25 elements
        // exercise the vector loops and their scalar tails.
        var values = Random(2 * 3 * 5 * 5, 1).Select(v => 1000 + v).ToArray();
        var grads = Random(values.Length, 2);
        double[][] Run(DType dt)
        {
            // Both runs see the float-rounded inputs.
            using var x = Make(ToDouble(ToFloat(values)), dt, 2, 3, 5, 5);
            using var dy = Make(ToDouble(ToFloat(grads)), dt, 2, 3, 5, 5);
            using var gamma = Make([0.5, 2, -1], dt, 3);
            using var beta = Make([0.1, 0, -0.3], dt, 3);
            using var y = Backend.Empty(x.Shape, dt);
            using var dx = Backend.Empty(x.Shape, dt);
            using var dgamma = Backend.Empty(new Shape(3), dt);
            using var dbeta = Backend.Empty(new Shape(3), dt);
            using var rm = Backend.Empty(new Shape(3), dt);
            using var rv = Backend.Empty(new Shape(3), dt);
            using var sm = Backend.Empty(new Shape(3), dt);
            using var si = Backend.Empty(new Shape(3), dt);
            foreach (var t in new[] { rm, rv }) Backend.Fill(t, 0);
            Backend.BatchNormForwardTraining(x, gamma, beta, y, rm, rv, sm, si, 0.1, 1e-5, relu);
            Backend.BatchNormBackward(x, dy, gamma, beta, sm, si, dx, dgamma, dbeta, relu);
            return [Values(y), Values(dx), Values(dgamma), Values(dbeta)];
        }
        var (single, reference) = (Run(DType.Float32), Run(DType.Float64));
        // Both passes use the mean saved as float (as cuDNN saves it; the forward normalises with the saved statistics
        // so that the backward recomputes the fused ReLU's mask exactly): its rounding, ulp(1000)/σ in x̂, shows in y and
        // in dγ = Σ dy·x̂ at a few 1e-5.
        var tolerances = new[] { 5e-5, 1e-5, 1e-4, 1e-5 };
        for (var i = 0; i < single.Length; i++)
            Assert.That(RelativeError(single[i], reference[i]), Is.LessThan(tolerances[i]), new[] { "y", "dx", "dgamma", "dbeta" }[i]);
    }

    [Test]
    public void ReluForwardKeepsNaNAndTurnsNegativeZeroPositive()
    {
        // IEEE maximum's rules, in the vector body (first 8) and the scalar tail alike.
        float[] values = [float.NaN, -0f, -1, 3, 0, -2.5f, float.NegativeInfinity, 5, float.NaN, -0f, 7];
        using var x = F32(values, values.Length);
        using var y = Backend.Empty(x.Shape, DType.Float32);
        Backend.ReluForward(x, y);
        var r = y.ToHost<float>();
        Assert.Multiple(() =>
        {
            Assert.That(float.IsNaN(r[0]) && float.IsNaN(r[8]), "NaN stays NaN");
            Assert.That(BitConverter.SingleToInt32Bits(r[1]), Is.Zero, "−0 becomes +0 (vector)");
            Assert.That(BitConverter.SingleToInt32Bits(r[9]), Is.Zero, "−0 becomes +0 (tail)");
            Assert.That(r[2..8], Is.EqualTo(new float[] { 0, 3, 0, 0, 0, 5 }));
            Assert.That(r[10], Is.EqualTo(7));
        });
    }

    [Test]
    public void ReluForwardAndBackward()
    {
        using var x = F32([-1, 0, 2, -3], 4);
        using var y = Backend.Empty(x.Shape, DType.Float32);
        Backend.ReluForward(x, y);
        Assert.That(y.ToHost<float>(), Is.EqualTo(new float[] { 0, 0, 2, 0 }));
        using var dy = F32([5, 6, 7, 8], 4);
        using var dx = Backend.Empty(x.Shape, DType.Float32);
        Backend.ReluBackward(y, dy, dx);
        Assert.That(dx.ToHost<float>(), Is.EqualTo(new float[] { 0, 0, 7, 0 }));
    }

    [Test]
    public void DropoutMaskFollowsPhiloxAndKeepsAboutOneMinusP()
    {
        const double p = 0.3;
        const ulong seed = 12345, offset = 7;
        using var mask = Backend.Empty(new Shape(100_003), DType.Float32);
        Backend.DropoutMask(mask, p, seed, offset);
        var m = mask.ToHost<float>();
        var threshold = Philox.DropThreshold(p);
        var keep = (float)(1 / (1 - p));
        var mismatches = 0;
        for (var i = 0; i < m.Length; i++)
        {
            var kept = (Philox.Word(seed, offset + (ulong)i) >> 8) >= threshold;
            if (m[i] != (kept ? keep : 0f)) mismatches++;
        }
        var keptFraction = m.Count(v => v != 0) / (double)m.Length;
        Assert.Multiple(() =>
        {
            Assert.That(mismatches, Is.Zero);
            Assert.That(keptFraction, Is.EqualTo(1 - p).Within(0.01));
        });
        using var shifted = Backend.Empty(new Shape(10), DType.Float64);
        Backend.DropoutMask(shifted, p, seed, offset + 3);
        Assert.That(shifted.ToHost<double>().Select(v => v != 0), Is.EqualTo(m.Skip(3).Take(10).Select(v => v != 0)));
    }

    [Test]
    public void DropoutBackwardRegeneratesTheForwardsMask()
    {
        // No mask is stored: the backward draws the same words again from the forward's offset.
        var random = new BrainSeg.Engine.Autograd.RandomStream(seed: 5, offset: 11);
        using var x = F32([.. Enumerable.Range(1, 257).Select(i => i * 0.25f)], 257);
        x.RequiresGrad = true;
        using var tape = new BrainSeg.Engine.Autograd.Tape(Backend);
        var y = BrainSeg.Engine.Autograd.F.Dropout(tape, x, 0.3, random);
        using var dy = F32([.. Enumerable.Range(0, 257).Select(i => 1 - i * 0.5f)], 257);
        tape.Backward(y, dy);
        float keep = (float)(1 / (1 - 0.3));
        var (ys, dys) = (y.ToHost<float>(), dy.ToHost<float>());
        var expected = ys.Select((v, i) => v != 0 ? dys[i] * keep : 0f).ToArray();
        Assert.That(ys.Count(v => v == 0), Is.InRange(40, 120), "about 30% dropped");
        Assert.That(x.Grad!.ToHost<float>(), Is.EqualTo(expected));
    }

    [Test]
    public void DropoutMaskMatchesPhiloxWordByWordAtEveryAlignment([Values(0UL, 1UL, 2UL, 3UL, 6UL)] ulong offset, [Values(1, 33, 70)] int length)
    {
        // Eight blocks at a time where the stream is block-aligned and 32 elements remain, one word at a time elsewhere.
        const double p = 0.5;
        using var mask = Backend.Empty(new Shape(length), DType.Float32);
        Backend.DropoutMask(mask, p, seed: 99, offset);
        var expected = Enumerable.Range(0, length)
            .Select(i => (Philox.Word(99, offset + (ulong)i) >> 8) >= Philox.DropThreshold(p) ? 2f : 0f);
        Assert.That(mask.ToHost<float>(), Is.EqualTo(expected));
    }

    [Test]
    public void MaxPoolTiesGoToTheFirstInRowMajorOrder()
    {
        using var x = F32([1, 3, 3, 0, 2, 3, 1, 3], 1, 1, 2, 4);
        using var y = Backend.Empty(new Shape(1, 1, 1, 2), DType.Float32);
        using var arg = Backend.Empty(new Shape(1, 1, 1, 2), DType.Int32);
        Backend.MaxPoolForward(x, y, arg, window: 2, stride: 2);
        Assert.That(y.ToHost<float>(), Is.EqualTo(new float[] { 3, 3 }));
        Assert.That(arg.ToHost<int>(), Is.EqualTo(new[] { 1, 2 }));
    }

    [Test]
    public void MaxPoolBackwardAccumulatesOverlappingWindows()
    {
        using var x = F64([1, 5, 1, 0, 0, 0], 1, 1, 2, 3);
        using var y = Backend.Empty(new Shape(1, 1, 1, 2), DType.Float64);
        using var arg = Backend.Empty(new Shape(1, 1, 1, 2), DType.Int32);
        Backend.MaxPoolForward(x, y, arg, window: 2, stride: 1);
        Assert.That(arg.ToHost<int>(), Is.EqualTo(new[] { 1, 1 }));
        using var dy = F64([2, 3], 1, 1, 1, 2);
        using var dx = Backend.Empty(x.Shape, DType.Float64);
        Backend.Fill(dx, double.NaN);
        Backend.MaxPoolBackward(dy, arg, dx);
        Assert.That(dx.ToHost<double>(), Is.EqualTo(new double[] { 0, 5, 0, 0, 0, 0 }));
    }

    [Test]
    public void ConcatAndSplitChannels()
    {
        using var a = F32([1, 2, 3, 4], 2, 1, 1, 2);
        using var b = F32([5, 6, 7, 8, 9, 10, 11, 12], 2, 2, 1, 2);
        using var y = Backend.Empty(new Shape(2, 3, 1, 2), DType.Float32);
        Backend.ConcatChannels(a, b, y);
        Assert.That(y.ToHost<float>(), Is.EqualTo(new float[] { 1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12 }));
        using var da = Backend.Empty(a.Shape, DType.Float32);
        using var db = Backend.Empty(b.Shape, DType.Float32);
        Backend.SplitChannels(y, da, db);
        Assert.That(da.ToHost<float>(), Is.EqualTo(a.ToHost<float>()));
        Assert.That(db.ToHost<float>(), Is.EqualTo(b.ToHost<float>()));
        Backend.Fill(db, 0);
        Backend.SplitChannels(y, null, db);
        Assert.That(db.ToHost<float>(), Is.EqualTo(b.ToHost<float>()));
    }

    [Test]
    public void CenterCropAndItsAdjointPad()
    {
        using var x = F64(Enumerable.Range(0, 20).Select(v => (double)v).ToArray(), 1, 1, 4, 5);
        using var y = Backend.Empty(new Shape(1, 1, 2, 2), DType.Float64);
        Backend.CenterCrop(x, y);
        Assert.That(y.ToHost<double>(), Is.EqualTo(new double[] { 6, 7, 11, 12 }));
        using var padded = Backend.Empty(x.Shape, DType.Float64);
        Backend.Fill(padded, double.NaN);
        Backend.CenterPad(y, padded);
        var expected = new double[20];
        expected[6] = 6; expected[7] = 7; expected[11] = 11; expected[12] = 12;
        Assert.That(padded.ToHost<double>(), Is.EqualTo(expected));
    }

    [Test]
    public void SoftmaxCrossEntropyIsStableAndExact([Values(0.0, 1000.0)] double shift)
    {
        // logits (0, ln 3) → probs (1/4, 3/4); voxel 1 is the mirror image.
        using var logits = F64([shift, shift + Math.Log(3), shift + Math.Log(3), shift], 1, 2, 1, 2);
        using var target = F64([0, 1, 1, 0], 1, 2, 1, 2);
        using var probs = Backend.Empty(logits.Shape, DType.Float64);
        using var loss = Backend.Empty(new Shape(1), DType.Float64);
        Backend.SoftmaxCrossEntropyForward(logits, target, probs, loss);
        Assert.That(probs.ToHost<double>(), Is.EqualTo(new[] { 0.25, 0.75, 0.75, 0.25 }).Within(1e-12));
        Assert.That(loss.ToHost<double>()[0], Is.EqualTo(-(Math.Log(0.75) + Math.Log(0.75)) / 2).Within(1e-12));
        using var softmax = Backend.Empty(logits.Shape, DType.Float64);
        Backend.SoftmaxForward(logits, softmax);
        Assert.That(softmax.ToHost<double>(), Is.EqualTo(probs.ToHost<double>()));

        using var dloss = F64([2], 1);
        using var dlogits = Backend.Empty(logits.Shape, DType.Float64);
        Backend.SoftmaxCrossEntropyBackward(probs, target, dloss, dlogits);
        Assert.That(dlogits.ToHost<double>(), Is.EqualTo(new[] { 0.25, -0.25, -0.25, 0.25 }).Within(1e-12));
    }

    [Test]
    public void SoftmaxCrossEntropyOnTwoClassVectorsInFloat32()
    {
        using var logits = F32([0, 0, 2, 0], 2, 2);
        using var target = F32([1, 0, 0, 1], 2, 2);
        using var probs = Backend.Empty(logits.Shape, DType.Float32);
        using var loss = Backend.Empty(new Shape(1), DType.Float32);
        Backend.SoftmaxCrossEntropyForward(logits, target, probs, loss);
        var expected = (Math.Log(2) + Math.Log(1 + Math.Exp(2))) / 2;
        Assert.That(loss.ToHost<float>()[0], Is.EqualTo(expected).Within(1e-6));
    }

    [Test]
    public void ArgmaxTiesGoToTheLowestChannelAndOneHotInverts()
    {
        // Voxel 0: (1, 3, 3) → 1; voxel 1: (2, 2, 0) → 0.
        using var x = F32([1, 2, 3, 2, 3, 0], 1, 3, 1, 2);
        using var labels = Backend.Empty(new Shape(1, 1, 2), DType.Int32);
        Backend.ArgmaxChannels(x, labels);
        Assert.That(labels.ToHost<int>(), Is.EqualTo(new[] { 1, 0 }));
        using var onehot = Backend.Empty(x.Shape, DType.Float32);
        Backend.OneHot(labels, onehot);
        Assert.That(onehot.ToHost<float>(), Is.EqualTo(new float[] { 0, 1, 1, 0, 0, 0 }));
        using var bad = I32([0, 3], 1, 1, 2);
        Assert.That(() => Backend.OneHot(bad, onehot), Throws.ArgumentException.With.Message.Contains("outside"));
    }

    [Test]
    public void RmsPropStepFollowsTheFormula()
    {
        using var param = F64([1, 2], 2);
        using var grad = F64([0.5, -1], 2);
        using var ms = F64([0.1, 0], 2);
        Backend.RmsPropStep(param, grad, ms, lr: 0.01, rho: 0.9, eps: 1e-6, gradScale: -1);
        double[] g = [-0.5, 1], ms0 = [0.1, 0], p0 = [1, 2];
        var msExpected = g.Select((v, i) => 0.9 * ms0[i] + 0.1 * v * v).ToArray();
        var pExpected = g.Select((v, i) => p0[i] - 0.01 * v / Math.Sqrt(msExpected[i] + 1e-6)).ToArray();
        Assert.That(ms.ToHost<double>(), Is.EqualTo(msExpected).Within(1e-15));
        Assert.That(param.ToHost<double>(), Is.EqualTo(pExpected).Within(1e-15));
    }
}
