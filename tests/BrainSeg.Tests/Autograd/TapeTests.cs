using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Checking;
using BrainSeg.Engine.Cpu;
using BrainSeg.Engine.Nn;
using NUnit.Framework;

namespace BrainSeg.Tests.Autograd;

public class TapeTests
{
    private static readonly IBackend Cpu = CpuBackend.Instance;

    [Test]
    public void NoGradTapeRecordsNothingAndRefusesBackward()
    {
        using var w = Tensor.FromHost(Cpu, new double[] { 1, 2, 3, 4 }, 2, 2);
        using var x = Tensor.FromHost(Cpu, new double[] { 1, -1 }, 1, 2);
        w.RequiresGrad = true;
        using var tape = Tape.NoGrad(Cpu);
        var y = F.Relu(tape, F.Linear(tape, x, w));
        Assert.That(tape.Count, Is.Zero);
        Assert.That(y.ToHost<double>(), Is.EqualTo(new double[] { 0, 0 }).Within(0)); // [1−2, 3−4] → relu → 0
        Assert.That(() => tape.Backward(y, y), Throws.InvalidOperationException);
    }

    /// <summary>A layer that remembers what it was given and returned.</summary>
    private sealed class Spy : Layer
    {
        public readonly List<Tensor> Seen = [];
        public override string Kind => "spy";
        public override Shape OutputShape(Shape input) => input;
        public override Tensor Forward(Tape tape, Tensor x)
        {
            Seen.Add(x);
            var y = F.Relu(tape, x);
            Seen.Add(y);
            return y;
        }
    }

    [Test]
    public void InferenceFreesEachActivationOnceTheNextExistsAndTrainingKeepsThem()
    {
        foreach (var recording in new[] { false, true })
        {
            var (a, b, c) = (new Spy(), new Spy(), new Spy());
            var net = new Sequential().Add("a", a).Add("b", b).Add("c", c);
            using var x = Tensor.FromHost(Cpu, new double[] { 1, -2, 3 }, 1, 3);
            x.RequiresGrad = recording;
            using var tape = new Tape(Cpu, recording);
            var y = net.Forward(tape, x);
            Assert.Multiple(() =>
            {
                Assert.That(x.IsDisposed, Is.False, "the caller's input is the caller's");
                Assert.That(a.Seen[1].IsDisposed, Is.EqualTo(!recording), "a's output, b's input");
                Assert.That(b.Seen[1].IsDisposed, Is.EqualTo(!recording), "b's output, c's input");
                Assert.That(y.IsDisposed, Is.False);
                Assert.That(y.ToHost<double>(), Is.EqualTo(new double[] { 1, 0, 3 }));
            });
        }
    }

    [Test]
    public void ReleaseOnARecordingTapeOrOfAForeignTensorDoesNothing()
    {
        using var foreign = Cpu.Empty(new Shape(2), DType.Float64);
        using (var noGrad = Tape.NoGrad(Cpu)) noGrad.Release(foreign);
        Assert.That(foreign.IsDisposed, Is.False);
        using var tape = new Tape(Cpu);
        var own = tape.Empty(new Shape(2), DType.Float64);
        tape.Release(own);
        Assert.That(own.IsDisposed, Is.False, "backward steps may still read it");
    }

    [Test]
    public void FirstBackwardOverwritesAndLaterOnesAccumulateUntilZeroGrad()
    {
        // y = Σ w·x (as a 1×1 linear layer); ∂y/∂w = x.
        using var w = Tensor.FromHost(Cpu, new double[] { 0.5, -2 }, 1, 2);
        using var x = Tensor.FromHost(Cpu, new double[] { 3, 4 }, 1, 2);
        w.RequiresGrad = true;
        w.Grad = Tensor.FromHost(Cpu, new double[] { 99, 99 }, 1, 2); // stale values from an earlier step

        void Pass()
        {
            using var tape = new Tape(Cpu);
            tape.Backward(F.Linear(tape, x, w));
        }

        Pass();
        Assert.That(w.Grad!.ToHost<double>(), Is.EqualTo(new double[] { 3, 4 }), "the first write overwrites stale values");
        Pass();
        Assert.That(w.Grad!.ToHost<double>(), Is.EqualTo(new double[] { 6, 8 }), "a second pass accumulates");
        w.GradIsFresh = false;
        Pass();
        Assert.That(w.Grad!.ToHost<double>(), Is.EqualTo(new double[] { 3, 4 }), "clearing the flag restarts");
    }

    [Test]
    public void TapeDisposesItsIntermediatesButNotItsInputs()
    {
        using var x = Tensor.FromHost(Cpu, new double[] { -1, 2, -3, 4 }, 1, 1, 2, 2);
        Tensor y;
        using (var tape = new Tape(Cpu)) y = F.Relu(tape, x);
        Assert.That(y.IsDisposed, Is.True);
        Assert.That(x.IsDisposed, Is.False);
    }

    [Test]
    public void KeptTensorsOutliveTheTape()
    {
        using var x = Tensor.FromHost(Cpu, new double[] { -1, 2 }, 1, 2, 1, 1);
        Tensor y;
        using (var tape = Tape.NoGrad(Cpu)) y = tape.Keep(F.Relu(tape, x));
        using (y) Assert.That(y.ToHost<double>(), Is.EqualTo(new double[] { 0, 2 }));
    }

    [Test]
    public void BackwardTwiceOnOneTapeIsRefused()
    {
        using var w = Tensor.FromHost(Cpu, new double[] { 1, 2 }, 1, 2);
        using var x = Tensor.FromHost(Cpu, new double[] { 1, 1 }, 1, 2);
        w.RequiresGrad = true;
        using var tape = new Tape(Cpu);
        var y = F.Linear(tape, x, w);
        tape.Backward(y);
        Assert.That(() => tape.Backward(y), Throws.InvalidOperationException.With.Message.Contains("new tape"));
    }

    [Test]
    public void CheckerCatchesAWrongGradient()
    {
        // y = 2x with a backward that forgets the factor 2: must fail, in both modes.
        static Tensor Wrong(Tape tape, Tensor x)
        {
            var y = tape.Empty(x.Shape, x.DType);
            tape.Backend.Copy(x, y);
            tape.Backend.Scale(y, 2);
            if (tape.NeedsGrad(x)) tape.Record(y, () => tape.AccumulateGrad(x, dx => tape.Backend.Copy(y.Grad!, dx)));
            return y;
        }
        using var x = OpGradChecks.RandomInputs(Cpu, 1, [[2, 3]])[0];
        foreach (var mode in new[] { GradCheckMode.FullJacobian, GradCheckMode.RandomDirections })
        {
            var result = GradCheck.Run((t, i) => Wrong(t, i[0]), [x], new GradCheckOptions { Mode = mode });
            Assert.That(result.Passed, Is.False, mode.ToString());
            Assert.That(result.MaxRelativeError, Is.EqualTo(0.5).Within(1e-6), "analytic 1 against numeric 2");
            Assert.That(result.ThrowIfFailed, Throws.TypeOf<GradCheckFailedException>());
        }
    }

    [Test]
    public void CheckerPassesALayerInBothModes()
    {
        // A custom layer checked the way a user would (tolerance 1e-6, float64).
        using var layer = new Conv2d(new ParameterInit(Cpu, DType.Float64, new RandomStream(3)), 2, 3, 3, dilation: 2, bias: true);
        using var x = OpGradChecks.RandomInputs(Cpu, 2, [[2, 2, 6, 6]])[0];
        foreach (var mode in new[] { GradCheckMode.FullJacobian, GradCheckMode.RandomDirections })
        {
            var result = GradCheck.Run(layer, x, new GradCheckOptions { Mode = mode, Tolerance = 1e-6 });
            Assert.That(result.Inputs.Select(i => i.Name), Is.EqualTo(new[] { "input", "weight", "bias" }));
            Assert.That(result.Passed, Is.True, result.ToString());
        }
    }

    [Test]
    public void ModuleListsParametersAndBuffersInAStableOrder()
    {
        var init = new ParameterInit(Cpu, DType.Float32, new RandomStream(1));
        using var net = new Sequential()
            .Add("conv", new Conv2d(init, 1, 4, 3))
            .Add("bn", new BatchNorm2d(init, 4, scale: true))
            .Add("fc", new Linear(init, 4, 2));
        Assert.That(net.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "conv.weight", "bn.gamma", "bn.beta", "fc.weight", "fc.bias" }));
        Assert.That(net.NamedBuffers().Select(p => p.Name), Is.EqualTo(new[] { "bn.running_mean", "bn.running_var" }));
        Assert.That(net.ParameterCount, Is.EqualTo(36 + 4 + 4 + 8 + 2));
        net.Eval();
        Assert.That(net.Layers.All(l => !l.IsTraining), Is.True);
    }

    [Test]
    public void BatchNormWithFusedReluIsBatchNormThenReluInOneTapeStep()
    {
        var init = new ParameterInit(Cpu, DType.Float64, new RandomStream(3));
        using var plain = new BatchNorm2d(init, 3, scale: true);
        using var fused = new BatchNorm2d(init, 3, scale: true) { FusedRelu = true };
        using var x = OpGradChecks.RandomInputs(Cpu, 4, [[2, 3, 4, 4]])[0];
        using var tape = new Tape(Cpu);
        var expected = F.Relu(tape, plain.Forward(tape, x)).ToHost<double>();
        var steps = tape.Count;
        var y = fused.Forward(tape, x).ToHost<double>();
        Assert.Multiple(() =>
        {
            Assert.That(steps, Is.EqualTo(2));
            Assert.That(tape.Count - steps, Is.EqualTo(1), "one backward step, one tensor kept");
            Assert.That(y, Is.EqualTo(expected));
            Assert.That(y, Has.Some.EqualTo(0.0));
            Assert.That(fused.Kind, Is.EqualTo("batch norm (scale, shift) + ReLU"));
            Assert.That(fused.NamedParameters().Select(p => p.Name), Is.EqualTo(plain.NamedParameters().Select(p => p.Name)));
        });
    }

    [Test]
    public void GlorotUniformStaysWithinItsBound()
    {
        var init = new ParameterInit(Cpu, DType.Float64, new RandomStream(9));
        using var w = init.GlorotUniform(new Shape(32, 32, 3, 3), 288, 288);
        var values = w.ToHost<double>();
        var limit = Math.Sqrt(6.0 / 576);
        Assert.That(values.Max(), Is.LessThan(limit).And.GreaterThan(0.9 * limit));
        Assert.That(values.Min(), Is.GreaterThan(-limit).And.LessThan(-0.9 * limit));
        Assert.That(Math.Abs(values.Average()), Is.LessThan(0.01));
    }

    [Test]
    public void DropoutDrawsFreshMasksAndRewindingReplaysThem()
    {
        var random = new RandomStream(42);
        using var x = Cpu.Empty(new Shape(1, 1, 16, 16), DType.Float32);
        Cpu.Fill(x, 1);
        float[] Draw()
        {
            using var tape = Tape.NoGrad(Cpu);
            return F.Dropout(tape, x, 0.5, random).ToHost<float>();
        }
        var first = Draw();
        Assert.That(random.Offset, Is.EqualTo(256UL));
        var second = Draw();
        random.Offset = 0;
        Assert.That(second, Is.Not.EqualTo(first));
        Assert.That(Draw(), Is.EqualTo(first));
        Assert.That(first.Distinct().OrderBy(v => v), Is.EqualTo(new float[] { 0, 2 }));
    }

    [Test]
    public void BatchNormLayerUsesMomentumPointOneAndEpsOneInTenThousand()
    {
        // One channel, values 1..4: batch mean 2.5, biased variance 1.25, unbiased 5/3.
        var init = new ParameterInit(Cpu, DType.Float64, new RandomStream(1));
        using var bn = new BatchNorm2d(init, 1);
        using var x = Tensor.FromHost(Cpu, new double[] { 1, 2, 3, 4 }, 1, 1, 2, 2);
        using (var tape = Tape.NoGrad(Cpu))
        {
            var y = bn.Forward(tape, x).ToHost<double>();
            Assert.That(y[0], Is.EqualTo((1 - 2.5) / Math.Sqrt(1.25 + 1e-4)).Within(1e-12));
        }
        Assert.That(bn.RunningMean.ToHost<double>()[0], Is.EqualTo(0.1 * 2.5).Within(1e-12));
        Assert.That(bn.RunningVar.ToHost<double>()[0], Is.EqualTo(0.9 * 1 + 0.1 * 5.0 / 3).Within(1e-12));
        Assert.That(bn.Gamma, Is.Null, "no scale by default");
        bn.Eval();
        using (var tape = Tape.NoGrad(Cpu))
        {
            var y = bn.Forward(tape, x).ToHost<double>();
            var (m, v) = (0.25, 0.9 + 0.5 / 3);
            Assert.That(y[3], Is.EqualTo((4 - m) / Math.Sqrt(v + 1e-4)).Within(1e-12), "inference uses the running statistics");
        }
    }
}
