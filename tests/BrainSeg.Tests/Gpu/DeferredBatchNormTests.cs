using BrainSeg.Cuda;
using BrainSeg.Engine;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// A channels-last training batch norm + ReLU leaves its output unwritten until it is read (CudaBackend.Fusion.cs): the
/// next convolution's forward and filter gradient read the batch norm's input through a fused prologue where that times
/// faster, dropout through its own kernel, every other reader gets the output written first; the next convolution's data
/// gradient also makes the sums of the batch norm's backward, which then takes one pass; and whatever happens the
/// results are the CPU's. Runs on the stand-in's fused engine here, on cuDNN's runtime fusion on a device.
/// </summary>
[TestFixture(DType.Float32)]
[TestFixture(DType.Float64)]
public sealed class DeferredBatchNormTests(DType dt) : GpuTestBase
{
    private static readonly Conv2dSpec Spec = new(Dilation: 2, Padding: 0);

    /// <summary>
    /// conv → batch norm + ReLU → conv and back, on both backends: the second convolution's output, its filter gradient, the
    /// first one's output gradient through the batch norm, β's gradient and the running statistics. Returns the GPU's
    /// launches for the whole chain.
    /// </summary>
    private long Chain(CudaBackend gpu)
    {
        const int n = 3, c = 4, k = 5, side = 15;
        int mid = Spec.OutputSize(side, 3), end = Spec.OutputSize(mid, 3);
        // The fixture's twins, with their device halves copied to the backend under test.
        var moved = new List<Twin>();
        Twin On(Twin t)
        {
            if (ReferenceEquals(gpu, Gpu)) return t;
            moved.Add(new Twin(t.C, t.C.To(gpu)));
            return moved[^1];
        }
        var x = On(Random(dt, n, c, side, side));
        Twin w1 = On(Random(dt, c, c, 3, 3)), w2 = On(Random(dt, k, c, 3, 3)), beta = On(Random(dt, c)), dy2 = On(Random(dt, n, k, end, end));
        Twin runningMean = On(Random(dt, c)), runningVar = On(Random(dt, [c], 0.5, 2));
        Twin y1 = On(Output(dt, n, c, mid, mid)), z1 = On(Output(dt, n, c, mid, mid)), y2 = On(Output(dt, n, k, end, end));
        Twin saveMean = On(Output(dt, c)), saveInvStd = On(Output(dt, c)), dz1 = On(Output(dt, n, c, mid, mid)), dw2 = On(Output(dt, k, c, 3, 3));
        Twin dy1 = On(Output(dt, n, c, mid, mid)), dbeta = On(Output(dt, c));
        var before = gpu.Counters.Total.Launches;
        foreach (var (b, t) in new (IBackend, Func<Twin, Tensor>)[] { (Cpu, t => t.C), (gpu, t => t.G) })
        {
            b.Conv2dForward(t(x), t(w1), t(y1), Spec);
            b.BatchNormForwardTraining(t(y1), null, t(beta), t(z1), t(runningMean), t(runningVar), t(saveMean), t(saveInvStd), 0.1, 1e-4, relu: true);
            b.Conv2dForward(t(z1), t(w2), t(y2), Spec);
            b.Conv2dBackwardData(t(dy2), t(w2), t(dz1), Spec, t(z1));
            b.Conv2dBackwardFilter(t(z1), t(dy2), t(dw2), Spec);
            b.BatchNormBackward(t(y1), t(dz1), null, t(beta), t(saveMean), t(saveInvStd), t(dy1), null, t(dbeta), relu: true);
        }
        long launches = gpu.Counters.Total.Launches - before;
        AssertClose(y2, "the second convolution over the rectified batch norm");
        AssertClose(dw2, "its filter gradient");
        AssertClose(dz1, "its data gradient");
        AssertClose(dy1, "the gradient through the batch norm and ReLU");
        AssertClose(dbeta, "β's gradient");
        AssertClose(runningMean, "running mean");
        AssertClose(runningVar, "running variance");
        foreach (var t in moved) t.G.Dispose();
        return launches;
    }

    [Test]
    public void TheNextConvolutionReadsTheBatchNormsInputFusedAndMakesItsBackwardsSums()
    {
        var gpu = Gpu;
        Chain(gpu);   // the first run chooses, per pass, between the fused graph and the plain pass plus the separate one
        long fused = Chain(gpu);
        using var plain = CudaBackend.Create(options: gpu.Options with { RuntimeFusion = false });
        Chain(plain);
        long separate = Chain(plain);
        var reports = gpu.EngineReports.Where(r => r.Direction.Contains("scale+shift+relu") || r.Direction.Contains("sums")).ToList();
        foreach (var r in reports) TestContext.Out.WriteLine($"{r.Direction}: {r.Source} engine {r.Engine} {r.Note}");

        // The forward is asked first; the data and filter gradients only if the forward left the output unwritten.
        const string forward = "forward scale+shift+relu→conv", filter = "backward-filter scale+shift+relu→conv",
            data = "backward-data conv→relu-backward→sums";
        bool Fused(string pass) => reports.Any(r => r.Direction == pass) && reports.Last(r => r.Direction == pass).Source != "separate";
        Assert.That(reports.Select(r => r.Direction).Distinct(),
            Is.EquivalentTo(Fused(forward) ? new[] { forward, data, filter } : new[] { forward }), "the passes that read the deferred output were asked");
        // Fused, the batch norm's pass that writes its output is gone (unless one of its readers runs separately), and so is
        // its backward's reduction (where the data gradient made the sums); where a device's cuDNN runs separate passes they come back.
        int saved = (Fused(forward) && Fused(filter) ? 1 : 0) + (Fused(data) ? 1 : 0);
        Assert.That(fused, Is.EqualTo(separate - saved), "launches with fusion against without");
        if (gpu.Name.Contains("Fake", StringComparison.Ordinal))
            Assert.That(reports.Select(r => r.Engine), Is.All.EqualTo("6"), "the stand-in's fused engine is chosen for every pass");
    }

    [Test]
    public void AnyOtherReaderGetsTheOutputWrittenAndAnUnreadOneCostsNothing()
    {
        const int n = 2, c = 3, side = 9;
        var x = Random(dt, [n, c, side, side], -2, 5);
        Twin beta = Random(dt, c), runningMean = Random(dt, c), runningVar = Random(dt, [c], 0.5, 2);
        Twin saveMean = Output(dt, c), saveInvStd = Output(dt, c);
        void Normalise(Twin input, Twin output)
        {
            Cpu.BatchNormForwardTraining(input.C, null, beta.C, output.C, runningMean.C, runningVar.C, saveMean.C, saveInvStd.C, 0.1, 1e-4, true);
            Gpu.BatchNormForwardTraining(input.G, null, beta.G, output.G, runningMean.G, runningVar.G, saveMean.G, saveInvStd.G, 0.1, 1e-4, true);
        }

        // Read by an elementwise op: written first, then read.
        Twin z = Output(dt, n, c, side, side), doubled = Output(dt, n, c, side, side);
        Normalise(x, z);
        Cpu.Add(z.C, z.C, doubled.C);
        Gpu.Add(z.G, z.G, doubled.G);
        AssertClose(doubled, "z + z of a deferred z");
        AssertClose(z, "z itself, downloaded");

        // Dropout reads it through the norm in its own pass, writing only its output.
        Twin dropped = Output(dt, n, c, side, side), z2 = Output(dt, n, c, side, side);
        Normalise(x, z2);
        var launches = Gpu.Counters.Total.Launches;
        Cpu.DropoutMultiply(z2.C, dropped.C, 0.3, 11, 5);
        Gpu.DropoutMultiply(z2.G, dropped.G, 0.3, 11, 5);
        Assert.That(Gpu.Counters.Total.Launches - launches, Is.EqualTo(1), "one pass: the deferred output is not written first");
        AssertClose(dropped, "dropout of a deferred z");

        // The batch norm's input freed before its output is read: its block is kept until then.
        var input = Random(dt, [n, c, side, side], -2, 5);
        var late = Output(dt, n, c, side, side);
        Normalise(input, late);
        input.G.Dispose();
        using (var reuse = Gpu.Empty(input.Shape, dt)) Gpu.Fill(reuse, 1e6);  // a new tensor must not get the kept block
        AssertClose(late, "a deferred output whose input was freed");

        // Freed unread: nothing is ever written.
        var unread = Output(dt, n, c, side, side);
        Normalise(x, unread);
        var before = Gpu.Counters.Total.Launches;
        unread.G.Dispose();
        Gpu.Synchronize();
        Assert.That(Gpu.Counters.Total.Launches - before, Is.Zero, "an output freed unread is never written");
    }
}
