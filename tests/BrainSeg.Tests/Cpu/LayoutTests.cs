using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;
using NUnit.Framework;

namespace BrainSeg.Tests.Cpu;

/// <summary>Host conversions between NCHW and channels-last, and the batch and reshape copies of the CPU reference.</summary>
public class LayoutTests
{
    [Test]
    public void ChannelsLastPutsTheChannelFastest()
    {
        // [1, 2, 1, 3]: channel 0 = 0 1 2, channel 1 = 10 11 12.
        var shape = new Shape(1, 2, 1, 3);
        int[] nchw = [0, 1, 2, 10, 11, 12], nhwc = new int[6], back = new int[6];
        Layouts.ToChannelsLast<int>(nchw, nhwc, shape);
        Assert.That(nhwc, Is.EqualTo(new[] { 0, 10, 1, 11, 2, 12 }));
        Layouts.FromChannelsLast<int>(nhwc, back, shape);
        Assert.That(back, Is.EqualTo(nchw));
    }

    [Test]
    public void ConversionsRoundTripOverSeveralImages()
    {
        var shape = new Shape(3, 5, 4, 7);
        var values = Enumerable.Range(0, (int)shape.Numel).Select(i => (double)i).ToArray();
        double[] nhwc = new double[values.Length], back = new double[values.Length];
        Layouts.ToChannelsLast<double>(values, nhwc, shape);
        Assert.That(nhwc[1], Is.EqualTo(values[4 * 7]), "the second value is channel 1 of the first pixel");
        Layouts.FromChannelsLast<double>(nhwc, back, shape);
        Assert.That(back, Is.EqualTo(values));
        Assert.Throws<ArgumentException>(() => Layouts.ToChannelsLast<double>(values, new double[3], shape));
    }

    [TestCase(new[] { 2, 3, 4, 5 }, true)]
    [TestCase(new[] { 2, 1, 4, 5 }, true)]
    [TestCase(new[] { 2, 3, 1, 1 }, true)]
    [TestCase(new[] { 6, 3 }, false)]
    public void TrivialShapesAreTheSameMemoryInBothOrders(int[] dims, bool fourD)
    {
        var shape = new Shape(dims);
        bool trivial = Layouts.IsTrivial(shape);
        Assert.That(trivial, Is.EqualTo(!fourD || dims[1] == 1 || dims[2] * dims[3] == 1));
        if (!trivial) return;
        var values = Enumerable.Range(0, (int)shape.Numel).ToArray();
        if (!fourD) return;
        var nhwc = new int[values.Length];
        Layouts.ToChannelsLast<int>(values, nhwc, shape);
        Assert.That(nhwc, Is.EqualTo(values));
    }

    [Test]
    public void CopyBatchCopiesImagesAndRefusesWhatDoesNotFit()
    {
        var cpu = CpuBackend.Instance;
        using var a = Tensor.FromHost(cpu, Enumerable.Range(0, 12).Select(i => (float)i).ToArray(), 3, 2, 2);
        using var y = cpu.Empty(new Shape(2, 2, 2), DType.Float32);
        cpu.CopyBatch(a, 1, y, 0, 2);
        Assert.That(y.ToHost<float>(), Is.EqualTo(Enumerable.Range(4, 8).Select(i => (float)i)));
        Assert.Throws<ArgumentException>(() => cpu.CopyBatch(a, 2, y, 0, 2), "past the source's batch");
        using var other = cpu.Empty(new Shape(2, 4), DType.Float32);
        Assert.Throws<ArgumentException>(() => cpu.CopyBatch(a, 0, other, 0, 1), "other trailing dimensions");
    }
}
