using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Nn;

namespace BrainSeg.Engine.Checking;

/// <summary>
/// Checks the analytic gradients of any function built from <see cref="F"/> ops (or any
/// <see cref="Layer"/>) against central finite differences, on any backend. Inputs are perturbed in
/// place and restored; use float64 tensors for meaningful tolerances.
/// <code>
///   var x = Tensor.FromHost(backend, data, 2, 3, 5, 5);            // float64
///   var w = Tensor.FromHost(backend, weights, 4, 3, 3, 3);
///   var result = GradCheck.Run((tape, t) => F.Conv2d(tape, t[0], t[1]), [x, w]);
///   result.ThrowIfFailed();                                        // or Assert.That(result.Passed, result.ToString())
/// </code>
/// The function's output may have any shape; it is reduced to ⟨v, f(x)⟩ with a fixed random v. Gradients
/// previously held by the inputs are overwritten.
/// </summary>
public static class GradCheck
{
    /// <summary>Checks ∂f/∂inputs[i] for every input.</summary>
    public static GradCheckResult Run(Func<Tape, Tensor[], Tensor> f, Tensor[] inputs, GradCheckOptions? options = null)
    {
        var o = options ?? new GradCheckOptions();
        if (inputs.Length == 0) throw new ArgumentException("GradCheck needs at least one input to differentiate.", nameof(inputs));
        foreach (var t in inputs)
            if (!t.DType.IsFloatingPoint()) throw new ArgumentException($"GradCheck differentiates floating-point inputs only; {t.Describe()} is not.");
        if (o.InputNames is { } names && names.Count != inputs.Length)
            throw new ArgumentException($"{names.Count} input names were given for {inputs.Length} inputs.");

        var check = new Checker(f, inputs, o);
        var totalInputs = inputs.Sum(t => t.Numel);
        var mode = o.Mode != GradCheckMode.Auto ? o.Mode
            : check.OutputElements + 2 * totalInputs <= o.FullJacobianMaxEvaluations ? GradCheckMode.FullJacobian
            : GradCheckMode.RandomDirections;
        var results = mode == GradCheckMode.FullJacobian ? check.FullJacobian() : check.RandomDirections();
        return new GradCheckResult(mode, o, results);
    }

    /// <summary>Checks a layer's gradient with respect to its input and to each of its parameters.</summary>
    public static GradCheckResult Run(Layer layer, Tensor input, GradCheckOptions? options = null)
    {
        var parameters = layer.NamedParameters().ToArray();
        var o = (options ?? new GradCheckOptions()) with { InputNames = ["input", .. parameters.Select(p => p.Name)] };
        return Run((tape, t) => layer.Forward(tape, t[0]), [input, .. parameters.Select(p => p.Tensor)], o);
    }

    private sealed class Checker
    {
        private readonly Func<Tape, Tensor[], Tensor> _f;
        private readonly Tensor[] _inputs;
        private readonly GradCheckOptions _o;
        private readonly IBackend _backend;
        private readonly double[][] _original;
        private readonly RandomStream _random;
        private readonly Shape _outputShape;

        public Checker(Func<Tape, Tensor[], Tensor> f, Tensor[] inputs, GradCheckOptions o)
        {
            (_f, _inputs, _o, _backend) = (f, inputs, o, inputs[0].Backend);
            _original = inputs.Select(ReadHost).ToArray();
            _random = new RandomStream(o.Seed);
            _outputShape = Evaluate().Shape;
        }

        public long OutputElements => _outputShape.Numel;

        public List<InputCheck> FullJacobian()
        {
            var m = (int)_outputShape.Numel;
            // Analytic: row j of every input's Jacobian from a backward pass seeded with the unit vector e_j.
            var analytic = _inputs.Select(t => new double[m * t.Numel]).ToArray();
            var seed = new double[m];
            for (var j = 0; j < m; j++)
            {
                seed[j] = 1;
                var grads = AnalyticGradients(seed);
                seed[j] = 0;
                for (var i = 0; i < _inputs.Length; i++)
                    grads[i].CopyTo(analytic[i], j * _inputs[i].Numel);
            }

            var results = new List<InputCheck>();
            for (var i = 0; i < _inputs.Length; i++)
            {
                var n = (int)_inputs[i].Numel;
                double maxDiff = 0, maxEntry = 0;
                var x = (double[])_original[i].Clone();
                for (var k = 0; k < n; k++)
                {
                    x[k] = _original[i][k] + _o.Epsilon;
                    var plus = EvaluateWith(i, x).Output;
                    x[k] = _original[i][k] - _o.Epsilon;
                    var minus = EvaluateWith(i, x).Output;
                    x[k] = _original[i][k];
                    for (var j = 0; j < m; j++)
                    {
                        var numeric = (plus[j] - minus[j]) / (2 * _o.Epsilon);
                        var a = analytic[i][j * n + k];
                        maxDiff = Math.Max(maxDiff, Math.Abs(a - numeric));
                        maxEntry = Math.Max(maxEntry, Math.Max(Math.Abs(a), Math.Abs(numeric)));
                    }
                }
                Write(i, _original[i]);
                var rel = maxEntry > 0 ? maxDiff / maxEntry : 0;
                results.Add(new InputCheck(Name(i), n, maxDiff, rel, rel <= _o.Tolerance || maxDiff <= _o.AbsoluteTolerance));
            }
            return results;
        }

        public List<InputCheck> RandomDirections()
        {
            var v = Uniform(_outputShape.Numel);
            var grads = AnalyticGradients(v);
            var results = new List<InputCheck>();
            for (var i = 0; i < _inputs.Length; i++)
            {
                double maxAbs = 0, maxRel = 0;
                bool passed = true;
                var redraws = 0;
                for (var d = 0; d < _o.Directions; d++)
                {
                    double analytic, numeric;
                    while (true)
                    {
                        var u = Uniform(_inputs[i].Numel);
                        analytic = Dot(grads[i], u);
                        numeric = Directional(i, u, v, _o.Epsilon);
                        var half = Directional(i, u, v, _o.Epsilon / 2);
                        var smooth = Math.Abs(numeric - half) <= _o.Tolerance * Math.Max(Math.Abs(numeric), Math.Abs(half)) + _o.AbsoluteTolerance;
                        if (smooth || redraws == _o.MaxRedraws) break;
                        redraws++;
                    }
                    var abs = Math.Abs(analytic - numeric);
                    var scale = Math.Max(Math.Abs(analytic), Math.Abs(numeric));
                    var rel = scale > 0 ? abs / scale : 0;
                    maxAbs = Math.Max(maxAbs, abs);
                    maxRel = Math.Max(maxRel, rel);
                    passed &= rel <= _o.Tolerance || abs <= _o.AbsoluteTolerance;
                }
                results.Add(new InputCheck(Name(i), _inputs[i].Numel, maxAbs, maxRel, passed, redraws));
            }
            return results;
        }

        // (⟨v, f(x + εu)⟩ − ⟨v, f(x − εu)⟩) / 2ε, perturbing input i only.
        private double Directional(int i, double[] u, double[] v, double eps)
        {
            var x = new double[u.Length];
            for (var k = 0; k < u.Length; k++) x[k] = _original[i][k] + eps * u[k];
            var plus = Dot(v, EvaluateWith(i, x).Output);
            for (var k = 0; k < u.Length; k++) x[k] = _original[i][k] - eps * u[k];
            var minus = Dot(v, EvaluateWith(i, x).Output);
            Write(i, _original[i]);
            return (plus - minus) / (2 * eps);
        }

        private (double[] Output, Shape Shape) EvaluateWith(int i, double[] values)
        {
            Write(i, values);
            var y = Evaluate();
            return (y.Values, y.Shape);
        }

        private (double[] Values, Shape Shape) Evaluate()
        {
            _o.BeforeEachEvaluation?.Invoke();
            using var tape = Tape.NoGrad(_backend);
            var y = _f(tape, _inputs);
            return (ReadHost(y), y.Shape);
        }

        // ∇ of ⟨v, f⟩ with respect to every input (zeros where no gradient arrives).
        private double[][] AnalyticGradients(double[] v)
        {
            var saved = _inputs.Select(t => t.RequiresGrad).ToArray();
            try
            {
                foreach (var t in _inputs) { t.RequiresGrad = true; t.GradIsFresh = false; }
                _o.BeforeEachEvaluation?.Invoke();
                using var tape = new Tape(_backend);
                var y = _f(tape, _inputs);
                if (y.Shape != _outputShape) throw new InvalidOperationException($"The function's output shape changed between calls ({_outputShape} then {y.Shape}).");
                if (y.RequiresGrad)
                {
                    using var seed = _backend.Empty(y.Shape, y.DType);
                    WriteTo(seed, v);
                    tape.Backward(y, seed);
                }
                return _inputs.Select(t => t.GradIsFresh ? ReadHost(t.Grad!) : new double[t.Numel]).ToArray();
            }
            finally
            {
                for (var i = 0; i < _inputs.Length; i++) { _inputs[i].RequiresGrad = saved[i]; _inputs[i].GradIsFresh = false; }
            }
        }

        private double[] Uniform(long count)
        {
            var values = new double[count];
            _random.FillUniform(values, -1, 1);
            return values;
        }

        private string Name(int i) => _o.InputNames?[i] ?? _inputs[i].Name ?? $"input{i}";

        private void Write(int i, double[] values) => WriteTo(_inputs[i], values);

        private static void WriteTo(Tensor t, double[] values)
        {
            if (t.DType == DType.Float64) t.Backend.Upload<double>(values, t);
            else t.Backend.Upload<float>(Array.ConvertAll(values, v => (float)v), t);
        }

        private static double[] ReadHost(Tensor t) => t.DType switch
        {
            DType.Float64 => t.ToHost<double>(),
            DType.Float32 => Array.ConvertAll(t.ToHost<float>(), v => (double)v),
            _ => throw new ArgumentException($"GradCheck needs a floating-point output, got {t.Describe()}."),
        };

        private static double Dot(double[] a, double[] b)
        {
            double s = 0;
            for (var k = 0; k < a.Length; k++) s += a[k] * b[k];
            return s;
        }
    }
}
