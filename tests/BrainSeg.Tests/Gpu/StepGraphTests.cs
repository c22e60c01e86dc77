using BrainSeg.Cuda;
using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Optim;
using BrainSeg.Seg.Networks;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// Whole training steps captured as CUDA graphs (<see cref="IGraphBackend"/>) against the same steps run eagerly:
/// bit-identical results with fresh dropout masks at every replay, the random stream's offset as an eager run leaves
/// it, the graph's memory kept from other work while it lives, and the operations a capture cannot hold refused.
/// </summary>
[TestFixture(TensorLayout.Nhwc)]
[TestFixture(TensorLayout.Nchw)]
[Category("Gpu")]
public sealed class StepGraphTests(TensorLayout layout)
{
    private const int Classes = 4, Batch = 4, Steps = 3;

    private CudaBackend Gpu => GpuDevice.Require(layout);

    [TestCase("fcn")]
    [TestCase("dilated")]
    public void ReplayedStepsGiveTheBitsOfEagerSteps(string kind)
    {
        var eager = Train(kind, graphs: false);
        var replayed = Train(kind, graphs: true);
        Assert.That(replayed.Offset, Is.EqualTo(eager.Offset), "the random stream's offset (saved in checkpoints)");
        Assert.That(replayed.Losses, Is.EqualTo(eager.Losses), "the loss of each step");
        Assert.That(replayed.State.Keys, Is.EquivalentTo(eager.State.Keys));
        foreach (var (name, values) in eager.State)
            Assert.That(replayed.State[name], Is.EqualTo(values), $"{name} after {Steps} steps ({Steps - 1} replayed)");
    }

    /// <summary>
    /// <paramref name="Steps"/> RMSprop steps with dropout from one seed, on inputs uploaded into fixed tensors before
    /// each step; with graphs the first runs eagerly, is captured, and the rest replay. Returns the parameters, batch-norm
    /// statistics and RMSprop state, each step's loss, and the random stream's offset.
    /// </summary>
    private (Dictionary<string, float[]> State, float[] Losses, ulong Offset) Train(string kind, bool graphs)
    {
        var b = Gpu;
        var options = new NetworkOptions { Seed = 5 };
        Assert.That(options.DropoutP, Is.GreaterThan(0), "dropout must be on for the masks to matter");
        using SegmentationNetwork net = kind == "fcn" ? new FcnNetwork(b, Classes, options) : new DilatedNetwork(b, Classes, options);
        using var opt = new RmsProp([new ParamGroup("net", net.NamedParameters(), 1e-3)]);
        var side = net.TrainingInputSize;
        using var x = b.Empty(new Shape(Batch, 1, side, side), DType.Float32);
        using var labels = b.Empty(new Shape(Batch, 21, 21), DType.Int32);
        using var loss = b.Empty(new Shape(1), DType.Float32);

        void Step()
        {
            using var tape = new Tape(b);
            var target = F.OneHot(tape, labels, Classes, DType.Float32);
            var l = F.SoftmaxCrossEntropy(tape, net.Forward(tape, x), target);
            opt.ZeroGrad();
            tape.Backward(l);
            opt.Step();
            b.Copy(l, loss);
        }

        var losses = new float[Steps];
        IStepGraph? graph = null;
        try
        {
            for (var k = 0; k < Steps; k++)
            {
                var rng = new Random(100 + k);
                b.Upload<float>(Enumerable.Range(0, (int)x.Numel).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), x);
                b.Upload<int>(Enumerable.Range(0, (int)labels.Numel).Select(_ => rng.Next(Classes)).ToArray(), labels);
                if (graph is not null) graph.Replay();
                else Step();
                losses[k] = loss.ToHost<float>()[0];
                if (graphs && graph is null) graph = b.Capture(Step, net.Random);
            }
        }
        finally
        {
            graph?.Dispose();
        }
        var state = net.NamedParameters().Concat(net.NamedBuffers()).Concat(opt.NamedState())
            .ToDictionary(p => p.Name, p => p.Tensor.ToHost<float>());
        return (state, losses, net.Random.Offset);
    }

    /// <summary>
    /// cuDNN's legacy convolution calls and cuBLAS's GEMM (whose alpha and beta are read from host memory at the
    /// call) replay with the values they were captured with: two replays give the bits of two eager calls.
    /// </summary>
    [Test]
    public void LibraryCallsReplayAsTheyWereCaptured()
    {
        GpuDevice.Require(layout);
        using var b = CudaBackend.Create(options: new CudaBackendOptions { Layout = layout, LegacyConvolutionSearch = true });
        var rng = new Random(7);
        float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var spec = new Conv2dSpec(2, 1);
        using var x = Tensor.FromHost(b, Values(2 * 3 * 9 * 9), 2, 3, 9, 9);
        using var w = Tensor.FromHost(b, Values(4 * 3 * 3 * 3), 4, 3, 3, 3);
        using var y = b.Empty(new Shape(2, 4, 7, 7), DType.Float32);
        using var dx = b.Empty(x.Shape, DType.Float32);
        using var dw = b.Empty(w.Shape, DType.Float32);
        using var a = Tensor.FromHost(b, Values(4 * 5), 4, 5);
        using var m = Tensor.FromHost(b, Values(6 * 5), 6, 5);
        var c0 = Values(4 * 6);
        using var c = Tensor.FromHost(b, c0, 4, 6);
        void Step()
        {
            b.Conv2dForward(x, w, y, spec);
            b.Conv2dBackwardData(y, w, dx, spec);
            b.Conv2dBackwardFilter(x, y, dw, spec);
            b.Gemm(false, true, 0.5, a, m, 0.25, c);   // β ≠ 0: each call builds on the last
        }
        float[][] Results() => [y.ToHost<float>(), dx.ToHost<float>(), dw.ToHost<float>(), c.ToHost<float>()];

        Step();
        Step();
        var eager = Results();
        b.Upload<float>(c0, c);
        b.Fill(y, 0);
        b.Fill(dx, 0);
        b.Fill(dw, 0);
        using (var graph = b.Capture(Step, new RandomStream(0)))
        {
            Assert.That(c.ToHost<float>(), Is.EqualTo(c0), "capturing ran nothing");
            graph.Replay();
            graph.Replay();
        }
        var replayed = Results();
        for (var i = 0; i < eager.Length; i++)
            Assert.That(replayed[i], Is.EqualTo(eager[i]), new[] { "y", "dx", "dw", "c" }[i]);
    }

    [Test]
    public void AReplayIsOneLaunchOfTheCapturedWork()
    {
        var b = Gpu;
        using var acc = b.Empty(new Shape(1000), DType.Float32);
        b.Fill(acc, 0);
        var random = new RandomStream(3);
        void Step()
        {
            using var one = b.Empty(acc.Shape, DType.Float32);
            b.Fill(one, 1);
            b.Add(acc, one, acc);
            b.DropoutMultiply(acc, one, 0.5, random.Seed, random.Take(acc.Numel));
        }
        Step();
        using var graph = b.Capture(Step, random);
        Assert.That(graph.CapturedWork.Launches, Is.EqualTo(4), "fill, add, dropout and the offset's advance were recorded");
        var before = b.Counters.Total;
        graph.Replay();
        graph.Replay();
        var counted = b.Counters.Total - before;
        Assert.That(counted.Launches, Is.EqualTo(2));
        Assert.That(counted.GraphLaunches, Is.EqualTo(2));
        Assert.That(counted.HostSyncs + counted.DeviceAllocs + counted.Copies, Is.Zero);
        Assert.That(counted.Bytes, Is.EqualTo(2 * graph.CapturedWork.Bytes).And.GreaterThan(0));
        Assert.That(acc.ToHost<float>(), Is.All.EqualTo(3f), "one eager step and two replays each added 1; capturing ran nothing");
        Assert.That(random.Offset, Is.EqualTo(3000UL), "three steps drew 1000 each: the eager one, and the two replays");
    }

    /// <summary>
    /// Draws from the stream between replays (eager dropout, another graph) and an offset set back (a checkpoint
    /// restored) move the graph's device word with one small launch, so each replay draws where an eager step would.
    /// </summary>
    [Test]
    public void ReplaysFollowTheStreamWhenItIsDrawnFromOrSetBetweenThem()
    {
        var b = Gpu;
        using var x = b.Empty(new Shape(1000), DType.Float32);
        using var y = b.Empty(x.Shape, DType.Float32);
        b.Fill(x, 1);
        float[][] Run(bool graphs, out ulong offset)
        {
            var random = new RandomStream(11, 5);
            void Step() => b.DropoutMultiply(x, y, 0.5, random.Seed, random.Take(x.Numel));
            var masks = new List<float[]>();
            IStepGraph? graph = null;
            try
            {
                for (var k = 0; k < 5; k++)
                {
                    if (k == 2) random.Take(37);
                    if (k == 3) random.Offset = 5;
                    if (graph is null) Step();
                    else graph.Replay();
                    masks.Add(y.ToHost<float>());
                    if (graphs && graph is null) graph = b.Capture(Step, random);
                }
            }
            finally
            {
                graph?.Dispose();
            }
            offset = random.Offset;
            return [.. masks];
        }
        var eager = Run(graphs: false, out var eagerOffset);
        var before = b.Counters.Total;
        var replayed = Run(graphs: true, out var replayedOffset);
        Assert.That(replayedOffset, Is.EqualTo(eagerOffset));
        for (var k = 0; k < eager.Length; k++) Assert.That(replayed[k], Is.EqualTo(eager[k]), $"step {k}");
        Assert.That(eager[1], Is.Not.EqualTo(eager[2]), "the masks differ from step to step");
        Assert.That((b.Counters.Total - before).GraphLaunches, Is.EqualTo(4));
    }

    [Test]
    public void TheGraphHoldsTheBlocksItsWorkUsesUntilDisposed()
    {
        var b = Gpu;
        var shape = new Shape(3, 77, 13);   // a size of its own: its bucket holds only this test's blocks
        using var acc = b.Empty(shape, DType.Float32);
        b.Fill(acc, 0);
        ulong temporary = 0;
        void Step()
        {
            using var t = b.Empty(shape, DType.Float32);
            temporary = ((CudaStorage)t.Storage).Pointer;
            b.Fill(t, 2);
            b.Add(acc, t, acc);
        }
        Step();
        var graph = b.Capture(Step, new RandomStream(0));
        using (var other = b.Empty(shape, DType.Float32))
        {
            Assert.That(((CudaStorage)other.Storage).Pointer, Is.Not.EqualTo(temporary), "eager work gets another block while the graph lives");
            b.Fill(other, -5);
            graph.Replay();
        }
        Assert.That(acc.ToHost<float>(), Is.All.EqualTo(4f));
        graph.Dispose();
        using var again = b.Empty(shape, DType.Float32);
        Assert.That(((CudaStorage)again.Storage).Pointer, Is.EqualTo(temporary), "the block goes back to the pool with the graph");
    }

    [Test]
    public void WorkACaptureCannotHoldIsRefusedNamingTheOp()
    {
        var b = Gpu;
        using var t = b.Empty(new Shape(64), DType.Float32);
        var host = new float[64];
        var calls = 0;
        Tensor? leaked = null;
        Refused(() => b.Synchronize(), "Synchronize: a host wait");
        Refused(() => b.Upload<float>(host, t), "Upload: a host-to-device copy from pageable memory");
        Refused(() => b.Download<float>(t, host), "Download: a device-to-host copy");
        Refused(() =>
        {
            // A size the pool has never seen at each call: the capture's rent must allocate.
            using var grown = b.Empty(new Shape(1 << (21 + calls++)), DType.Float32);
            b.Fill(grown, 1);
        }, "Empty: a device allocation");
        Refused(() => { leaked?.Dispose(); leaked = b.Empty(new Shape(64), DType.Float32); }, "still in use at its end");
        leaked?.Dispose();
        using var w = b.Empty(new Shape(2, 1, 3, 3), DType.Float32);
        b.Fill(w, 0.5);
        var inputs = new[] { b.Empty(new Shape(1, 1, 9, 9), DType.Float32), b.Empty(new Shape(1, 1, 10, 10), DType.Float32) };
        var outputs = new[] { b.Empty(new Shape(1, 2, 7, 7), DType.Float32), b.Empty(new Shape(1, 2, 8, 8), DType.Float32) };
        try
        {
            foreach (var i in inputs) b.Fill(i, 1);
            calls = 0;
            // The eager call meets the first geometry, the capture a second one: its engine would have to be searched.
            Refused(() => { var k = calls++ % 2; b.Conv2dForward(inputs[k], w, outputs[k], new Conv2dSpec(1, 0)); }, "algorithm search");
        }
        finally
        {
            foreach (var d in inputs.Concat(outputs)) d.Dispose();
        }

        void Refused(Action step, string what)
        {
            step();   // fine eagerly
            var random = new RandomStream(9, 40);
            var e = Assert.Throws<InvalidOperationException>(() => b.Capture(step, random).Dispose());
            Assert.That(e!.Message, Does.Contain(what));
            Assert.That(b.Context.IsCapturing, Is.False, "the capture is over");
            Assert.That(random.Offset, Is.EqualTo(40UL), "nothing was drawn");
            // The stream still works, eagerly and captured.
            b.Fill(t, 7);
            using (var graph = b.Capture(() => b.Scale(t, 2), random)) graph.Replay();
            Assert.That(t.ToHost<float>(), Is.All.EqualTo(14f), $"after refusing {what}");
        }
    }
}
