using BrainSeg.Engine.Autograd;

namespace BrainSeg.Engine.Checking;

/// <summary>One named gradient check that runs on a given backend.</summary>
public sealed record GradCheckCase(string Name, Func<IBackend, GradCheckResult> Run);

/// <summary>
/// The gradient check of every differentiable op of <see cref="F"/>, in float64 on small random inputs,
/// full Jacobian, relative tolerance 1e-6. Non-smooth ops are checked away from their kinks: ReLU
/// inputs keep |x| ≥ 0.1, max-pool inputs are distinct values 0.05 apart, dropout uses a fixed mask; the
/// seeds of the fused batch norm + ReLU and of the fused convolution + ReLU leave every output at least 0.01
/// from 0 (the convolution's case checks its own).
/// </summary>
public static class OpGradChecks
{
    public static readonly GradCheckOptions Options = new() { Tolerance = 1e-6, Epsilon = 1e-6, Mode = GradCheckMode.FullJacobian };

    public static IReadOnlyList<GradCheckCase> Cases { get; } =
    [
        new("conv2d 3×3 valid + bias", b => Check(b, 1, [[2, 3, 6, 6], [4, 3, 3, 3], [4]], (t, x) => F.Conv2d(t, x[0], x[1], x[2]))),
        new("conv2d 3×3 dilation 2, padding 1", b => Check(b, 2, [[2, 2, 7, 7], [3, 2, 3, 3]], (t, x) => F.Conv2d(t, x[0], x[1], spec: new Conv2dSpec(2, 1)))),
        new("conv2d 3×3 + bias + ReLU (fused)", ConvRelu),
        new("conv2d 1×1", b => Check(b, 3, [[2, 4, 3, 3], [5, 4, 1, 1], [5]], (t, x) => F.Conv2d(t, x[0], x[1], x[2]))),
        new("linear + bias", b => Check(b, 4, [[3, 5], [4, 5], [4]], (t, x) => F.Linear(t, x[0], x[1], x[2]))),
        new("batch norm training (shift)", b => BatchNorm(b, 5, training: true, scale: false, [3, 2, 3, 3])),
        new("batch norm training (scale, shift)", b => BatchNorm(b, 6, training: true, scale: true, [2, 3, 2, 3])),
        new("batch norm training [N,C] (scale, shift)", b => BatchNorm(b, 7, training: true, scale: true, [5, 3])),
        new("batch norm inference (scale, shift)", b => BatchNorm(b, 8, training: false, scale: true, [2, 2, 3, 3])),
        new("batch norm + ReLU training (shift)", b => BatchNorm(b, 25, training: true, scale: false, [3, 2, 3, 3], relu: true)),
        new("batch norm + ReLU training (scale, shift)", b => BatchNorm(b, 22, training: true, scale: true, [2, 3, 2, 3], relu: true)),
        new("batch norm + ReLU training [N,C] (scale, shift)", b => BatchNorm(b, 23, training: true, scale: true, [5, 3], relu: true)),
        new("batch norm + ReLU inference (scale, shift)", b => BatchNorm(b, 24, training: false, scale: true, [2, 2, 3, 3], relu: true)),
        new("relu (away from 0)", b => Check(b, 9, [[2, 3, 4, 4]], (t, x) => F.Relu(t, x[0]), AwayFromZero)),
        new("dropout p=0.5 (fixed mask)", Dropout),
        new("max pool 3×3 stride 3 (no ties)", b => Check(b, 11, [[2, 2, 6, 6]], (t, x) => F.MaxPool2d(t, x[0], 3, 3), Distinct)),
        new("max pool 3×3 stride 2, overlapping (no ties)", b => Check(b, 12, [[1, 2, 7, 7]], (t, x) => F.MaxPool2d(t, x[0], 3, 2), Distinct)),
        new("concat channels", b => Check(b, 13, [[2, 2, 3, 3], [2, 3, 3, 3]], (t, x) => F.ConcatChannels(t, x[0], x[1]))),
        new("concat a tensor with itself (gradient accumulation)", b => Check(b, 14, [[2, 2, 3, 3]], (t, x) => F.ConcatChannels(t, x[0], x[0]))),
        new("center crop 6×6 → 3×4", b => Check(b, 15, [[2, 2, 6, 6]], (t, x) => F.CenterCrop(t, x[0], 3, 4))),
        new("center pad 3×3 → 6×5", b => Check(b, 16, [[2, 2, 3, 3]], (t, x) => F.CenterPad(t, x[0], 6, 5))),
        new("flatten → linear", b => Check(b, 17, [[2, 3, 2, 2], [4, 12]], (t, x) => F.Linear(t, F.Flatten(t, x[0]), x[1]))),
        new("reshape [2,3,2,4] → [2,6,4,1] → conv2d 1×1", b => Check(b, 26, [[2, 3, 2, 4], [5, 6, 1, 1]], (t, x) => F.Conv2d(t, F.Reshape(t, x[0], 2, 6, 4, 1), x[1]))),
        new("concat along the batch", b => Check(b, 27, [[2, 3, 2, 3], [1, 3, 2, 3]], (t, x) => F.ConcatBatch(t, x[0], x[1]))),
        new("softmax over channels", b => Check(b, 18, [[2, 4, 2, 3]], (t, x) => F.Softmax(t, x[0]))),
        new("softmax cross-entropy (soft targets)", b => CrossEntropy(b, 19, [2, 4, 3, 3], oneHot: false)),
        new("softmax cross-entropy two-class [N,2] (one-hot)", b => CrossEntropy(b, 20, [4, 2], oneHot: true)),
    ];

    /// <summary>Random float64 tensors of the given shapes (values in [−1, 1], or shaped by <paramref name="transform"/>).</summary>
    public static Tensor[] RandomInputs(IBackend backend, ulong seed, int[][] shapes, Func<double[], double[]>? transform = null)
    {
        var random = new RandomStream(seed);
        return shapes.Select(shape =>
        {
            var values = new double[new Shape(shape).Numel];
            random.FillUniform(values, -1, 1);
            return Tensor.FromHost(backend, transform?.Invoke(values) ?? values, shape);
        }).ToArray();
    }

    private static GradCheckResult Check(IBackend backend, ulong seed, int[][] shapes, Func<Tape, Tensor[], Tensor> f,
        Func<double[], double[]>? transform = null, GradCheckOptions? options = null)
    {
        var inputs = RandomInputs(backend, seed, shapes, transform);
        try { return GradCheck.Run(f, inputs, options ?? Options); }
        finally { foreach (var t in inputs) t.Dispose(); }
    }

    private static double[] AwayFromZero(double[] v) => Array.ConvertAll(v, x => x < 0 ? x - 0.1 : x + 0.1);

    // A random permutation of 0, 0.05, 0.10, …: no two values within 0.05, so ±ε never swaps a winner.
    private static double[] Distinct(double[] v)
    {
        var order = Enumerable.Range(0, v.Length).OrderBy(i => v[i]).ToArray();
        var result = new double[v.Length];
        for (var rank = 0; rank < order.Length; rank++) result[order[rank]] = 0.05 * rank - 1;
        return result;
    }

    private static GradCheckResult BatchNorm(IBackend b, ulong seed, bool training, bool scale, int[] xShape, bool relu = false)
    {
        var c = xShape[1];
        using var stats = new BatchNormStats(b, c);
        var shapes = scale ? new[] { xShape, [c], [c] } : [xShape, [c]];
        return Check(b, seed, shapes, (t, x) => F.BatchNorm(t, x[0], scale ? x[1] : null, x[^1], stats.Mean, stats.Var, training, 0.1, 1e-4, relu));
    }

    private sealed class BatchNormStats : IDisposable
    {
        public BatchNormStats(IBackend b, int c)
        {
            (Mean, Var) = (Tensor.FromHost(b, Enumerable.Range(0, c).Select(i => 0.1 * i).ToArray(), c),
                           Tensor.FromHost(b, Enumerable.Range(0, c).Select(i => 0.5 + 0.25 * i).ToArray(), c));
        }
        public Tensor Mean { get; }
        public Tensor Var { get; }
        public void Dispose() { Mean.Dispose(); Var.Dispose(); }
    }

    private static GradCheckResult ConvRelu(IBackend b)
    {
        const ulong seed = 48;
        int[][] shapes = [[2, 3, 6, 6], [4, 3, 3, 3], [4]];
        // The check is only meaningful away from the kink: ±ε must not carry an output across 0.
        var inputs = RandomInputs(b, seed, shapes);
        try
        {
            using var tape = Tape.NoGrad(b);
            var nearest = F.Conv2d(tape, inputs[0], inputs[1], inputs[2]).ToHost<double>().Min(Math.Abs);
            if (nearest < 0.01) throw new InvalidOperationException($"Seed {seed} puts an output {nearest:g3} from ReLU's kink; choose another.");
        }
        finally { foreach (var t in inputs) t.Dispose(); }
        return Check(b, seed, shapes, (t, x) => F.Conv2d(t, x[0], x[1], x[2], relu: true));
    }

    private static GradCheckResult Dropout(IBackend b)
    {
        int[] shape = [2, 3, 4, 4];
        using var mask = b.Empty(new Shape(shape), DType.Float64);
        b.DropoutMask(mask, 0.5, seed: 10, offset: 0);
        return Check(b, 10, [shape], (t, x) => F.DropoutWithMask(t, x[0], mask));
    }

    private static GradCheckResult CrossEntropy(IBackend b, ulong seed, int[] shape, bool oneHot)
    {
        // Targets: per-voxel probabilities (positive, summing to 1 over channels), or one-hot.
        var channels = shape[1];
        var plane = shape.Length == 4 ? shape[2] * shape[3] : 1;
        var values = new double[new Shape(shape).Numel];
        new RandomStream(seed + 1000).FillUniform(values, 0.1, 1);
        for (var start = 0; start < values.Length; start += channels * plane)
            for (var p = 0; p < plane; p++)
            {
                double sum = 0;
                var best = 0;
                for (var c = 0; c < channels; c++)
                {
                    sum += values[start + c * plane + p];
                    if (values[start + c * plane + p] > values[start + best * plane + p]) best = c;
                }
                for (var c = 0; c < channels; c++)
                    values[start + c * plane + p] = oneHot ? (c == best ? 1 : 0) : values[start + c * plane + p] / sum;
            }
        using var target = Tensor.FromHost(b, values, shape);
        return Check(b, seed, [shape], (t, x) => F.SoftmaxCrossEntropy(t, x[0], target));
    }
}
