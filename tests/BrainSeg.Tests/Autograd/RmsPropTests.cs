using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Cpu;
using BrainSeg.Engine.Optim;
using NUnit.Framework;

namespace BrainSeg.Tests.Autograd;

public class RmsPropTests
{
    private static readonly IBackend Cpu = CpuBackend.Instance;

    [Test]
    public void StepFollowsLasagnesFormula()
    {
        // r = 0.9·0 + 0.1·g², θ −= lr·g/√(r + 1e-6).
        using var p = Tensor.FromHost(Cpu, new double[] { 1, 2 }, 2);
        p.Grad = Tensor.FromHost(Cpu, new double[] { 0.5, -3 }, 2);
        p.GradIsFresh = true;
        using var opt = new RmsProp([new ParamGroup("g", [("p", p)], learningRate: 0.01)]);
        opt.Step();
        double Expected(double theta, double g) => theta - 0.01 * g / Math.Sqrt(0.1 * g * g + 1e-6);
        Assert.That(p.ToHost<double>(), Is.EqualTo(new[] { Expected(1, 0.5), Expected(2, -3) }).Within(1e-12));
        var (name, state) = opt.NamedState().Single();
        Assert.That(name, Is.EqualTo("g.p.mean_square"));
        Assert.That(state.ToHost<double>(), Is.EqualTo(new[] { 0.025, 0.9 }).Within(1e-12));
    }

    [Test]
    public void GradScaleMinusOneAscendsTheLossWhileOtherGroupsDescend()
    {
        // loss = softmax cross-entropy of logits x·wᵀ against a fixed target; two copies of w in two groups.
        using var x = Tensor.FromHost(Cpu, new double[] { 1, -0.5, 0.25, 2 }, 2, 2);
        using var target = Tensor.FromHost(Cpu, new double[] { 1, 0, 0, 1 }, 2, 2);
        using var ascend = Tensor.FromHost(Cpu, new double[] { 0.1, 0.2, -0.3, 0.4 }, 2, 2);
        using var descend = Tensor.FromHost(Cpu, new double[] { 0.1, 0.2, -0.3, 0.4 }, 2, 2);
        ascend.RequiresGrad = descend.RequiresGrad = true;
        using var opt = new RmsProp(
        [
            new ParamGroup("segmentation", [("w", ascend)], learningRate: 1e-2, gradScale: -1),
            new ParamGroup("discriminator", [("w", descend)], learningRate: 1e-2),
        ]);
        double Loss(Tensor w, bool step)
        {
            using var tape = new Tape(Cpu, recordGradients: step);
            var loss = F.SoftmaxCrossEntropy(tape, F.Linear(tape, x, w), target);
            var value = loss.ToHost<double>()[0];
            if (step) tape.Backward(loss);
            return value;
        }
        opt.ZeroGrad();
        var before = Loss(ascend, true);
        Assert.That(Loss(descend, true), Is.EqualTo(before));
        opt.Step();
        Assert.That(Loss(ascend, false), Is.GreaterThan(before), "gradient scale −1 ascends");
        Assert.That(Loss(descend, false), Is.LessThan(before), "gradient scale 1 descends");
    }

    [Test]
    public void ZeroGradOnlyClearsTheFreshFlagAndUnreachedParametersGetAZeroStep()
    {
        using var p = Tensor.FromHost(Cpu, new double[] { 1 }, 1);
        p.Grad = Tensor.FromHost(Cpu, new double[] { 5 }, 1);
        p.GradIsFresh = true;
        using var opt = new RmsProp([new ParamGroup("g", [("p", p)], 0.1)]);
        opt.ZeroGrad();
        Assert.That(p.GradIsFresh, Is.False);
        opt.Step();
        Assert.That(p.ToHost<double>()[0], Is.EqualTo(1), "no gradient arrived: the parameter stays");
    }

    [Test]
    public void StateCanBeRestoredByName()
    {
        using var p = Tensor.FromHost(Cpu, new double[] { 1, 1 }, 2);
        using var opt = new RmsProp([new ParamGroup("g", [("p", p)], 0.1)]);
        opt.LoadState<double>("g.p.mean_square", [0.5, 0.25]);
        Assert.That(opt.NamedState().Single().Tensor.ToHost<double>(), Is.EqualTo(new[] { 0.5, 0.25 }));
        Assert.That(() => opt.LoadState<double>("nope", [1, 2]), Throws.TypeOf<KeyNotFoundException>().With.Message.Contains("g.p.mean_square"));
    }

    [Test]
    public void AParameterInTwoGroupsIsRejected()
    {
        using var p = Tensor.FromHost(Cpu, new double[] { 1 }, 1);
        Assert.That(() => new RmsProp([new ParamGroup("a", [("p", p)], 0.1), new ParamGroup("b", [("p", p)], 0.1)]),
            Throws.ArgumentException.With.Message.Contains("more than one group"));
    }
}
