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

        foreach (var (name, members, _) in o.Groups ?? [])
            if (members.Length == 0 || members.Any(i => i < 0 || i >= inputs.Length))
                throw new ArgumentException($"Gradient-check group '{name}' must list input indices in [0, {inputs.Length}).");

        var check = new Checker(f, inputs, o);
        // Auto needs the output size only when the inputs alone do not rule the full Jacobian out.
        var totalInputs = inputs.Sum(t => t.Numel);
        var mode = o.Mode != GradCheckMode.Auto ? o.Mode
            : 2 * totalInputs < o.FullJacobianMaxEvaluations && check.OutputShape.Numel + 2 * totalInputs <= o.FullJacobianMaxEvaluations
                ? GradCheckMode.FullJacobian
                : GradCheckMode.RandomDirections;
        var results = mode == GradCheckMode.FullJacobian ? check.FullJacobian() : check.RandomDirections();
        return new GradCheckResult(mode, o, results);
    }

    /// <summary>
    /// Checks a layer's gradient with respect to its input and to each of its parameters. With
    /// <paramref name="parametersTogether"/> (random-direction mode) all parameters form one group.
    /// </summary>
    public static GradCheckResult Run(Layer layer, Tensor input, GradCheckOptions? options = null, bool parametersTogether = false)
    {
        var parameters = layer.NamedParameters().ToArray();
        var o = (options ?? new GradCheckOptions()) with { InputNames = ["input", .. parameters.Select(p => p.Name)] };
        if (parametersTogether)
            o = o with { Mode = GradCheckMode.RandomDirections, Groups = [new("input", [0]), new("parameters", [.. Enumerable.Range(1, parameters.Length)])] };
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
        private Shape? _outputShape;

        public Checker(Func<Tape, Tensor[], Tensor> f, Tensor[] inputs, GradCheckOptions o)
        {
            (_f, _inputs, _o, _backend) = (f, inputs, o, inputs[0].Backend);
            _original = inputs.Select(ReadHost).ToArray();
            _random = new RandomStream(o.Seed);
        }

        /// <summary>The function's output shape (one evaluation the first time it is asked).</summary>
        public Shape OutputShape => _outputShape ??= Evaluate().Shape;

        public List<InputCheck> FullJacobian()
        {
            var m = (int)OutputShape.Numel;
            // Analytic: row j of every input's Jacobian from a backward pass seeded with the unit vector e_j.
            var analytic = _inputs.Select(t => new double[m * t.Numel]).ToArray();
            var seed = new double[m];
            for (var j = 0; j < m; j++)
            {
                seed[j] = 1;
                var grads = AnalyticGradients(_ => seed);
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
            var groups = _o.Groups ?? _inputs.Select((t, i) => new GradCheckGroup(Name(i), [i])).ToArray();
            // The output weighting v needs the output's size: the analytic pass reports it, so the first
            // pass runs with v drawn lazily (the draw happens after f ran, before backward).
            double[]? v = null;
            var grads = AnalyticGradients(shape => v = Uniform(shape.Numel));
            var results = new List<InputCheck>();
            foreach (var (name, members, groupEpsilon) in groups)
            {
                var eps = groupEpsilon ?? _o.Epsilon;
                double maxAbs = 0, maxRel = 0;
                var passed = true;
                var redraws = 0;
                for (var d = 0; d < _o.Directions; d++)
                {
                    while (true)
                    {
                        var u = members.Select(i => Uniform(_inputs[i].Numel)).ToArray();
                        var analytic = members.Select((i, k) => Dot(grads[i], u[k])).Sum();
                        var numeric = Directional(members, u, v!, eps);
                        var (abs, rel, ok) = Compare(analytic, numeric);
                        // A mismatch counts only where the function is smooth along u: the differences with
                        // steps ε and ε/2 must agree. Otherwise a ReLU or max-pool switch lies within ±ε.
                        if (!ok && redraws < _o.MaxRedraws)
                        {
                            var half = Directional(members, u, v!, eps / 2);
                            var (_, jump, smooth) = Compare(numeric, half);
                            if (!smooth && jump > 0) { redraws++; continue; }
                        }
                        (maxAbs, maxRel, passed) = (Math.Max(maxAbs, abs), Math.Max(maxRel, rel), passed && ok);
                        break;
                    }
                }
                results.Add(new InputCheck(name, members.Sum(i => _inputs[i].Numel), maxAbs, maxRel, passed, redraws));
            }
            return results;
        }

        private (double Abs, double Rel, bool Ok) Compare(double a, double b)
        {
            var abs = Math.Abs(a - b);
            var scale = Math.Max(Math.Abs(a), Math.Abs(b));
            var rel = scale > 0 ? abs / scale : 0;
            return (abs, rel, rel <= _o.Tolerance || abs <= _o.AbsoluteTolerance);
        }

        // (⟨v, f(x + εu)⟩ − ⟨v, f(x − εu)⟩) / 2ε, perturbing the given inputs together.
        private double Directional(int[] members, double[][] u, double[] v, double eps)
        {
            double Side(double sign)
            {
                for (var k = 0; k < members.Length; k++)
                {
                    var (x0, uk) = (_original[members[k]], u[k]);
                    var x = new double[x0.Length];
                    for (var e = 0; e < x.Length; e++) x[e] = x0[e] + sign * eps * uk[e];
                    Write(members[k], x);
                }
                return Dot(v, Evaluate().Values);
            }
            var (plus, minus) = (Side(1), Side(-1));
            foreach (var i in members) Write(i, _original[i]);
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
        private double[][] AnalyticGradients(Func<Shape, double[]> weighting)
        {
            var saved = _inputs.Select(t => t.RequiresGrad).ToArray();
            try
            {
                foreach (var t in _inputs) { t.RequiresGrad = true; t.GradIsFresh = false; }
                _o.BeforeEachEvaluation?.Invoke();
                using var tape = new Tape(_backend);
                var y = _f(tape, _inputs);
                _outputShape ??= y.Shape;
                if (y.Shape != _outputShape) throw new InvalidOperationException($"The function's output shape changed between calls ({_outputShape} then {y.Shape}).");
                var v = weighting(y.Shape);
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

        private static void WriteTo(Tensor t, double[] values) => t.UploadDoubles(values);

        private static double[] ReadHost(Tensor t) => t.DType.IsFloatingPoint()
            ? t.ToHostDoubles()
            : throw new ArgumentException($"GradCheck needs a floating-point output, got {t.Describe()}.");

        private static double Dot(double[] a, double[] b)
        {
            double s = 0;
            for (var k = 0; k < a.Length; k++) s += a[k] * b[k];
            return s;
        }
    }
}
