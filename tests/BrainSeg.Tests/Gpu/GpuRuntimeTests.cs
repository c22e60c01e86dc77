using BrainSeg.Cuda;
using BrainSeg.Engine;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>The CUDA backend's promises beyond op values: memory reuse, clear errors, the kernel cache, determinism.</summary>
public sealed class GpuRuntimeTests : GpuTestBase
{
    /// <summary>A small training-like step: allocate, run a few ops, free everything.</summary>
    private void Step()
    {
        using var x = Gpu.Empty(new Shape(2, 3, 20, 20), DType.Float32);
        using var w = Gpu.Empty(new Shape(4, 3, 3, 3), DType.Float32);
        using var y = Gpu.Empty(new Shape(2, 4, 18, 18), DType.Float32);
        using var bias = Gpu.Empty(new Shape(4), DType.Float32);
        using var db = Gpu.Empty(new Shape(4), DType.Float32);
        using var loss = Gpu.Empty(new Shape(1), DType.Float32);
        using var probs = Gpu.Empty(y.Shape, DType.Float32);
        using var target = Gpu.Empty(y.Shape, DType.Float32);
        Gpu.Fill(x, 0.5);
        Gpu.Fill(target, 0.25);
        Gpu.Fill(w, 0.25);
        Gpu.Fill(bias, 0.1);
        Gpu.Conv2dForward(x, w, y, Conv2dSpec.Valid);
        Gpu.AddChannelBias(y, bias);
        Gpu.ChannelSum(y, db);
        Gpu.SoftmaxCrossEntropyForward(y, target, probs, loss);
        Gpu.Synchronize();
    }

    [Test]
    public void PoolStopsAllocatingAfterWarmUp()
    {
        var pool = Gpu.Context.Pool;
        Step();
        Step();
        var reserved = pool.BytesReserved;
        var inUse = pool.BytesInUse;
        for (var i = 0; i < 5; i++) Step();
        Assert.That(pool.BytesReserved, Is.EqualTo(reserved), "no new device memory after warm-up");
        Assert.That(pool.BytesInUse, Is.EqualTo(inUse), "every tensor's memory went back to the pool");
    }

    [Test]
    public void OutOfMemoryNamesRequestedAndFreeBytes()
    {
        const long petabyte = 1L << 50;
        var error = Assert.Throws<CudaException>(() => Gpu.Empty(new Shape(1 << 18, 1 << 30), DType.Float32).Dispose());
        Assert.That(error!.Message, Does.Contain(petabyte.ToString()).And.Contain("free"), error.Message);
        // The failure leaves the backend usable.
        Step();
    }

    [Test]
    public void SecondKernelCacheLoadsFromDiskWithoutCompiling()
    {
        var (x, y) = (Random(DType.Float32, 10), Output(DType.Float32, 10));
        Gpu.ReluForward(x.G, y.G); // the backend's cache has compiled or loaded "elementwise"
        var fresh = new KernelCache(Gpu.Context);
        try
        {
            var relu = fresh.Get("elementwise", "relu_forward_f32");
            Assert.That(relu.Name, Is.EqualTo("relu_forward_f32"));
            Assert.That(fresh.CompilationsThisProcess, Is.Zero, $"recompiled although {KernelCache.CacheFolder()} holds the binary");
        }
        finally
        {
            fresh.Unload();
        }
    }

    [Test]
    public void ReductionsAreDeterministic()
    {
        var dy = Random(DType.Float32, 8, 6, 31, 29);
        using var first = Gpu.Empty(new Shape(6), DType.Float32);
        using var second = Gpu.Empty(new Shape(6), DType.Float32);
        Gpu.ChannelSum(dy.G, first);
        Gpu.ChannelSum(dy.G, second);
        Assert.That(second.ToHost<float>(), Is.EqualTo(first.ToHost<float>()), "ChannelSum run twice");

        var target = Random(DType.Float32, [8, 6, 31, 29], 0, 1);
        using var probs = Gpu.Empty(dy.Shape, DType.Float32);
        using var loss1 = Gpu.Empty(new Shape(1), DType.Float32);
        using var loss2 = Gpu.Empty(new Shape(1), DType.Float32);
        Gpu.SoftmaxCrossEntropyForward(dy.G, target.G, probs, loss1);
        Gpu.SoftmaxCrossEntropyForward(dy.G, target.G, probs, loss2);
        Assert.That(loss2.ToHost<float>(), Is.EqualTo(loss1.ToHost<float>()), "loss run twice");
    }

    [Test]
    public void ShapeMismatchAndForeignTensorsThrowClearly()
    {
        using var a = Gpu.Empty(new Shape(2, 3), DType.Float32);
        using var b = Gpu.Empty(new Shape(3, 2), DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => Gpu.Add(a, b, a));
        Assert.That(e!.Message, Does.Contain("Add").And.Contain("[2, 3]").And.Contain("[3, 2]"));

        using var host = Cpu.Empty(new Shape(2, 3), DType.Float32);
        e = Assert.Throws<ArgumentException>(() => Gpu.Add(a, host, a));
        Assert.That(e!.Message, Does.Contain("does not live on"));

        using var d = Gpu.Empty(new Shape(2, 3), DType.Float64);
        e = Assert.Throws<ArgumentException>(() => Gpu.Add(a, d, a));
        Assert.That(e!.Message, Does.Contain("mixed dtypes"));
    }

    [Test]
    public void NameAndDevice()
    {
        Assert.That(Gpu.IsGpu, Is.True);
        Assert.That(Gpu.Name, Does.StartWith("cuda:0 "));
        TestContext.Out.WriteLine($"{Gpu.Name}, compute capability {Gpu.Context.ComputeCapability}");
    }
}
