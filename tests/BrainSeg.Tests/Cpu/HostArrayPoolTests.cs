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
