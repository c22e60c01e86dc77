using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Cpu;
using BrainSeg.Engine.Nn;
using BrainSeg.Seg.Networks;
using BrainSeg.Tests.Training;
using NUnit.Framework;

namespace BrainSeg.Tests.Networks;

/// <summary>Batch norm folded into the convolutions computes what the network computes in evaluation mode.</summary>
public class FoldingTests
{
    private static readonly IBackend Cpu = CpuBackend.Instance;

    private static IEnumerable<TestCaseData> Networks()
    {
        foreach (var dt in new[] { DType.Float32, DType.Float64 })
        {
            yield return new TestCaseData(dt, "fcn", false).SetArgDisplayNames(dt.ToString(), "FCN");
            yield return new TestCaseData(dt, "dilated", true).SetArgDisplayNames(dt.ToString(), "dilated, batch-norm scale");
            yield return new TestCaseData(dt, "tiny", true).SetArgDisplayNames(dt.ToString(), "tiny, batch-norm scale");
        }
    }

    [TestCaseSource(nameof(Networks))]
    public void FoldedNetworkMatchesTheNetworkInEvaluationMode(DType dt, string kind, bool scale)
    {
        var options = new NetworkOptions { DType = dt, Seed = 3, BatchNormScale = scale };
        using SegmentationNetwork network = kind switch
        {
            "fcn" => new FcnNetwork(Cpu, 5, options),
            "dilated" => new DilatedNetwork(Cpu, 5, options),
            _ => new TinyNetwork(Cpu, 5, options),
        };
        TrainedStatistics(network, seed: 9);
        network.Eval();
        using var folded = Folding.ForInference(network);

        var convolutions = network.NamedParameters().Count(p => p.Name.EndsWith(".weight"));
        Assert.That(folded.Layers, Has.Count.EqualTo(convolutions).And.All.TypeOf<FoldedConv2d>(), "one folded layer per convolution, dropout gone");
        Assert.That(folded.Layers.Cast<FoldedConv2d>().Count(l => l.Relu), Is.EqualTo(convolutions - 1), "every hidden layer keeps its ReLU");

        var side = network.ReceptiveField + 6;
        var values = new double[2 * side * side];
        new RandomStream(4).FillUniform(values, -2, 2);
        using var x = dt == DType.Float32
            ? Tensor.FromHost(Cpu, Array.ConvertAll(values, v => (float)v), 2, 1, side, side)
            : Tensor.FromHost(Cpu, values, 2, 1, side, side);
        using var tape = Tape.NoGrad(Cpu);
        var expected = network.Forward(tape, x).ToHostDoubles();
        var actual = folded.Forward(tape, x).ToHostDoubles();

        Assert.That(actual, Has.Length.EqualTo(expected.Length));
        var scaleOf = expected.Max(Math.Abs);
        var worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max() / scaleOf;
        Assert.That(worst, Is.LessThan(dt == DType.Float32 ? 1e-5 : 1e-13), $"worst difference relative to the largest logit {scaleOf:g3}");
        Assert.That(expected.Distinct().Count(), Is.GreaterThan(expected.Length / 2), "the logits are not constant");
    }

    [Test]
    public void TheFoldedLayersOwnCopiesTakenAtFoldTime()
    {
        using var network = new TinyNetwork(Cpu, 3, new NetworkOptions { Seed = 1 });
        TrainedStatistics(network, seed: 2);
        network.Eval();
        using var x = Tensor.FromHost(Cpu, Enumerable.Range(0, 2 * 9 * 9).Select(i => (float)Math.Sin(i)).ToArray(), 2, 1, 9, 9);
        using var tape = Tape.NoGrad(Cpu);
        float[] before;
        using (var folded = Folding.ForInference(network)) before = folded.Forward(tape, x).ToHost<float>();
        // Disposing the fold leaves the network whole; changing the network afterwards does not reach an earlier fold.
        using var again = Folding.ForInference(network);
        Assert.That(again.Forward(tape, x).ToHost<float>(), Is.EqualTo(before));
        var weight = network.NamedParameters().First(p => p.Name.EndsWith("weight")).Tensor;
        Cpu.Scale(weight, 2);
        Assert.That(again.Forward(tape, x).ToHost<float>(), Is.EqualTo(before));
        using var refolded = Folding.ForInference(network);
        Assert.That(refolded.Forward(tape, x).ToHost<float>(), Is.Not.EqualTo(before));
    }

    [Test]
    public void LayersThatDoNotFoldAreNamed()
    {
        var init = new ParameterInit(Cpu, DType.Float32, new RandomStream(1));
        using var pooled = new Sequential().Add("conv", new Conv2d(init, 1, 2, 3)).Add("pool", new MaxPool2d(2, 2));
        var e = Assert.Throws<NotSupportedException>(() => Folding.ForInference(pooled));
        Assert.That(e!.Message, Does.Contain("'pool'").And.Contain("max pool"));

        using var normFirst = new Sequential().Add("bn", new BatchNorm2d(init, 1)).Add("conv", new Conv2d(init, 1, 2, 3));
        e = Assert.Throws<NotSupportedException>(() => Folding.ForInference(normFirst));
        Assert.That(e!.Message, Does.Contain("'bn'"));
    }

    /// <summary>Running statistics, shifts and scales as training leaves them: nothing near the initial 0 and 1.</summary>
    private static void TrainedStatistics(Module network, ulong seed)
    {
        var random = new RandomStream(seed);
        foreach (var (name, t) in network.NamedBuffers().Concat(network.NamedParameters()))
        {
            var (low, high) = name.Split('.')[^1] switch
            {
                "running_mean" => (-0.5, 0.5),
                "running_var" => (0.2, 3.0),
                "beta" => (-0.3, 0.3),
                "gamma" => (0.5, 1.5),
                _ => (double.NaN, double.NaN),
            };
            if (double.IsNaN(low)) continue;
            var values = new double[t.Numel];
            random.FillUniform(values, low, high);
            t.UploadDoubles(values);
        }
    }
}
