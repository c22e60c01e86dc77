using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Cpu;
using BrainSeg.Seg.Networks;
using NUnit.Framework;

namespace BrainSeg.Tests.Networks;

public class NetworkShapeTests
{
    private static readonly IBackend Cpu = CpuBackend.Instance;

    [TestCase(7, 140_039)]
    [TestCase(8, 140_296)]
    public void FcnHasThePapersParameterCount(int classes, long expected)
    {
        using var net = new FcnNetwork(Cpu, classes);
        Assert.That(net.ParameterCount, Is.EqualTo(expected));
        Assert.That(net.BatchNormScaleCount, Is.Zero);
    }

    [TestCase(7, 56_039)]
    [TestCase(8, 56_072)]
    public void DilatedNetworkHasThePapersParameterCount(int classes, long expected)
    {
        using var net = new DilatedNetwork(Cpu, classes);
        Assert.That(net.ParameterCount, Is.EqualTo(expected));
    }

    [Test]
    public void DiscriminatorHasThePapersParameterCount()
    {
        using var net = new Discriminator(Cpu, 7);
        Assert.That(net.ParameterCount, Is.EqualTo(66_786));
    }

    [Test]
    public void BatchNormScaleAddsOneGammaPerHiddenChannel()
    {
        using var fcn = new FcnNetwork(Cpu, 7, new NetworkOptions { BatchNormScale = true });
        using var dilated = new DilatedNetwork(Cpu, 7, new NetworkOptions { BatchNormScale = true });
        // 15 layers of 32 plus the 256-wide 1×1 layer; 7 layers of 32.
        Assert.That(fcn.BatchNormScaleCount, Is.EqualTo(15 * 32 + 256));
        Assert.That(fcn.ParameterCount, Is.EqualTo(140_039 + 15 * 32 + 256));
        Assert.That(dilated.BatchNormScaleCount, Is.EqualTo(7 * 32));
        Assert.That(dilated.ParameterCount, Is.EqualTo(56_039 + 7 * 32));
    }

    [Test]
    public void ReceptiveFieldsAndTrainingSizesAreThePapers()
    {
        using var fcn = new FcnNetwork(Cpu, 7);
        using var dilated = new DilatedNetwork(Cpu, 7);
        using var disc = new Discriminator(Cpu, 7);
        Assert.That((fcn.ReceptiveField, fcn.TrainingInputSize, fcn.TrainingOutputSize), Is.EqualTo((31, 51, 21)));
        Assert.That((dilated.ReceptiveField, dilated.TrainingInputSize, dilated.TrainingOutputSize), Is.EqualTo((67, 87, 21)));
        Assert.That((disc.TrainingInputSize, disc.TrainingOutputSize), Is.EqualTo((25, 1)));
    }

    [Test]
    public void FcnMaps51To21()
    {
        using var net = new FcnNetwork(Cpu, 7);
        Assert.That(RunSegmentation(net, 51), Is.EqualTo(new Shape(2, 7, 21, 21)));
    }

    [Test]
    public void DilatedNetworkMaps87To21()
    {
        using var net = new DilatedNetwork(Cpu, 8);
        Assert.That(RunSegmentation(net, 87), Is.EqualTo(new Shape(2, 8, 21, 21)));
    }

    [Test]
    public void DiscriminatorMapsAPatchAndSegmentationToTwoLogits()
    {
        using var net = new Discriminator(Cpu, 7);
        using var tape = Tape.NoGrad(Cpu);
        using var image = Cpu.Empty(new Shape(2, 1, 25, 25), DType.Float32);
        using var seg = Cpu.Empty(new Shape(2, 7, 21, 21), DType.Float32);
        Cpu.Fill(image, 0.5);
        Cpu.Fill(seg, 1.0 / 7);
        var y = net.Forward(tape, image, seg);
        Assert.That(y.Shape, Is.EqualTo(new Shape(2, 2)));
        Assert.That(net.Summarize().Single(r => r.Name == "conv7").Output, Is.EqualTo(new Shape(1, 32, 1, 1)));
    }

    [Test]
    public void SummaryShapesChainAndParametersAddUp()
    {
        using var fcn = new FcnNetwork(Cpu, 7);
        using var disc = new Discriminator(Cpu, 7);
        foreach (var (net, outShape) in new (INetwork, Shape)[] { (fcn, new Shape(1, 7, 21, 21)), (disc, new Shape(1, 2)) })
        {
            var rows = net.Summarize();
            Assert.That(rows.Sum(r => r.Parameters), Is.EqualTo(net.ParameterCount));
            Assert.That(rows[^1].Output, Is.EqualTo(outShape));
        }
        Assert.That(fcn.Summarize().Count(r => r.Kind.StartsWith("dropout", StringComparison.Ordinal)), Is.EqualTo(2), "dropout on the inputs of both 1×1 layers");
    }

    [Test]
    public void HiddenLayersFuseTheirReluAndKeepTheirCheckpointNames()
    {
        using var fcn = new FcnNetwork(Cpu, 7);
        using var disc = new Discriminator(Cpu, 7);
        var names = fcn.NamedParameters().Select(p => p.Name).Concat(fcn.NamedBuffers().Select(p => p.Name)).ToList();
        Assert.That(names, Is.SupersetOf(new[] { "conv1.conv.weight", "conv1.bn.beta", "conv1.bn.running_mean", "conv1.bn.running_var", "conv16.bn.beta" }));
        Assert.That(fcn.Summarize().Single(r => r.Name == "conv1").Kind, Is.EqualTo("conv 3×3 → batch norm (shift) + ReLU"));
        Assert.That(disc.Summarize().Single(r => r.Name == "fc8").Kind, Is.EqualTo("fully connected 256 → batch norm (shift) + ReLU"));
    }

    [Test]
    public void SameSeedGivesTheSameWeights()
    {
        using var a = new DilatedNetwork(Cpu, 7, new NetworkOptions { Seed = 5 });
        using var b = new DilatedNetwork(Cpu, 7, new NetworkOptions { Seed = 5 });
        using var c = new DilatedNetwork(Cpu, 7, new NetworkOptions { Seed = 6 });
        var wa = a.Parameters().First().ToHost<float>();
        Assert.That(b.Parameters().First().ToHost<float>(), Is.EqualTo(wa));
        Assert.That(c.Parameters().First().ToHost<float>(), Is.Not.EqualTo(wa));
    }

    [Test]
    public void TooSmallInputIsRejectedWithTheReceptiveField()
    {
        using var net = new FcnNetwork(Cpu, 7);
        using var tape = Tape.NoGrad(Cpu);
        using var x = Cpu.Empty(new Shape(1, 1, 20, 20), DType.Float32);
        Assert.That(() => net.Forward(tape, x), Throws.ArgumentException.With.Message.Contains("31"));
    }

    private static Shape RunSegmentation(SegmentationNetwork net, int side)
    {
        using var tape = Tape.NoGrad(Cpu);
        using var x = Cpu.Empty(new Shape(2, 1, side, side), DType.Float32);
        Cpu.Fill(x, 0.25);
        net.Eval();
        var y = net.Probabilities(tape, x);
        Assert.That(y.Shape, Is.EqualTo(net.OutputShape(x.Shape)));
        return y.Shape;
    }
}
