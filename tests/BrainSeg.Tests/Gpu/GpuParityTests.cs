using BrainSeg.Engine;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// Every IBackend op, forward and backward, on the GPU against the CPU reference: float32 within 1e-4 and
/// float64 within 1e-10 relative error; masks, indices and pooling bit-exact.
/// </summary>
[TestFixture(DType.Float32, TensorLayout.Nhwc)]
[TestFixture(DType.Float64, TensorLayout.Nhwc)]
[TestFixture(DType.Float32, TensorLayout.Nchw)]
[TestFixture(DType.Float64, TensorLayout.Nchw)]
public sealed class GpuParityTests(DType dt, TensorLayout layout) : GpuTestBase
{
    protected override TensorLayout Layout => layout;

    // ---- memory ----

    [Test]
    public void UploadDownloadCopyAndFillRoundTrip()
    {
        var x = Random(dt, 3, 1001);
        var copy = Output(dt, 3, 1001);
        Cpu.Copy(x.C, copy.C);
        Gpu.Copy(x.G, copy.G);
        AssertExact(x, "upload then download");
        AssertExact(copy, "Copy");

        var filled = Output(dt, 7, 13);
        Cpu.Fill(filled.C, -2.375);
        Gpu.Fill(filled.G, -2.375);
        AssertExact(filled, "Fill");

        var labels = Labels(5, 4, 33);
        var labelCopy = Output(DType.Int32, 4, 33);
        Cpu.Copy(labels.C, labelCopy.C);
        Gpu.Copy(labels.G, labelCopy.G);
        AssertExact(labelCopy, "Copy Int32");
        Cpu.Fill(labelCopy.C, 3);
        Gpu.Fill(labelCopy.G, 3);
        AssertExact(labelCopy, "Fill Int32");

        using var empty = Gpu.Empty(new Shape(0, 4), dt);
        Gpu.Fill(empty, 1);
        Assert.That(AsDoubles(empty), Is.Empty);
    }

    // ---- elementwise ----

    [TestCase(1)]
    [TestCase(10007)]
    public void AddMultiplyAddScaledScale(int n)
    {
        Twin a = Random(dt, n), b = Random(dt, n);
        var sum = Output(dt, n);
        Cpu.Add(a.C, b.C, sum.C);
        Gpu.Add(a.G, b.G, sum.G);
        AssertClose(sum, "Add");

        var product = Output(dt, n);
        Cpu.Multiply(a.C, b.C, product.C);
        Gpu.Multiply(a.G, b.G, product.G);
        AssertClose(product, "Multiply");

        var y = Random(dt, n);
        Cpu.AddScaled(y.C, a.C, -0.37);
        Gpu.AddScaled(y.G, a.G, -0.37);
        AssertClose(y, "AddScaled");

        Cpu.Scale(y.C, 1.9);
        Gpu.Scale(y.G, 1.9);
        AssertClose(y, "Scale");
    }

    // ---- linear algebra ----

    [TestCase(false, false, 7, 5, 3)]
    [TestCase(true, false, 7, 5, 3)]
    [TestCase(false, true, 7, 5, 3)]
    [TestCase(true, true, 7, 5, 3)]
    [TestCase(false, false, 64, 48, 133)]
    [TestCase(true, true, 33, 65, 17)]
    public void Gemm(bool ta, bool tb, int m, int n, int k)
    {
        var a = ta ? Random(dt, k, m) : Random(dt, m, k);
        var b = tb ? Random(dt, n, k) : Random(dt, k, n);
        var c = Output(dt, m, n); // NaN: beta = 0 must ignore it
        Cpu.Gemm(ta, tb, 1.5, a.C, b.C, 0, c.C);
        Gpu.Gemm(ta, tb, 1.5, a.G, b.G, 0, c.G);
        AssertClose(c, "Gemm beta 0");

        var acc = Random(dt, m, n);
        Cpu.Gemm(ta, tb, -0.5, a.C, b.C, 0.75, acc.C);
        Gpu.Gemm(ta, tb, -0.5, a.G, b.G, 0.75, acc.G);
        AssertClose(acc, "Gemm beta 0.75");
    }

    // ---- convolution ----

    private static IEnumerable<TestCaseData> ConvCases()
    {
        // N, C, H, W, K, R, S, dilation, padding
        yield return new TestCaseData(2, 3, 13, 11, 4, 3, 3, 1, 0).SetName("Conv valid 3x3");
        yield return new TestCaseData(2, 5, 17, 17, 6, 3, 3, 2, 0).SetName("Conv dilation 2");
        yield return new TestCaseData(1, 4, 12, 15, 3, 3, 3, 4, 2).SetName("Conv dilation 4 padding 2");
        yield return new TestCaseData(3, 2, 9, 9, 5, 5, 3, 1, 1).SetName("Conv 5x3 padding 1");
        yield return new TestCaseData(2, 7, 6, 8, 3, 1, 1, 1, 0).SetName("Conv 1x1");
    }

    [TestCaseSource(nameof(ConvCases))]
    public void Conv2dForwardAndBackward(int n, int c, int h, int w, int k, int r, int s, int dilation, int padding)
    {
        var spec = new Conv2dSpec(dilation, padding);
        int ho = spec.OutputSize(h, r), wo = spec.OutputSize(w, s);
        Twin x = Random(dt, n, c, h, w), filter = Random(dt, k, c, r, s);
        var y = Output(dt, n, k, ho, wo);
        Cpu.Conv2dForward(x.C, filter.C, y.C, spec);
        Gpu.Conv2dForward(x.G, filter.G, y.G, spec);
        AssertClose(y, "Conv2dForward");

        var dy = Random(dt, n, k, ho, wo);
        var dx = Output(dt, n, c, h, w);
        Cpu.Conv2dBackwardData(dy.C, filter.C, dx.C, spec);
        Gpu.Conv2dBackwardData(dy.G, filter.G, dx.G, spec);
        AssertClose(dx, "Conv2dBackwardData");

        var dw = Output(dt, k, c, r, s);
        Cpu.Conv2dBackwardFilter(x.C, dy.C, dw.C, spec);
        Gpu.Conv2dBackwardFilter(x.G, dy.G, dw.G, spec);
        AssertClose(dw, "Conv2dBackwardFilter");

        // The second call reuses the cached plan and algorithm.
        var again = Output(dt, n, k, ho, wo);
        Gpu.Conv2dForward(x.G, filter.G, again.G, spec);
        Cpu.Conv2dForward(x.C, filter.C, again.C, spec);
        AssertClose(again, "Conv2dForward (cached plan)");

        // With the epilogues a folded batch norm uses: + bias, then ReLU.
        var bias = Random(dt, k);
        foreach (var (withBias, relu) in new[] { (true, true), (true, false), (false, true) })
        {
            var fused = Output(dt, n, k, ho, wo);
            Cpu.Conv2dForward(x.C, filter.C, fused.C, spec, withBias ? bias.C : null, relu);
            Gpu.Conv2dForward(x.G, filter.G, fused.G, spec, withBias ? bias.G : null, relu);
            AssertClose(fused, $"Conv2dForward bias {withBias} relu {relu}");
        }
    }

    // ---- bias ----

    [TestCase(4)]
    [TestCase(2)]
    public void AddChannelBiasAndChannelSum(int rank)
    {
        int[] shape = rank == 4 ? [3, 5, 17, 19] : [37, 5];
        Twin y = Random(dt, shape), bias = Random(dt, 5);
        Cpu.AddChannelBias(y.C, bias.C);
        Gpu.AddChannelBias(y.G, bias.G);
        AssertClose(y, "AddChannelBias");

        var dy = Random(dt, shape);
        var db = Output(dt, 5);
        Cpu.ChannelSum(dy.C, db.C);
        Gpu.ChannelSum(dy.G, db.G);
        AssertClose(db, "ChannelSum");
    }

    // ---- batch normalisation ----

    // [4,3,15,13] splits the batch into one plane per block; 23 planes into uneven parts; [37,5,1,1] is the [N,C] case;
    // [40,3,21,21] has more values than a launch has threads (on the stand-in), so channels-last loops step their channel.
    [TestCase(true, true, new[] { 40, 3, 21, 21 })]
    [TestCase(true, false, new[] { 4, 3, 15, 13 })]
    [TestCase(false, false, new[] { 4, 3, 15, 13 })]
    [TestCase(true, true, new[] { 4, 3, 15, 13 })]
    [TestCase(false, true, new[] { 4, 3, 15, 13 })]
    [TestCase(true, true, new[] { 23, 2, 21, 21 })]
    [TestCase(false, true, new[] { 37, 5, 1, 1 })]
    public void BatchNormTrainingInferenceAndBackward(bool withGamma, bool relu, int[] shape)
    {
        var c = shape[1];
        var x = Random(dt, shape, -2, 5);
        Twin? gamma = withGamma ? Random(dt, [c], 0.5, 1.5) : null;
        var beta = Random(dt, c);
        Twin runningMean = Random(dt, c), runningVar = Random(dt, [c], 0.5, 2);
        Twin y = Output(dt, shape), saveMean = Output(dt, c), saveInvStd = Output(dt, c);
        Cpu.BatchNormForwardTraining(x.C, gamma?.C, beta.C, y.C, runningMean.C, runningVar.C, saveMean.C, saveInvStd.C, 0.1, 1e-5, relu);
        Gpu.BatchNormForwardTraining(x.G, gamma?.G, beta.G, y.G, runningMean.G, runningVar.G, saveMean.G, saveInvStd.G, 0.1, 1e-5, relu);
        AssertClose(y, "BatchNormForwardTraining y");
        AssertClose(saveMean, "saveMean");
        AssertClose(saveInvStd, "saveInvStd");
        AssertClose(runningMean, "runningMean");
        AssertClose(runningVar, "runningVar (unbiased)");
        if (relu) Assert.That(AsDoubles(y.G), Has.Some.EqualTo(0.0).And.Some.GreaterThan(0.0), "the fused ReLU cuts some outputs, not all");

        var inference = Output(dt, shape);
        Cpu.BatchNormForwardInference(x.C, gamma?.C, beta.C, inference.C, runningMean.C, runningVar.C, 1e-3, relu);
        Gpu.BatchNormForwardInference(x.G, gamma?.G, beta.G, inference.G, runningMean.G, runningVar.G, 1e-3, relu);
        AssertClose(inference, "BatchNormForwardInference");

        // Each backend recomputes the ReLU's mask from x and its own saved statistics, as a training step does.
        var dy = Random(dt, shape);
        Twin dx = Output(dt, shape), dbeta = Output(dt, c);
        Twin? dgamma = withGamma ? Output(dt, c) : null;
        Cpu.BatchNormBackward(x.C, dy.C, gamma?.C, beta.C, saveMean.C, saveInvStd.C, dx.C, dgamma?.C, dbeta.C, relu);
        Gpu.BatchNormBackward(x.G, dy.G, gamma?.G, beta.G, saveMean.G, saveInvStd.G, dx.G, dgamma?.G, dbeta.G, relu);
        AssertClose(dx, "BatchNormBackward dx");
        AssertClose(dbeta, "BatchNormBackward dbeta");
        if (dgamma is not null) AssertClose(dgamma, "BatchNormBackward dgamma");
    }

    // Channels-last batch norm combines its statistics and gradient sums in whichever block of a launch finishes last (a
    // ticket counter that every launch leaves at zero): a run on other data between two identical runs must be computed
    // afresh (parity with the CPU), and the identical runs must agree bit for bit.
    [Test]
    public void BatchNormRepeatsBitForBitAroundOtherRuns()
    {
        int[] shape = [40, 3, 21, 21];
        var gamma = Random(dt, [3], 0.5, 1.5);
        var beta = Random(dt, 3);
        Twin x = Random(dt, shape, -2, 5), other = Random(dt, shape, 3, 9), dy = Random(dt, shape);
        double[] Run(Twin input, bool alsoOnCpu)
        {
            Twin runningMean = FromValues(dt, [3], [0, 0, 0]), runningVar = FromValues(dt, [3], [1, 1, 1]);
            Twin y = Output(dt, shape), saveMean = Output(dt, 3), saveInvStd = Output(dt, 3);
            Twin dx = Output(dt, shape), dgamma = Output(dt, 3), dbeta = Output(dt, 3);
            void On(IBackend b, Func<Twin, Tensor> t)
            {
                b.BatchNormForwardTraining(t(input), t(gamma), t(beta), t(y), t(runningMean), t(runningVar), t(saveMean), t(saveInvStd), 0.1, 1e-5,
                    relu: true);
                b.BatchNormBackward(t(input), t(dy), t(gamma), t(beta), t(saveMean), t(saveInvStd), t(dx), t(dgamma), t(dbeta), relu: true);
            }
            On(Gpu, t => t.G);
            if (alsoOnCpu)
            {
                On(Cpu, t => t.C);
                foreach (var (t, name) in new[] { (y, "y"), (runningVar, "runningVar"), (dx, "dx"), (dgamma, "dgamma"), (dbeta, "dbeta") })
                    AssertClose(t, name);
            }
            return [.. new[] { y, runningMean, runningVar, saveMean, saveInvStd, dx, dgamma, dbeta }.SelectMany(t => AsDoubles(t.G))];
        }
        var first = Run(x, false);
        Run(other, true);
        Assert.That(Run(x, false), Is.EqualTo(first), "the same inputs, the same bits");
    }

    [Test]
    public void BatchNormStatisticsHoldAtLargeOffsets()
    {
        // μ ≈ 1e5 with σ ≈ 2: a variance taken as Σx²/M − μ² would lose about seven digits even in double.
        int[] shape = [6, 3, 9, 11];
        var x = Random(dt, shape, 1e5 - 3, 1e5 + 4);
        var beta = Random(dt, 3);
        Twin runningMean = Random(dt, 3), runningVar = Random(dt, [3], 0.5, 2);
        Twin y = Output(dt, shape), saveMean = Output(dt, 3), saveInvStd = Output(dt, 3);
        Cpu.BatchNormForwardTraining(x.C, null, beta.C, y.C, runningMean.C, runningVar.C, saveMean.C, saveInvStd.C, 0.1, 1e-5);
        Gpu.BatchNormForwardTraining(x.G, null, beta.G, y.G, runningMean.G, runningVar.G, saveMean.G, saveInvStd.G, 0.1, 1e-5);
        AssertClose(saveMean, "saveMean");
        AssertClose(saveInvStd, "saveInvStd");
        AssertClose(runningVar, "runningVar");
    }

    // ---- activations and regularisation ----

    [Test]
    public void ReluForwardAndBackward()
    {
        var x = Random(dt, 3, 4, 21, 23);
        var y = Output(dt, 3, 4, 21, 23);
        Cpu.ReluForward(x.C, y.C);
        Gpu.ReluForward(x.G, y.G);
        AssertExact(y, "ReluForward");

        var dy = Random(dt, 3, 4, 21, 23);
        var dx = Output(dt, 3, 4, 21, 23);
        Cpu.ReluBackward(y.C, dy.C, dx.C);
        Gpu.ReluBackward(y.G, dy.G, dx.G);
        AssertExact(dx, "ReluBackward");
    }

    [Test]
    public void ReluKeepsNaNAndMakesNegativeZeroPositiveAsTheCpuDoes()
    {
        // PyTorch's rule too: relu(NaN) = NaN; −0 comes out +0. Plain and fused with batch norm's affine part.
        double[] values = [double.NaN, -0.0, -1, 2, 0, double.NegativeInfinity, 3, double.NaN, -0.0, 5, -4, 1];
        var x = FromValues(dt, [1, 1, 3, 4], values);
        var y = Output(dt, 1, 1, 3, 4);
        Cpu.ReluForward(x.C, y.C);
        Gpu.ReluForward(x.G, y.G);
        AssertExact(y, "ReluForward");

        var beta = FromValues(dt, [1], [0]);
        var mean = FromValues(dt, [1], [0]);
        var variance = FromValues(dt, [1], [1]);
        var fused = Output(dt, 1, 1, 3, 4);
        Cpu.BatchNormForwardInference(x.C, null, beta.C, fused.C, mean.C, variance.C, 0, relu: true);
        Gpu.BatchNormForwardInference(x.G, null, beta.G, fused.G, mean.G, variance.G, 0, relu: true);
        AssertExact(fused, "BatchNormForwardInference + ReLU");
    }

    [TestCase(0.5, 1234567UL, 0UL)]
    [TestCase(0.2, 0xDEADBEEFCAFEUL, 3UL)]
    [TestCase(0.0, 7UL, 1UL << 33)]
    public void DropoutMaskIsBitIdentical(double p, ulong seed, ulong offset)
    {
        var mask = Output(dt, 5, 3, 17, 11);
        Cpu.DropoutMask(mask.C, p, seed, offset);
        Gpu.DropoutMask(mask.G, p, seed, offset);
        AssertExact(mask, $"DropoutMask p={p} seed={seed} offset={offset}");
        if (p > 0) Assert.That(AsDoubles(mask.G), Has.Some.EqualTo(0.0), "some elements are dropped");
    }

    [TestCase(0.5, 1234567UL, 0UL)]
    [TestCase(0.2, 0xDEADBEEFCAFEUL, 3UL)]
    public void DropoutMultiplyIsBitIdenticalAndAppliesDropoutMasksMask(double p, ulong seed, ulong offset)
    {
        var x = Random(dt, 5, 3, 17, 11);
        Twin y = Output(dt, 5, 3, 17, 11), mask = Output(dt, 5, 3, 17, 11), product = Output(dt, 5, 3, 17, 11);
        Cpu.DropoutMultiply(x.C, y.C, p, seed, offset);
        Gpu.DropoutMultiply(x.G, y.G, p, seed, offset);
        AssertExact(y, $"DropoutMultiply p={p} seed={seed} offset={offset}");
        Gpu.DropoutMask(mask.G, p, seed, offset);
        Gpu.Multiply(x.G, mask.G, product.G);
        Assert.That(AsDoubles(y.G), Is.EqualTo(AsDoubles(product.G)), "the stored mask's product, without storing it");
    }

    // ---- pooling ----

    [TestCase(2, 2)]
    [TestCase(3, 2)]
    [TestCase(2, 3)]
    [TestCase(3, 1)]
    public void MaxPoolForwardAndBackwardAreExact(int window, int stride)
    {
        int h = 14, w = 11, ho = (h - window) / stride + 1, wo = (w - window) / stride + 1;
        var x = Ties(dt, 2, 3, h, w);
        Twin y = Output(dt, 2, 3, ho, wo), argmax = Output(DType.Int32, 2, 3, ho, wo);
        Cpu.MaxPoolForward(x.C, y.C, argmax.C, window, stride);
        Gpu.MaxPoolForward(x.G, y.G, argmax.G, window, stride);
        AssertExact(y, "MaxPoolForward y");
        AssertExact(argmax, "MaxPoolForward argmax (first maximum wins)");

        var dy = Random(dt, 2, 3, ho, wo);
        var dx = Output(dt, 2, 3, h, w);
        Cpu.MaxPoolBackward(dy.C, argmax.C, dx.C);
        Gpu.MaxPoolBackward(dy.G, argmax.G, dx.G);
        AssertExact(dx, "MaxPoolBackward (gather)");

        // An argmax the GPU did not produce: the scatter path, same result.
        var foreign = GpuCopyOf(argmax.C);
        var dx2 = Output(dt, 2, 3, h, w);
        Cpu.MaxPoolBackward(dy.C, argmax.C, dx2.C);
        Gpu.MaxPoolBackward(dy.G, foreign, dx2.G);
        AssertExact(dx2, "MaxPoolBackward (scatter)");
    }

    // ---- shape ops ----

    [Test]
    public void CopyBatchAndCopyReshaped()
    {
        Twin a = Random(dt, 3, 4, 5, 6), y = Output(dt, 5, 4, 5, 6);
        Cpu.CopyBatch(a.C, 1, y.C, 0, 2);
        Gpu.CopyBatch(a.G, 1, y.G, 0, 2);
        Cpu.CopyBatch(a.C, 0, y.C, 2, 3);
        Gpu.CopyBatch(a.G, 0, y.G, 2, 3);
        AssertExact(y, "CopyBatch");

        // 4-D to 2-D and 4-D to another 4-D shape, and back: NCHW order on both sides, whatever the memory order.
        var flat = Output(dt, 3, 120);
        Cpu.CopyReshaped(a.C, flat.C);
        Gpu.CopyReshaped(a.G, flat.G);
        AssertExact(flat, "CopyReshaped to [3, 120]");
        var other = Output(dt, 3, 10, 3, 4);
        Cpu.CopyReshaped(a.C, other.C);
        Gpu.CopyReshaped(a.G, other.G);
        AssertExact(other, "CopyReshaped to [3, 10, 3, 4]");
        var back = Output(dt, 3, 4, 5, 6);
        Cpu.CopyReshaped(flat.C, back.C);
        Gpu.CopyReshaped(flat.G, back.G);
        AssertExact(back, "CopyReshaped back to [3, 4, 5, 6]");
        if (Layout == TensorLayout.Nhwc)
            Assert.Throws<InvalidOperationException>(() => a.G.Reshape(3, 120), "a channels-last tensor has no NCHW view");
    }

    [Test]
    public void ConcatAndSplitChannels()
    {
        Twin a = Random(dt, 2, 3, 7, 9), b = Random(dt, 2, 4, 7, 9);
        var y = Output(dt, 2, 7, 7, 9);
        Cpu.ConcatChannels(a.C, b.C, y.C);
        Gpu.ConcatChannels(a.G, b.G, y.G);
        AssertExact(y, "ConcatChannels");

        var dy = Random(dt, 2, 7, 7, 9);
        Twin da = Output(dt, 2, 3, 7, 9), db = Output(dt, 2, 4, 7, 9);
        Cpu.SplitChannels(dy.C, da.C, db.C);
        Gpu.SplitChannels(dy.G, da.G, db.G);
        AssertExact(da, "SplitChannels da");
        AssertExact(db, "SplitChannels db");

        Twin onlyB = Output(dt, 2, 4, 7, 9), onlyA = Output(dt, 2, 3, 7, 9);
        Cpu.SplitChannels(dy.C, null, onlyB.C);
        Gpu.SplitChannels(dy.G, null, onlyB.G);
        AssertExact(onlyB, "SplitChannels db only");
        Cpu.SplitChannels(dy.C, onlyA.C, null);
        Gpu.SplitChannels(dy.G, onlyA.G, null);
        AssertExact(onlyA, "SplitChannels da only");
    }

    [TestCase(17, 16, 9, 5)]
    [TestCase(10, 10, 10, 10)]
    [TestCase(25, 14, 3, 1)]
    public void CenterCropAndPad(int hBig, int wBig, int hSmall, int wSmall)
    {
        var x = Random(dt, 2, 3, hBig, wBig);
        var cropped = Output(dt, 2, 3, hSmall, wSmall);
        Cpu.CenterCrop(x.C, cropped.C);
        Gpu.CenterCrop(x.G, cropped.G);
        AssertExact(cropped, "CenterCrop");

        var padded = Output(dt, 2, 3, hBig, wBig);
        Cpu.CenterPad(cropped.C, padded.C);
        Gpu.CenterPad(cropped.G, padded.G);
        AssertExact(padded, "CenterPad");
    }

    // ---- classification ----

    [TestCase(4)]
    [TestCase(2)]
    public void SoftmaxAndCrossEntropy(int rank)
    {
        int[] shape = rank == 4 ? [2, 4, 23, 23] : [300, 2];
        var logits = Random(dt, shape, -6, 6);
        var probs = Output(dt, shape);
        Cpu.SoftmaxForward(logits.C, probs.C);
        Gpu.SoftmaxForward(logits.G, probs.G);
        AssertClose(probs, "SoftmaxForward");

        // Soft targets (per-voxel distributions) exercise Σ_c target ≠ 1 terms too.
        var target = Random(dt, shape, 0, 1);
        Twin probs2 = Output(dt, shape), loss = Output(dt, 1);
        Cpu.SoftmaxCrossEntropyForward(logits.C, target.C, probs2.C, loss.C);
        Gpu.SoftmaxCrossEntropyForward(logits.G, target.G, probs2.G, loss.G);
        AssertClose(probs2, "SoftmaxCrossEntropyForward probs");
        AssertClose(loss, "SoftmaxCrossEntropyForward loss");

        var dloss = Random(dt, [1], 0.5, 2);
        var dlogits = Output(dt, shape);
        Cpu.SoftmaxCrossEntropyBackward(probs2.C, target.C, dloss.C, dlogits.C);
        Gpu.SoftmaxCrossEntropyBackward(probs2.G, target.G, dloss.G, dlogits.G);
        AssertClose(dlogits, "SoftmaxCrossEntropyBackward");
    }

    [Test]
    public void CrossEntropyWithOneHotTargets()
    {
        var labels = Labels(5, 3, 11, 13);
        var target = Output(dt, 3, 5, 11, 13);
        Cpu.OneHot(labels.C, target.C);
        Gpu.OneHot(labels.G, target.G);
        AssertExact(target, "OneHot");

        var logits = Random(dt, [3, 5, 11, 13], -30, 30); // some probabilities underflow to 0
        Twin probs = Output(dt, 3, 5, 11, 13), loss = Output(dt, 1);
        Cpu.SoftmaxCrossEntropyForward(logits.C, target.C, probs.C, loss.C);
        Gpu.SoftmaxCrossEntropyForward(logits.G, target.G, probs.G, loss.G);
        AssertClose(probs, "probs");
        AssertClose(loss, "loss");
    }

    [Test]
    public void ArgmaxChannelsIsExactWithTies()
    {
        var x = Ties(dt, 3, 6, 9, 10);
        var labels = Output(DType.Int32, 3, 9, 10);
        Cpu.ArgmaxChannels(x.C, labels.C);
        Gpu.ArgmaxChannels(x.G, labels.G);
        AssertExact(labels, "ArgmaxChannels (ties go to the lowest channel)");
    }

    // ---- optimiser ----

    [TestCase(1.0)]
    [TestCase(-1.0)]
    public void RmsPropStep(double gradScale)
    {
        Twin param = Random(dt, 4099), grad = Random(dt, 4099), meanSquare = Random(dt, [4099], 0, 0.1);
        for (var step = 0; step < 3; step++)
        {
            Cpu.RmsPropStep(param.C, grad.C, meanSquare.C, 1e-3, 0.9, 1e-6, gradScale);
            Gpu.RmsPropStep(param.G, grad.G, meanSquare.G, 1e-3, 0.9, 1e-6, gradScale);
        }
        AssertClose(param, "RmsPropStep param");
        AssertClose(meanSquare, "RmsPropStep meanSquare");
    }
}
