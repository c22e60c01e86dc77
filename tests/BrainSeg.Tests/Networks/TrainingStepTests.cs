using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Checking;
using BrainSeg.Engine.Cpu;
using BrainSeg.Engine.Optim;
using BrainSeg.Seg.Networks;
using NUnit.Framework;

namespace BrainSeg.Tests.Networks;

/// <summary>One RMSprop step of each network (float32, CPU) lowers its loss on a fixed batch.</summary>
public class TrainingStepTests
{
    private static readonly IBackend Cpu = CpuBackend.Instance;

    [Test]
    public void OneStepLowersTheFcnLoss()
    {
        using var net = new FcnNetwork(Cpu, 4, new NetworkOptions { Seed = 11 });
        AssertStepLowersLoss(net, tape => SegmentationLoss(tape, net, 51, 4));
    }

    [Test]
    public void OneStepLowersTheDilatedNetworkLoss()
    {
        using var net = new DilatedNetwork(Cpu, 4, new NetworkOptions { Seed = 12 });
        AssertStepLowersLoss(net, tape => SegmentationLoss(tape, net, 87, 4));
    }

    [Test]
    public void OneStepLowersTheDiscriminatorLoss()
    {
        using var net = new Discriminator(Cpu, 4, new NetworkOptions { Seed = 13 });
        var data = OpGradChecks.RandomInputs(Cpu, 7, [[4, 1, 25, 25], [4, 4, 21, 21]]);
        var labels = new float[] { 1, 0, 0, 1, 1, 0, 0, 1 };
        using var target = Tensor.FromHost(Cpu, labels, 4, 2);
        using var image = ToFloat(data[0]);
        using var seg = ToFloat(data[1]);
        AssertStepLowersLoss(net, tape => F.SoftmaxCrossEntropy(tape, net.Forward(tape, image, seg), target));
    }

    private static void AssertStepLowersLoss(INetwork net, Func<Tape, Tensor> loss)
    {
        // The same dropout masks for both evaluations (the stream is rewound), so the two losses compare
        // one function before and after the step; batch norm uses batch statistics, as in training.
        var start = net.Random.Offset;
        using var optimizer = new RmsProp([new ParamGroup("net", net.Module.NamedParameters(), learningRate: 1e-3)]);

        float before;
        using (var tape = new Tape(Cpu))
        {
            net.Random.Offset = start;
            var l = loss(tape);
            before = l.ToHost<float>()[0];
            optimizer.ZeroGrad();
            tape.Backward(l);
            optimizer.Step();
        }
        float after;
        using (var tape = Tape.NoGrad(Cpu))
        {
            net.Random.Offset = start;
            after = loss(tape).ToHost<float>()[0];
        }
        TestContext.Out.WriteLine($"loss {before} → {after}");
        Assert.That(after, Is.LessThan(before));
    }

    private static Tensor SegmentationLoss(Tape tape, SegmentationNetwork net, int side, int classes)
    {
        var data = OpGradChecks.RandomInputs(Cpu, 3, [[2, 1, side, side]]);
        using var x64 = data[0];
        var x = tape.Own(ToFloat(x64));
        var labels = new float[2 * classes * 21 * 21];
        for (var v = 0; v < 2 * 21 * 21; v++)
        {
            var (n, p) = (v / (21 * 21), v % (21 * 21));
            labels[(n * classes + v * 7 % classes) * 21 * 21 + p] = 1;
        }
        var target = tape.Own(Tensor.FromHost(Cpu, labels, 2, classes, 21, 21));
        return F.SoftmaxCrossEntropy(tape, net.Forward(tape, x), target);
    }

    private static Tensor ToFloat(Tensor t) => Tensor.FromHost(Cpu, Array.ConvertAll(t.ToHost<double>(), v => (float)v), t.Shape.ToArray());
}
