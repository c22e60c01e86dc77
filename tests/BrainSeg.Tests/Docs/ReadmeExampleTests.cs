using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Checking;
using BrainSeg.Engine.Cpu;
using NUnit.Framework;

namespace BrainSeg.Tests.Docs;

/// <summary>The README's gradient-check example, verbatim, so the documentation cannot drift from the API.</summary>
public class ReadmeExampleTests
{
    [Test]
    public void TheReadmesCustomLayerPassesTheGradientCheck()
    {
        // ---- README example begins ----
        // A custom layer built from engine ops: 3×3 convolution with dilation 2 and a bias, ReLU, centre crop.
        Tensor MyLayer(Tape tape, Tensor[] t) =>
            F.CenterCrop(tape, F.Relu(tape, F.Conv2d(tape, t[0], t[1], t[2], new Conv2dSpec(Dilation: 2))), 3, 3);

        var cpu = CpuBackend.Instance;
        var rng = new Random(1);
        double[] Noise(int n) => Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        using var x = Tensor.FromHost(cpu, Noise(2 * 3 * 9 * 9), 2, 3, 9, 9);   // float64 input
        using var w = Tensor.FromHost(cpu, Noise(4 * 3 * 3 * 3), 4, 3, 3, 3);   // float64 weights
        using var b = Tensor.FromHost(cpu, Noise(4), 4);
        var result = GradCheck.Run(MyLayer, [x, w, b], new GradCheckOptions { Tolerance = 1e-6 });
        Console.WriteLine(result);   // max absolute and relative error per input
        result.ThrowIfFailed();      // or: Assert.That(result.Passed, result.ToString());
        // ---- README example ends ----
        Assert.That(result.Passed, result.ToString());
    }
}
