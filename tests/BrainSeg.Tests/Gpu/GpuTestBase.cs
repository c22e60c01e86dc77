using BrainSeg.Cuda;
using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// The same op on the CPU reference and on the GPU, from identical fresh random inputs. Outputs are
/// poisoned (NaN, or −7 for Int32) first, so an element an op forgets to write fails the comparison.
/// </summary>
[Category("Gpu")]
public abstract class GpuTestBase
{
    /// <summary>The run's device backend of this fixture's layout (owned and disposed by <see cref="GpuDevice"/>).</summary>
    protected CudaBackend Gpu => GpuDevice.Require(Layout);

    /// <summary>The memory order of the fixture's 4-D device tensors; the CPU reference is always NCHW.</summary>
    protected virtual TensorLayout Layout => TensorLayout.Nhwc;
    protected static CpuBackend Cpu => CpuBackend.Instance;
    private readonly List<IDisposable> _owned = [];

    [SetUp]
    public void OpenDevice() => GpuDevice.Require(Layout);

    [TearDown]
    public void ReleaseTensors()
    {
        foreach (var d in _owned) d.Dispose();
        _owned.Clear();
    }

    protected static double Tolerance(DType dt) => dt == DType.Float32 ? 1e-4 : 1e-10;

    /// <summary>A tensor on both backends.</summary>
    protected sealed class Twin(Tensor cpu, Tensor gpu) : IDisposable
    {
        public Tensor C { get; } = cpu;
        public Tensor G { get; } = gpu;
        public Shape Shape => C.Shape;

        public void Dispose()
        {
            C.Dispose();
            G.Dispose();
        }
    }

    private Twin Own(Twin t)
    {
        _owned.Add(t);
        return t;
    }

    /// <summary>Uniform values in [low, high), identical on both backends.</summary>
    protected Twin Random(DType dt, int[] shape, double low = -1, double high = 1)
    {
        var rng = TestContext.CurrentContext.Random;
        var values = new double[new Shape(shape).Numel];
        for (var i = 0; i < values.Length; i++) values[i] = low + (high - low) * rng.NextDouble();
        return FromValues(dt, shape, values);
    }

    protected Twin Random(DType dt, params int[] shape) => Random(dt, shape, -1, 1);

    /// <summary>Values from a handful of levels, so that ties are common (max pooling, argmax).</summary>
    protected Twin Ties(DType dt, params int[] shape)
    {
        var rng = TestContext.CurrentContext.Random;
        var values = new double[new Shape(shape).Numel];
        for (var i = 0; i < values.Length; i++) values[i] = rng.Next(0, 4) * 0.25;
        return FromValues(dt, shape, values);
    }

    protected Twin FromValues(DType dt, int[] shape, double[] values)
    {
        Tensor c = Cpu.Empty(new Shape(shape), dt), g = Gpu.Empty(new Shape(shape), dt);
        if (dt == DType.Float32)
        {
            var f = values.Select(v => (float)v).ToArray();
            Cpu.Upload<float>(f, c);
            Gpu.Upload<float>(f, g);
        }
        else
        {
            Cpu.Upload<double>(values, c);
            Gpu.Upload<double>(values, g);
        }
        return Own(new Twin(c, g));
    }

    protected Twin Labels(int classes, params int[] shape)
    {
        var rng = TestContext.CurrentContext.Random;
        var values = new int[new Shape(shape).Numel];
        for (var i = 0; i < values.Length; i++) values[i] = rng.Next(0, classes);
        Tensor c = Cpu.Empty(new Shape(shape), DType.Int32), g = Gpu.Empty(new Shape(shape), DType.Int32);
        Cpu.Upload<int>(values, c);
        Gpu.Upload<int>(values, g);
        return Own(new Twin(c, g));
    }

    /// <summary>An output on both backends, filled with NaN (floats) or −7 (Int32) to expose unwritten elements.</summary>
    protected Twin Output(DType dt, params int[] shape)
    {
        Tensor c = Cpu.Empty(new Shape(shape), dt), g = Gpu.Empty(new Shape(shape), dt);
        var poison = dt == DType.Int32 ? -7 : double.NaN;
        Cpu.Fill(c, poison);
        Gpu.Fill(g, poison);
        return Own(new Twin(c, g));
    }

    /// <summary>A tensor that exists only on the GPU (e.g. an argmax not produced by the forward pass).</summary>
    protected Tensor GpuCopyOf(Tensor cpu)
    {
        var g = Gpu.Empty(cpu.Shape, cpu.DType);
        switch (cpu.DType)
        {
            case DType.Float32: Gpu.Upload<float>(cpu.ToHost<float>(), g); break;
            case DType.Float64: Gpu.Upload<double>(cpu.ToHost<double>(), g); break;
            default: Gpu.Upload<int>(cpu.ToHost<int>(), g); break;
        }
        _owned.Add(g);
        return g;
    }

    protected static double[] AsDoubles(Tensor t) => t.DType switch
    {
        DType.Float32 => t.ToHost<float>().Select(v => (double)v).ToArray(),
        DType.Float64 => t.ToHost<double>(),
        _ => t.ToHost<int>().Select(v => (double)v).ToArray(),
    };

    /// <summary>‖gpu − cpu‖ / ‖cpu‖ within the dtype's tolerance; NaN anywhere fails.</summary>
    protected static void AssertClose(Twin t, string what, double? tolerance = null)
    {
        var limit = tolerance ?? Tolerance(t.C.DType);
        double[] expected = AsDoubles(t.C), actual = AsDoubles(t.G);
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        int nan = actual.Count(double.IsNaN);
        Assert.That(nan, Is.EqualTo(expected.Count(double.IsNaN)), $"{what}: the GPU left {nan} NaN (unwritten or poisoned) elements of {t.Shape}");
        double diff = 0, norm = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            diff += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            norm += expected[i] * expected[i];
        }
        diff = Math.Sqrt(diff);
        norm = Math.Sqrt(norm);
        if (norm == 0) Assert.That(diff, Is.Zero, $"{what}: expected all zeros {t.Shape}");
        else Assert.That(diff / norm, Is.LessThanOrEqualTo(limit), $"{what}: relative error of {t.C.DType} {t.Shape}");
    }

    /// <summary>Bit-identical results (masks, indices, labels, pooling).</summary>
    protected static void AssertExact(Twin t, string what)
    {
        switch (t.C.DType)
        {
            case DType.Float32:
                Assert.That(t.G.ToHost<float>().Select(BitConverter.SingleToInt32Bits), Is.EqualTo(t.C.ToHost<float>().Select(BitConverter.SingleToInt32Bits)), what);
                break;
            case DType.Float64:
                Assert.That(t.G.ToHost<double>().Select(BitConverter.DoubleToInt64Bits), Is.EqualTo(t.C.ToHost<double>().Select(BitConverter.DoubleToInt64Bits)), what);
                break;
            default:
                Assert.That(t.G.ToHost<int>(), Is.EqualTo(t.C.ToHost<int>()), what);
                break;
        }
    }
}
