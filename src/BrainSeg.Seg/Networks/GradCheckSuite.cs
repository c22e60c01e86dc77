using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Checking;

namespace BrainSeg.Seg.Networks;

/// <summary>One line of the suite's report.</summary>
public sealed record GradCheckRow(string Name, string Mode, double MaxRelativeError, double MaxAbsoluteError, double Tolerance, bool Passed, string Details);

/// <summary>
/// Every gradient check the project ships: each op of the engine (<see cref="OpGradChecks"/>) and each
/// whole network with its loss, on any backend. Networks are checked in float64 with C = 3 classes and a
/// batch of 2 at the smallest input that yields an output, in training mode: batch norm as a function of
/// the whole batch, dropout replaying the same masks (the stream is rewound before every evaluation).
/// Random-direction mode: the data inputs and all parameters (as one group, step 1e-8) each perturbed along a random direction.
/// </summary>
public static class GradCheckSuite
{
    public const int Classes = 3;
    public const int Batch = 2;

    public static readonly GradCheckOptions NetworkOptions = new()
    {
        Mode = GradCheckMode.RandomDirections, Tolerance = 1e-6, Epsilon = 1e-6, Directions = 1,
    };

    /// <summary>Step for the joint parameter direction: small enough that ReLU and max-pool switches stay rare.</summary>
    public const double ParameterEpsilon = 1e-8;

    public static IReadOnlyList<GradCheckCase> NetworkCases { get; } =
    [
        new($"FCN (C={Classes}, batch {Batch}, 31×31 → 1×1) + cross-entropy", b => Segmentation(b, new FcnNetwork(b, Classes, Float64(1)))),
        new($"dilated network (C={Classes}, batch {Batch}, 67×67 → 1×1) + cross-entropy", b => Segmentation(b, new DilatedNetwork(b, Classes, Float64(2)))),
        new($"discriminator (C={Classes}, batch {Batch}, 25×25 + softmax segmentation) + cross-entropy", Discriminate),
    ];

    public static IReadOnlyList<GradCheckCase> Cases { get; } = [.. OpGradChecks.Cases, .. NetworkCases];

    /// <summary>Runs every check on <paramref name="backend"/>, yielding a row as each finishes.</summary>
    public static IEnumerable<GradCheckRow> Run(IBackend backend)
    {
        foreach (var c in Cases) yield return Row(c.Name, c.Run(backend));
    }

    public static GradCheckRow Row(string name, GradCheckResult r) =>
        new(name, r.Mode == GradCheckMode.FullJacobian ? "full Jacobian" : "random directions",
            r.MaxRelativeError, r.MaxAbsoluteError, r.Tolerance, r.Passed, r.ToString());

    private static NetworkOptions Float64(ulong seed) => new() { DType = DType.Float64, Seed = seed };

    private static GradCheckResult Segmentation(IBackend b, SegmentationNetwork net)
    {
        using var _ = net;
        var side = net.ReceptiveField;
        using var x = OpGradChecks.RandomInputs(b, 31, [[Batch, 1, side, side]])[0];
        using var target = OneHot(b, [Batch, Classes, 1, 1], seed: 32);
        var start = net.Random.Offset;
        return CheckWithParameters(net, [x], ["image"], () => net.Random.Offset = start,
            (tape, t) => F.SoftmaxCrossEntropy(tape, net.Forward(tape, t[0]), target));
    }

    private static GradCheckResult Discriminate(IBackend b)
    {
        using var net = new Discriminator(b, Classes, Float64(3));
        var inputs = OpGradChecks.RandomInputs(b, 33, [[Batch, 1, 25, 25], [Batch, Classes, 21, 21]]);
        using var image = inputs[0];
        using var logits = inputs[1];
        using var segmentation = Softmax(b, logits);
        using var target = OneHot(b, [Batch, 2], seed: 34);
        var start = net.Random.Offset;
        return CheckWithParameters(net, [image, segmentation], ["image", "segmentation"], () => net.Random.Offset = start,
            (tape, t) => F.SoftmaxCrossEntropy(tape, net.Forward(tape, t[0], t[1]), target));
    }

    private static GradCheckResult CheckWithParameters(INetwork net, Tensor[] data, string[] names, Action rewind, Func<Tape, Tensor[], Tensor> f)
    {
        var parameters = net.Module.Parameters().ToArray();
        GradCheckGroup[] groups =
        [
            .. names.Select((n, i) => new GradCheckGroup(n, [i])),
            new("parameters", [.. Enumerable.Range(data.Length, parameters.Length)], ParameterEpsilon),
        ];
        return GradCheck.Run(f, [.. data, .. parameters], NetworkOptions with { Groups = groups, BeforeEachEvaluation = rewind });
    }

    private static Tensor Softmax(IBackend b, Tensor logits)
    {
        var probs = b.Empty(logits.Shape, logits.DType);
        b.SoftmaxForward(logits, probs);
        return probs;
    }

    // One-hot targets [N,C,…] with classes drawn from a seeded stream.
    private static Tensor OneHot(IBackend b, int[] shape, ulong seed)
    {
        var (n, c) = (shape[0], shape[1]);
        var plane = (int)(new Shape(shape).Numel / (n * c));
        var draws = new double[n * plane];
        new RandomStream(seed).FillUniform(draws, 0, c);
        var values = new double[n * c * plane];
        for (var i = 0; i < n; i++)
            for (var p = 0; p < plane; p++)
                values[(i * c + (int)draws[i * plane + p]) * plane + p] = 1;
        return Tensor.FromHost(b, values, shape);
    }
}
