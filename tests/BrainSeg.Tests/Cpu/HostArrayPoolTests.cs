using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;
using NUnit.Framework;

namespace BrainSeg.Tests.Cpu;

public class HostArrayPoolTests
{
    // An element count no other test uses, so parallel tests cannot take the array in between.
    private static readonly Shape Unusual = new(7, 613);

    [Test]
    public void A_released_array_is_handed_out_again_and_poisoned_under_test()
    {
        var b = CpuBackend.Instance;
        float[] first;
        using (var t = b.Empty(Unusual, DType.Float32))
        {
            first = ((CpuStorage)t.Storage).Data<float>();
            t.HostSpan<float>().Fill(1);
        }
        using var again = b.Empty(Unusual, DType.Float32);
        Assert.That(((CpuStorage)again.Storage).Data<float>(), Is.SameAs(first), "same type and length: the idle array is reused");
        Assert.That(again.ToHost<float>(), Has.All.NaN, "the tests poison every array handed out");
    }

    [Test]
    public void Lengths_round_up_to_eight_classes_per_power_of_two()
    {
        Assert.Multiple(() =>
        {
            Assert.That(HostArrayPool.Capacity(100), Is.EqualTo(100), "small arrays are not pooled");
            Assert.That(HostArrayPool.Capacity(4096), Is.EqualTo(4096));
            Assert.That(HostArrayPool.Capacity(4097), Is.EqualTo(4608));
            Assert.That(HostArrayPool.Capacity(8191), Is.EqualTo(8192));
            Assert.That(HostArrayPool.Capacity(32 * 48 * 48), Is.EqualTo(HostArrayPool.Capacity(32 * 47 * 47)), "a few rows apart, one class");
            for (long length = 1024; length < 1 << 22; length = length * 9 / 8 + 1)
                Assert.That(HostArrayPool.Capacity(length), Is.InRange(length, length * 9 / 8), $"slack for {length}");
        });
    }

    [Test]
    public void Views_keep_the_array_until_the_last_owner_is_released()
    {
        var b = CpuBackend.Instance;
        var t = b.Empty(new Shape(3, 1733), DType.Float64);
        var view = t.Reshape(1733, 3);
        var data = ((CpuStorage)t.Storage).Data<double>();
        t.Dispose();
        view.HostSpan<double>().Fill(2);   // still owned by the view: not back in the pool
        using var other = b.Empty(new Shape(3, 1733), DType.Float64);
        Assert.That(((CpuStorage)other.Storage).Data<double>(), Is.Not.SameAs(data));
        view.Dispose();
    }
}
