using BrainSeg.Engine;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// The transfers of a training step that keep the host out of it: uploads through pinned staging and the copy
/// stream, and readbacks into pinned memory read later. Values must equal the plain synchronous paths' in both layouts.
/// </summary>
[TestFixture(TensorLayout.Nhwc)]
[TestFixture(TensorLayout.Nchw)]
public sealed class TransferTests(TensorLayout layout) : GpuTestBase
{
    protected override TensorLayout Layout => layout;

    [Test]
    public void StagedUploadsLandAsPlainUploadsDoEvenWithMoreInFlightThanSlots()
    {
        var shape = new Shape(3, 4, 5, 6);
        var rng = new Random(5);
        // More uploads than the staging ring holds, of two sizes, each into its own tensor: every slot gets reused.
        var expected = new List<float[]>();
        var tensors = new List<Tensor>();
        try
        {
            for (var i = 0; i < 40; i++)
            {
                var s = i % 2 == 0 ? shape : new Shape(2, 3, 4, 5);
                var values = new float[s.Numel];
                for (var j = 0; j < values.Length; j++) values[j] = (float)rng.NextDouble();
                var t = Gpu.Empty(s, DType.Float32);
                Gpu.UploadAsync<float>(values, t);
                expected.Add(values);
                tensors.Add(t);
            }
            for (var i = 0; i < tensors.Count; i++)
                Assert.That(tensors[i].ToHost<float>(), Is.EqualTo(expected[i]), $"upload {i} ({tensors[i].Describe()})");
        }
        finally
        {
            foreach (var t in tensors) t.Dispose();
        }
    }

    [Test]
    public void AStagedUploadIntoATensorStillInUseReachesOnlyLaterWork()
    {
        using var x = Gpu.Empty(new Shape(2, 3, 4, 4), DType.Float32);
        using var y = Gpu.Empty(x.Shape, DType.Float32);
        var first = Enumerable.Range(0, (int)x.Numel).Select(i => (float)i).ToArray();
        var second = first.Select(v => -v).ToArray();
        Gpu.UploadAsync<float>(first, x);
        Gpu.Copy(x, y);                       // queued before the second upload: sees the first values
        Gpu.UploadAsync<float>(second, x);
        Assert.That(y.ToHost<float>(), Is.EqualTo(first));
        Assert.That(x.ToHost<float>(), Is.EqualTo(second));
    }

    [TestCase(DType.Float32)]
    [TestCase(DType.Float64)]
    public void AReadbackHoldsTheValuesAtItsStartWithoutWaiting(DType dtype)
    {
        using var losses = dtype == DType.Float32 ? Tensor.FromHost(Gpu, new[] { 1.5f, -2f, float.NaN }, 3) : Tensor.FromHost(Gpu, new[] { 1.5, -2, double.NaN }, 3);
        using var readback = Gpu.CreateReadback(4);
        Gpu.Synchronize();
        var before = Gpu.Counters.Total;
        readback.Start(losses);
        Gpu.Fill(losses, 9);                  // later work changes the tensor; the readback keeps what it copied
        var queued = Gpu.Counters.Total - before;
        var values = new double[3];
        readback.Read(values);
        Assert.That(values, Is.EqualTo(new[] { 1.5, -2, double.NaN }));
        Assert.That(queued.HostSyncs, Is.Zero, "starting a readback does not wait");
        using var tooMany = Gpu.Empty(new Shape(5), dtype);
        Assert.That(() => readback.Start(tooMany), Throws.ArgumentException, "more values than the readback holds");
    }
}
