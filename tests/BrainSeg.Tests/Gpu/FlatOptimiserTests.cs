using BrainSeg.Engine;
using BrainSeg.Engine.Optim;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// RMSprop over flat blocks on the GPU (one launch per group) against the CPU's one launch per tensor: the
/// same parameters and state bit for bit, through reached, partly reached and unreached gradients, with a
/// second optimiser sharing the blocks at gradient scale −1 (the adversarial La group).
/// </summary>
public sealed class FlatOptimiserTests : GpuTestBase
{
    private static readonly int[][] Shapes = [[3, 2, 3, 3], [3], [5, 7], [1], [2, 3, 1, 1]];

    [Test]
    public void FlatGroupsUpdateBitForBitAsPerTensorUpdatesOnTheCpu()
    {
        var rng = new Random(7);
        float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var initial = Shapes.Select(s => Values((int)new Shape(s).Numel)).ToArray();
        var cpu = Parameters(Cpu, initial);
        var gpu = Parameters(Gpu, initial);
        try
        {
            using var cpuOpt = new RmsProp([new ParamGroup("seg", Named(cpu), 1e-2)]);
            using var cpuAdv = new RmsProp([new ParamGroup("adv", Named(cpu), 1e-3, gradScale: -1)]);
            using var gpuOpt = new RmsProp([new ParamGroup("seg", Named(gpu), 1e-2)]);
            using var gpuAdv = new RmsProp([new ParamGroup("adv", Named(gpu), 1e-3, gradScale: -1)]);

            // Step 0: every gradient written; step 1: two not reached; step 2: none reached (one memset).
            bool[][] reached = [[true, true, true, true, true], [true, false, true, false, true], [false, false, false, false, false]];
            for (var step = 0; step < 3; step++)
                foreach (var (cpuStep, gpuStep) in new[] { (cpuOpt, gpuOpt), (cpuAdv, gpuAdv) })
                {
                    cpuStep.ZeroGrad();
                    gpuStep.ZeroGrad();
                    for (var i = 0; i < Shapes.Length; i++)
                    {
                        if (!reached[step][i]) continue;
                        var g = Values(initial[i].Length);
                        WriteGrad(cpu[i], g);
                        WriteGrad(gpu[i], g);
                    }
                    cpuStep.Step();
                    var before = Gpu.Counters.Total;
                    gpuStep.Step();
                    var launches = (Gpu.Counters.Total - before).Launches;
                    int unreached = reached[step].Count(r => !r);
                    int expected = 1 + (unreached == 0 ? 0 : unreached == Shapes.Length ? 1 : unreached);
                    Assert.That(launches, Is.EqualTo(expected), $"step {step}: one RMSprop launch for the group plus the gradient clears");
                }

            for (var i = 0; i < Shapes.Length; i++)
                Assert.That(gpu[i].ToHost<float>(), Is.EqualTo(cpu[i].ToHost<float>()), $"parameter {i}");
            foreach (var (c, g) in cpuOpt.NamedState().Concat(cpuAdv.NamedState()).Zip(gpuOpt.NamedState().Concat(gpuAdv.NamedState())))
            {
                Assert.That(g.Name, Is.EqualTo(c.Name));
                Assert.That(g.Tensor.ToHost<float>(), Is.EqualTo(c.Tensor.ToHost<float>()), c.Name);
            }
        }
        finally
        {
            foreach (var p in cpu.Concat(gpu)) p.Dispose();
        }
    }

    [Test]
    public void PackingKeepsValuesAndGradientsAndStateLoadsByName()
    {
        var p = Tensor.FromHost(Gpu, new float[] { 1, 2, 3 }, 3);
        var q = Tensor.FromHost(Gpu, new float[] { 4, 5 }, 2);
        try
        {
            p.Grad = Tensor.FromHost(Gpu, new float[] { 0.5f, 0.25f, 0.125f }, 3);
            using var opt = new RmsProp([new ParamGroup("g", [("p", p), ("q", q)], 0.1)]);
            Assert.That(p.ToHost<float>(), Is.EqualTo(new float[] { 1, 2, 3 }));
            Assert.That(q.ToHost<float>(), Is.EqualTo(new float[] { 4, 5 }));
            Assert.That(p.Grad!.ToHost<float>(), Is.EqualTo(new float[] { 0.5f, 0.25f, 0.125f }), "an existing gradient moves with its parameter");
            opt.LoadState<float>("g.q.mean_square", [0.5f, 0.25f]);
            Assert.That(opt.NamedState().Last().Tensor.ToHost<float>(), Is.EqualTo(new float[] { 0.5f, 0.25f }));
            Assert.That(opt.NamedState().First().Tensor.ToHost<float>(), Is.EqualTo(new float[] { 0, 0, 0 }), "the neighbour's state is untouched");

            // A gradient replaced after packing is not in the block any more: the step falls back to per-tensor launches.
            p.Grad.Dispose();
            p.Grad = Tensor.FromHost(Gpu, new float[] { 1, 1, 1 }, 3);
            p.GradIsFresh = true;
            var before = Gpu.Counters.Total;
            opt.Step();
            Assert.That((Gpu.Counters.Total - before).Launches, Is.EqualTo(3), "q's clear, then one update per tensor");
            Assert.That(p.ToHost<float>()[0], Is.LessThan(1), "the replaced gradient was used");
        }
        finally
        {
            p.Dispose();
            q.Dispose();
        }
    }

    private static Tensor[] Parameters(IBackend b, float[][] values) =>
        [.. Shapes.Select((s, i) => { var t = Tensor.FromHost(b, values[i], s); t.RequiresGrad = true; t.Name = $"p{i}"; return t; })];

    private static IEnumerable<(string, Tensor)> Named(Tensor[] ps) => ps.Select(p => (p.Name!, p));

    /// <summary>What a backward pass does to a parameter's gradient: the first write of a step overwrites it.</summary>
    private static void WriteGrad(Tensor p, float[] g)
    {
        p.Grad ??= p.Backend.Empty(p.Shape, p.DType);
        p.Backend.Upload<float>(g, p.Grad);
        p.GradIsFresh = true;
    }
}
