using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Nn;
using BrainSeg.Engine.Optim;
using BrainSeg.Seg.Networks;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// Whole training steps on the GPU and on the CPU reference, from the same seed and the same batches:
/// after three steps every parameter and batch-norm statistic agrees within 1e-3 (relative, norm-wise).
/// Dropout masks match because both draw from Philox with the same (seed, offset).
/// </summary>
public class NetworkStepParityTests
{
    private const int Classes = 4, Batch = 6, Steps = 3;
    private const double Tolerance = 1e-3;

    [Test, Category("Gpu")]
    public void FcnTrainingStepsAgree() => SegmentationStepsAgree(b => new FcnNetwork(b, Classes, new NetworkOptions { Seed = 21 }));

    [Test, Category("Gpu")]
    public void DilatedTrainingStepsAgree() => SegmentationStepsAgree(b => new DilatedNetwork(b, Classes, new NetworkOptions { Seed = 22 }));

    [Test, Category("Gpu")]
    public void AdversarialIterationsAgree() => AdversarialIterationsAgree(Engine.Cpu.CpuBackend.Instance, GpuDevice.Require());

    /// <summary>The same harness between two CPU backends (one thread and all): it runs everywhere, so the harness itself is tested.</summary>
    [Test]
    public void AdversarialIterationsAgreeAcrossCpuThreadCounts()
    {
        using var oneThread = new Engine.Cpu.CpuBackend(threads: 1);
        AdversarialIterationsAgree(oneThread, Engine.Cpu.CpuBackend.Instance);
    }

    internal static void AdversarialIterationsAgree(IBackend reference, IBackend candidate)
    {
        var batches = Batches(51, 31);
        AssertAgree(Adversarial(reference, batches), Adversarial(candidate, batches));
    }

    private static void SegmentationStepsAgree(Func<IBackend, SegmentationNetwork> create)
    {
        var gpu = GpuDevice.Require();
        int side;
        using (var probe = create(Engine.Cpu.CpuBackend.Instance)) side = probe.TrainingInputSize;
        var batches = Batches(side, 17);
        AssertAgree(Segmentation(Engine.Cpu.CpuBackend.Instance, create, batches), Segmentation(gpu, create, batches));
    }

    /// <summary>Three Ls steps (cross-entropy, RMSprop lr 1e-3); returns every parameter and buffer on the host.</summary>
    private static Dictionary<string, float[]> Segmentation(IBackend backend, Func<IBackend, SegmentationNetwork> create, (float[] X, float[] Target, int Side)[] batches)
    {
        using var net = create(backend);
        using var opt = new RmsProp([new ParamGroup("seg", net.NamedParameters(), 1e-3)]);
        foreach (var (xs, ts, side) in batches)
        {
            using var tape = new Tape(backend);
            var (x, t) = Upload(tape, xs, ts, side);
            var loss = F.SoftmaxCrossEntropy(tape, net.Forward(tape, x), t);
            opt.ZeroGrad();
            tape.Backward(loss);
            opt.Step();
        }
        return Snapshot(net);
    }

    /// <summary>
    /// Three alternating Ls / Ld / La iterations (FCN + discriminator). In La the discriminator's optimiser
    /// descends on θd and, through a group with gradient scale −1, ascends on θs.
    /// </summary>
    private static Dictionary<string, float[]> Adversarial(IBackend backend, (float[] X, float[] Target, int Side)[] batches)
    {
        using var seg = new FcnNetwork(backend, Classes, new NetworkOptions { Seed = 23 });
        using var disc = new Discriminator(backend, Classes, new NetworkOptions { Seed = 24 });
        using var segOpt = new RmsProp([new ParamGroup("seg", seg.NamedParameters(), 1e-3)]);
        using var discOpt = new RmsProp([new ParamGroup("disc", disc.NamedParameters(), 1e-5)]);
        using var ascentOpt = new RmsProp([new ParamGroup("seg-ascent", seg.NamedParameters(), 1e-5, gradScale: -1)]);
        var manual = Enumerable.Range(0, Batch).SelectMany(_ => new float[] { 0, 1 }).ToArray();
        var generated = Enumerable.Range(0, Batch).SelectMany(_ => new float[] { 1, 0 }).ToArray();
        foreach (var (xs, ts, side) in batches)
        {
            // Each update is its own forward and backward pass, as in training: one tape each.
            using (var tape = new Tape(backend))
            {
                var (x, t) = Upload(tape, xs, ts, side);
                segOpt.ZeroGrad();
                tape.Backward(F.SoftmaxCrossEntropy(tape, seg.Forward(tape, x), t));
                segOpt.Step();
            }
            using (var tape = new Tape(backend))
            {
                var (x, t) = Upload(tape, xs, ts, side);
                var image = F.CenterCrop(tape, x, Discriminator.PatchSize, Discriminator.PatchSize);
                var isManual = tape.Own(Tensor.FromHost(backend, manual, Batch, 2));
                discOpt.ZeroGrad();
                tape.Backward(F.SoftmaxCrossEntropy(tape, disc.Forward(tape, image, t), isManual));
                discOpt.Step();
            }
            using (var tape = new Tape(backend))
            {
                var (x, _) = Upload(tape, xs, ts, side);
                var image = F.CenterCrop(tape, x, Discriminator.PatchSize, Discriminator.PatchSize);
                var isGenerated = tape.Own(Tensor.FromHost(backend, generated, Batch, 2));
                discOpt.ZeroGrad();
                ascentOpt.ZeroGrad();
                tape.Backward(F.SoftmaxCrossEntropy(tape, disc.Forward(tape, image, seg.Probabilities(tape, x)), isGenerated));
                discOpt.Step();
                ascentOpt.Step();
            }
        }
        var all = Snapshot(seg);
        foreach (var (k, v) in Snapshot(disc)) all["disc." + k] = v;
        return all;
    }

    private static (Tensor X, Tensor Target) Upload(Tape tape, float[] xs, float[] ts, int side) =>
        (tape.Own(Tensor.FromHost(tape.Backend, xs, Batch, 1, side, side)),
         tape.Own(Tensor.FromHost(tape.Backend, ts, Batch, Classes, 21, 21)));

    private static Dictionary<string, float[]> Snapshot(Module m) =>
        m.NamedParameters().Concat(m.NamedBuffers()).ToDictionary(p => p.Name, p => p.Tensor.ToHost<float>());

    /// <summary>Seeded random images and one-hot targets, the same on both backends.</summary>
    private static (float[] X, float[] Target, int Side)[] Batches(int side, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, Steps).Select(_ =>
        {
            var x = new float[Batch * side * side];
            for (var i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
            var t = new float[Batch * Classes * 21 * 21];
            for (var n = 0; n < Batch; n++)
                for (var p = 0; p < 21 * 21; p++)
                    t[(n * Classes + rng.Next(Classes)) * 21 * 21 + p] = 1;
            return (x, t, side);
        }).ToArray();
    }

    private static void AssertAgree(Dictionary<string, float[]> cpu, Dictionary<string, float[]> gpu)
    {
        Assert.That(gpu.Keys, Is.EquivalentTo(cpu.Keys));
        var worst = ("", 0.0);
        foreach (var (name, c) in cpu)
        {
            var g = gpu[name];
            double diff = 0, norm = 0;
            for (var i = 0; i < c.Length; i++)
            {
                diff += (double)(g[i] - c[i]) * (g[i] - c[i]);
                norm += (double)c[i] * c[i];
            }
            var rel = Math.Sqrt(diff) / Math.Max(Math.Sqrt(norm), 1e-12);
            Assert.That(rel, Is.LessThanOrEqualTo(Tolerance), $"{name}: GPU and CPU differ by {rel:E2} (relative) after {Steps} steps");
            if (rel > worst.Item2) worst = (name, rel);
        }
        TestContext.Out.WriteLine($"worst relative difference after {Steps} steps: {worst.Item2:E2} ({worst.Item1})");
    }
}
