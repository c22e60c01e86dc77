using System.Text;
using System.Text.Json;
using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Nn;
using BrainSeg.Engine.Optim;
using BrainSeg.Mri;
using BrainSeg.Seg.Networks;
using BrainSeg.Seg.Training;

namespace BrainSeg.Seg.Benchmarking;

/// <summary>
/// The measurements of `brainseg bench`, step for step the same work as benchmarks/peers/torch_peer.py:
/// random inputs (rotated over <see cref="BenchSettings.InputSets"/> batches), warm-up first, then each
/// repetition timed on its own and the median reported. No timed step waits for its own loss: the training
/// steps read none (as the peer), the adversarial iteration reads the one before it (as the training loop).
/// </summary>
public static class BenchRunner
{
    /// <summary>Forward FLOPs of one 51×51 FCN patch (C = 7), of one 87×87 dilated patch and of one discriminator pass (the issue's counts).</summary>
    public const double FcnFlops = 325e6, DilatedFlops = 413e6, DiscriminatorFlops = 26e6;

    /// <summary>Outputs per training patch (21×21): FCN FLOPs per output voxel = <see cref="FcnFlops"/> / 441.</summary>
    private const int PatchOutputs = 21 * 21;

    /// <summary>Input side of the conv-layer measurement.</summary>
    public const int ConvInput = 51;

    /// <summary>Side of the batch-norm measurement's planes (the FCN's first hidden layer).</summary>
    public const int NormSide = 49;

    /// <summary>
    /// Nominal FLOPs per element of batch norm + ReLU, forward and backward: the arithmetic of the formulas
    /// (moments 4, normalise and ReLU 4, gradient sums 6, input gradient 6). The layer is memory-bound: read its ms.
    /// </summary>
    public const double NormFlopsPerElement = 20;

    public static BenchResult Run(IBackend backend, BenchSettings s, IBenchClock clock, string variant)
    {
        using var work = Build(backend, s);

        for (var i = 0; i < s.WarmupReps; i++) work.Step(i);
        backend.Synchronize();

        var times = new List<double>(s.TimedReps);
        var counters = (backend as ICountingBackend)?.Counters;
        WorkCounts counted = default;
        var allocated = GC.GetTotalAllocatedBytes(precise: true);
        var started = System.Diagnostics.Stopwatch.StartNew();
        for (var r = 0; r < s.TimedReps; r++)
        {
            clock.Start();
            var before = counters?.Total ?? default;
            work.Step(s.WarmupReps + r);
            // Counted inside the step only: the clock's own event and wait are not the step's work.
            if (counters is not null) counted += counters.Total - before;
            times.Add(clock.StopMs());
            if (s.TimeLimitSeconds > 0 && times.Count >= 3 && started.Elapsed.TotalSeconds > s.TimeLimitSeconds) break;
        }
        allocated = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / times.Count;
        times.Sort();
        var median = times.Count % 2 == 1 ? times[times.Count / 2] : (times[times.Count / 2 - 1] + times[times.Count / 2]) / 2;
        double units = s.Step switch
        {
            BenchStep.Segment => s.Volume,
            BenchStep.Adversarial => 3.0 * s.Batch,
            _ => s.Batch,
        };
        return new BenchResult(s, DeviceName(backend), variant, median, times[0], times[^1], times.Count,
            units / median * 1e3, WorkFlops(s) / median / 1e9, clock.PeakBytes(), allocated, counters is null ? null : counted);
    }

    /// <summary>
    /// The step's time split by op: the workload is built on a <see cref="ProfilingBackend"/> over
    /// <paramref name="backend"/>, warmed up, then <paramref name="reps"/> repetitions are timed as a whole
    /// (<paramref name="clock"/>) and op by op (<paramref name="opClock"/>). Per-op timing adds its own cost
    /// (an event pair or two clock reads per op), so the plain <see cref="Run"/> gives the step's time.
    /// </summary>
    public static BenchProfile Profile(IBackend backend, BenchSettings s, IBenchClock clock, IOpClock opClock, int reps)
    {
        s.Validate();
        var profiler = new ProfilingBackend(backend, opClock);
        using var work = Build(profiler, s, new Random(12345));
        for (var i = 0; i < Math.Max(1, s.WarmupReps); i++) work.Step(i);
        backend.Synchronize();
        profiler.Reset();
        var counters = (backend as ICountingBackend)?.Counters;
        var counted = new Dictionary<string, WorkCounts>(StringComparer.Ordinal);
        double total = 0;
        for (var r = 0; r < reps; r++)
        {
            // Snapshots outside the timed span; the clocks' events and waits do not go through the backend's counters.
            var before = counters?.ByOp();
            clock.Start();
            work.Step(s.WarmupReps + r);
            total += clock.StopMs();
            if (counters is not null)
                foreach (var (op, c) in WorkCounters.Difference(counters.ByOp(), before!))
                    counted[op] = counted.GetValueOrDefault(op) + c;
            profiler.Collect();
        }
        var ops = profiler.Totals().Select(t => new BenchProfile.Row(t.Op, (double)t.Calls / reps, t.Ms / reps)).ToList();
        var countedOps = counters is null ? null
            : counted.Select(kv => (kv.Key, kv.Value)).OrderByDescending(r => r.Value.Bytes).ThenBy(r => r.Key, StringComparer.Ordinal).ToList();
        return new BenchProfile(total / reps, ops, countedOps, reps);
    }

    /// <summary>FLOPs of one repetition (backward ≈ 2× forward, so a training step is 3× forward).</summary>
    public static double WorkFlops(BenchSettings s) => s.Step switch
    {
        BenchStep.Fcn => 3 * FcnFlops * s.Batch,
        BenchStep.Dilated => 3 * DilatedFlops * s.Batch,
        BenchStep.Adversarial => 3.0 * s.Batch * (3 * FcnFlops + 2 * DiscriminatorFlops),
        BenchStep.Segment => FcnFlops / PatchOutputs * Math.Pow(s.Volume, 3),
        BenchStep.Conv => 3 * ConvLayerFlops(s.Batch, s.Dilation),
        BenchStep.BatchNorm => NormFlopsPerElement * s.Batch * 32 * NormSide * NormSide,
        _ => throw new ArgumentOutOfRangeException(nameof(s), s.Step, "unknown bench step"),
    };

    /// <summary>Forward FLOPs of the 32→32 3×3 layer on [N,32,51,51].</summary>
    public static double ConvLayerFlops(int batch, int dilation)
    {
        var side = ConvInput - 2 * dilation;
        return 2.0 * batch * 32 * 32 * 9 * side * side;
    }

    public static string DeviceName(IBackend backend) => backend.IsGpu ? backend.Name : $"cpu x{Environment.ProcessorCount}";

    /// <summary>One line of JSON, the peer's fields plus ours (written by hand: no reflection, AOT-safe).</summary>
    public static string ToJson(BenchResult r, IEnumerable<(string Key, string Value)>? extra = null, IEnumerable<(string Key, string Json)>? rawExtra = null)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("peer", "brainseg");
            w.WriteString("step", r.Settings.Step.ToString().ToLowerInvariant());
            w.WriteNumber("batch", r.Settings.Batch);
            w.WriteString("device", r.Device);
            w.WriteString("variant", r.Variant);
            w.WriteNumber("median_ms", Math.Round(r.MedianMs, 4));
            w.WriteNumber("min_ms", Math.Round(r.MinMs, 4));
            w.WriteNumber("max_ms", Math.Round(r.MaxMs, 4));
            w.WriteNumber("patches_per_s", Math.Round(r.UnitsPerSecond, 2));
            w.WriteNumber("tflops", Math.Round(r.Tflops, 4));
            w.WriteNumber("peak_bytes", r.PeakBytes);
            w.WriteNumber("host_alloc_bytes_per_rep", r.HostAllocatedBytesPerRep);
            w.WriteNumber("reps", r.TimedReps);
            w.WriteNumber("reps_requested", r.Settings.TimedReps);
            w.WriteNumber("warmup", r.Settings.WarmupReps);
            w.WriteString("graphs", r.Settings.Graphs ? "on" : "off");
            if (r.Settings.Step == BenchStep.Segment) w.WriteNumber("volume", r.Settings.Volume);
            if (r.Settings.Step == BenchStep.Conv) w.WriteNumber("dilation", r.Settings.Dilation);
            if (r.Counted is { } c)
            {
                double steps = r.TimedReps;
                w.WriteNumber("launches_per_step", Math.Round(c.Launches / steps, 2));
                w.WriteNumber("graph_launches_per_step", Math.Round(c.GraphLaunches / steps, 2));
                w.WriteNumber("host_syncs_per_step", Math.Round(c.HostSyncs / steps, 2));
                w.WriteNumber("device_allocs_per_step", Math.Round(c.DeviceAllocs / steps, 2));
                w.WriteNumber("copies_per_step", Math.Round(c.Copies / steps, 2));
                w.WriteNumber("algorithm_searches_per_step", Math.Round(c.AlgorithmSearches / steps, 2));
                w.WriteNumber("modelled_bytes_per_step", Math.Round(c.Bytes / steps));
                w.WriteNumber("modelled_flops_per_step", Math.Round(c.Flops / steps));
            }
            foreach (var (key, value) in extra ?? []) w.WriteString(key, value);
            foreach (var (key, json) in rawExtra ?? [])
            {
                w.WritePropertyName(key);
                w.WriteRawValue(json);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>A human-readable line.</summary>
    public static string Describe(BenchResult r)
    {
        var s = r.Settings;
        var what = s.Step switch
        {
            BenchStep.Segment => $"segment {s.Volume}³ volume, {s.Batch} slices per pass",
            BenchStep.Conv => $"conv 32→32 3×3 dilation {s.Dilation} fwd+bwd, batch {s.Batch}",
            BenchStep.BatchNorm => $"batch norm + ReLU on 32×{NormSide}×{NormSide} fwd+bwd, batch {s.Batch}",
            BenchStep.Adversarial => $"adversarial Ls+Ld+La, batch {s.Batch} each{(s.Graphs ? ", replayed as a CUDA graph" : "")}",
            _ => $"{s.Step.ToString().ToLowerInvariant()} training step, batch {s.Batch}{(s.Graphs ? ", replayed as a CUDA graph" : "")}",
        };
        var unit = s.Step == BenchStep.Segment ? "slices/s" : "patches/s";
        return $"{what} on {r.Device} ({r.Variant}): median {r.MedianMs:F3} ms (min {r.MinMs:F3}, max {r.MaxMs:F3}; " +
               $"{r.TimedReps} reps{(r.TimedReps < s.TimedReps ? $" of {s.TimedReps}, time limit reached," : "")} after {s.WarmupReps} warm-up), {r.UnitsPerSecond:F1} {unit}, {r.Tflops:F3} TFLOP/s, " +
               $"peak {r.PeakBytes / 1048576.0:F1} MiB, {r.HostAllocatedBytesPerRep / 1024.0:F0} KiB managed allocation per rep" +
               (r.Counted is { } c ? $"; per step {c.Launches / (double)r.TimedReps:0.##} launches, {c.HostSyncs / (double)r.TimedReps:0.##} host syncs, " +
                   $"{c.DeviceAllocs / (double)r.TimedReps:0.##} device allocations, {c.Copies / (double)r.TimedReps:0.##} copies, " +
                   $"{c.Bytes / r.TimedReps / 1e9:F3} GB and {c.Flops / r.TimedReps / 1e12:F4} TFLOP modelled" : "");
    }

    // ---- the workloads ----

    /// <summary>The work of one measurement on its inputs, built once; <see cref="Workload.Step"/> is one repetition.</summary>
    public static Workload Build(IBackend backend, BenchSettings settings)
    {
        settings.Validate();
        return Build(backend, settings, new Random(12345));
    }

    /// <summary>A measurement's networks, optimisers and input sets; disposing frees them.</summary>
    public abstract class Workload : IDisposable
    {
        private protected readonly List<IDisposable> Owned = [];

        /// <summary>Repetition <paramref name="i"/> (it selects the input set i mod <see cref="BenchSettings.InputSets"/>).</summary>
        public abstract void Step(int i);
        public virtual void Dispose()
        {
            for (var i = Owned.Count - 1; i >= 0; i--) Owned[i].Dispose();
        }
        private protected T Own<T>(T d) where T : IDisposable
        {
            Owned.Add(d);
            return d;
        }
    }

    private static Workload Build(IBackend b, BenchSettings s, Random rng) => s.Step switch
    {
        BenchStep.Fcn => new TrainStep(b, s, rng, new FcnNetwork(b, s.Classes)),
        BenchStep.Dilated => new TrainStep(b, s, rng, new DilatedNetwork(b, s.Classes)),
        BenchStep.Adversarial => new AdversarialStep(b, s, rng),
        BenchStep.Segment => new SegmentVolume(b, s, rng),
        BenchStep.Conv => new ConvLayer(b, s, rng),
        BenchStep.BatchNorm => new NormLayer(b, s, rng),
        _ => throw new ArgumentOutOfRangeException(nameof(s), s.Step, "unknown bench step"),
    };

    /// <summary>The backend as one that records steps, or the one-line error for <c>--graphs on</c> without a CUDA device.</summary>
    private static IGraphBackend Recorder(IBackend b) =>
        b as IGraphBackend ?? throw new BadInputException($"--graphs on needs a CUDA device; {b.Name} cannot capture a step.");

    private static float[] Normal(Random rng, long count)
    {
        var v = new float[count];
        for (long i = 0; i < count; i += 2)
        {
            // Box–Muller: two standard normals from two uniforms.
            var u1 = 1.0 - rng.NextDouble();
            var u2 = rng.NextDouble();
            var radius = Math.Sqrt(-2 * Math.Log(u1));
            v[i] = (float)(radius * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < count) v[i + 1] = (float)(radius * Math.Sin(2 * Math.PI * u2));
        }
        return v;
    }

    private static Tensor RandomNormal(IBackend b, Random rng, params int[] shape) =>
        Tensor.FromHost(b, Normal(rng, shape.Aggregate(1L, (p, d) => p * d)), shape);

    private static Tensor RandomLabels(IBackend b, Random rng, int batch, int classes)
    {
        var labels = new int[batch * PatchOutputs];
        for (var i = 0; i < labels.Length; i++) labels[i] = rng.Next(classes);
        return Tensor.FromHost(b, labels, batch, 21, 21);
    }

    /// <summary>
    /// Forward + backward + RMSprop of a segmentation network, as the peer's train_step. With
    /// <see cref="BenchSettings.Graphs"/> each repetition's input set is first copied into one fixed pair of input
    /// tensors (a captured graph reads fixed addresses); the first step runs eagerly and is captured, later ones replay.
    /// </summary>
    private sealed class TrainStep : Workload
    {
        private readonly IBackend _b;
        private readonly int _classes;
        private readonly SegmentationNetwork _net;
        private readonly RmsProp _opt;
        private readonly Tensor[] _xs = new Tensor[BenchSettings.InputSets], _ys = new Tensor[BenchSettings.InputSets];
        private readonly IGraphBackend? _graphs;
        private readonly Tensor? _x, _y;
        private IStepGraph? _graph;

        public TrainStep(IBackend b, BenchSettings s, Random rng, SegmentationNetwork net)
        {
            (_b, _classes, _net) = (b, s.Classes, Own(net));
            _opt = Own(new RmsProp([new ParamGroup("net", net.NamedParameters(), learningRate: 1e-3)]));
            var side = net.TrainingInputSize;
            for (var i = 0; i < _xs.Length; i++)
            {
                _xs[i] = Own(RandomNormal(b, rng, s.Batch, 1, side, side));
                _ys[i] = Own(RandomLabels(b, rng, s.Batch, s.Classes));
            }
            if (!s.Graphs) return;
            _graphs = Recorder(b);
            _x = Own(b.Empty(_xs[0].Shape, _xs[0].DType));
            _y = Own(b.Empty(_ys[0].Shape, _ys[0].DType));
        }

        public override void Step(int i)
        {
            if (_graphs is null)
            {
                Train(_xs[i % _xs.Length], _ys[i % _ys.Length]);
                return;
            }
            _b.Copy(_xs[i % _xs.Length], _x!);
            _b.Copy(_ys[i % _ys.Length], _y!);
            if (_graph is not null)
            {
                _graph.Replay();
                return;
            }
            Train(_x!, _y!);
            _graph = Own(_graphs.Capture(() => Train(_x!, _y!), _net.Random));
        }

        private void Train(Tensor x, Tensor labels)
        {
            using var tape = new Tape(_b);
            var target = F.OneHot(tape, labels, _classes, DType.Float32);
            var loss = F.SoftmaxCrossEntropy(tape, _net.Forward(tape, x), target);
            _opt.ZeroGrad();
            tape.Backward(loss);
            _opt.Step();
        }
    }

    /// <summary>
    /// The trainer's own adversarial iteration with the FCN (<see cref="Trainer.Enqueue"/>), as `brainseg train` runs
    /// it and as the peer's adversarial_step measures it: Ls (segmentation loss, descent), Ld (discriminator on
    /// one-hot manual labels), La (discriminator on the softmax output; the segmenter's group has gradient scale −1,
    /// so it ascends the discriminator's loss), each on its own minibatch of the batch size. Unlike the peer, the
    /// patches are uploaded inside the step (through the staging path) and the losses read back one iteration late,
    /// because the trainer does both.
    /// </summary>
    private sealed class AdversarialStep : Workload
    {
        private readonly Trainer _trainer;
        private readonly PatchBatch[] _batches = new PatchBatch[BenchSettings.InputSets];
        private Trainer.PendingLosses? _pending;

        public AdversarialStep(IBackend b, BenchSettings s, Random rng)
        {
            var options = TrainingOptions.Paper with { Network = NetworkKind.Fcn, Adversarial = true, Batch = 3 * s.Batch, Seed = 1 };
            _trainer = Own(new Trainer(b, new NoPatches(s.Classes), options) { ReplaySteps = s.Graphs });
            if (s.Graphs) Recorder(b);
            int side = _trainer.Segmenter.TrainingInputSize, outputs = _trainer.Segmenter.TrainingOutputSize;
            for (var i = 0; i < _batches.Length; i++)
            {
                var labels = new byte[options.Batch * outputs * outputs];
                for (var j = 0; j < labels.Length; j++) labels[j] = (byte)rng.Next(s.Classes);
                _batches[i] = new PatchBatch(options.Batch, Normal(rng, (long)options.Batch * side * side), labels);
            }
        }

        public override void Step(int i)
        {
            var queued = _trainer.Enqueue(_batches[i % _batches.Length]);
            _pending?.Read();   // the previous iteration's losses, read while this one runs, as the training loop does
            _pending = queued;
        }

        /// <summary>The trainer's data: only the class count matters, the bench hands it its minibatches itself.</summary>
        private sealed class NoPatches(int classes) : IPatchSource
        {
            public int Classes => classes;
            public int ImageCount => 1;
            public long PatchesPerEpoch(PatchRequest request) => 0;
            public IEnumerable<PatchBatch> Epoch(PatchRequest request, int epoch) => [];
        }
    }

    /// <summary>
    /// Whole-volume FCN inference (eval mode, no gradients), as the peer's segment_volume: each batch of axial
    /// slices is uploaded, zero-padded by the receptive-field radius (15) so the output keeps the slice size,
    /// run forward, reduced by argmax over classes and the Int32 labels copied back to the host. The network runs
    /// folded (batch norm inside the convolutions), as <c>brainseg segment</c> runs it; the fold happens once,
    /// before timing, as a deployment folds once per model.
    /// </summary>
    private sealed class SegmentVolume : Workload
    {
        private readonly IBackend _b;
        private readonly int _side, _slicesPerPass;
        private readonly FcnNetwork _net;
        private readonly Sequential _folded;
        private readonly float[] _volume;
        private readonly int[] _labels;

        public SegmentVolume(IBackend b, BenchSettings s, Random rng)
        {
            (_b, _side, _slicesPerPass) = (b, s.Volume, s.Batch);
            _net = Own(new FcnNetwork(b, s.Classes));
            _net.Eval();
            _folded = Own(Folding.ForInference(_net));
            _volume = Normal(rng, (long)_side * _side * _side);
            _labels = new int[_volume.Length];
        }

        public override void Step(int i)
        {
            var slice = _side * _side;
            var padded = _side + _net.ReceptiveField - 1;
            for (var first = 0; first < _side; first += _slicesPerPass)
            {
                var count = Math.Min(_slicesPerPass, _side - first);
                using var tape = Tape.NoGrad(_b);
                var x = tape.Own(Tensor.FromHost(_b, _volume.AsSpan(first * slice, count * slice), count, 1, _side, _side));
                var logits = _folded.Forward(tape, F.CenterPad(tape, x, padded, padded));
                var labels = F.ArgmaxChannels(tape, logits);
                _b.Download<int>(labels, _labels.AsSpan(first * slice, count * slice));
            }
        }
    }

    /// <summary>One layer on its own: forward on one of the input sets, then backward from a fixed output gradient.</summary>
    private abstract class LayerStep : Workload
    {
        private readonly IBackend _b;
        private readonly Tensor[] _xs = new Tensor[BenchSettings.InputSets];
        private readonly Tensor _dy;

        /// <param name="parameters">The layer's trained tensors, owned from here on.</param>
        protected LayerStep(IBackend b, Random rng, Tensor[] parameters, int[] input, int[] output)
        {
            _b = b;
            Parameters = parameters;
            foreach (var p in parameters) Own(p).RequiresGrad = true;
            for (var i = 0; i < _xs.Length; i++)
            {
                _xs[i] = Own(RandomNormal(b, rng, input));
                _xs[i].RequiresGrad = true;
            }
            _dy = Own(RandomNormal(b, rng, output));
        }

        protected Tensor[] Parameters { get; }

        protected abstract Tensor Forward(Tape tape, Tensor x);

        public override void Step(int i)
        {
            var x = _xs[i % _xs.Length];
            // A new pass overwrites the leaves' gradients (what an optimiser's ZeroGrad does).
            x.GradIsFresh = false;
            foreach (var p in Parameters) p.GradIsFresh = false;
            using var tape = new Tape(_b);
            tape.Backward(Forward(tape, x), _dy);
        }

        public override void Dispose()
        {
            foreach (var x in _xs) x.Grad?.Dispose();
            foreach (var p in Parameters) p.Grad?.Dispose();
            base.Dispose();
        }
    }

    /// <summary>One 32→32 3×3 convolution (no bias) on [N,32,51,51]: forward, then backward data and filter.</summary>
    private sealed class ConvLayer(IBackend b, BenchSettings s, Random rng) : LayerStep(b, rng,
        [RandomNormal(b, rng, 32, 32, 3, 3)], [s.Batch, 32, ConvInput, ConvInput], [s.Batch, 32, ConvInput - 2 * s.Dilation, ConvInput - 2 * s.Dilation])
    {
        private readonly Conv2dSpec _spec = new(s.Dilation, 0);

        protected override Tensor Forward(Tape tape, Tensor x) => F.Conv2d(tape, x, Parameters[0], spec: _spec);
    }

    /// <summary>Batch norm with γ and β, then ReLU (fused), on [N,32,49,49] in training mode: forward, then backward.</summary>
    private sealed class NormLayer(IBackend b, BenchSettings s, Random rng) : LayerStep(b, rng,
        [Channels(b, 1), Channels(b, 0)], [s.Batch, 32, NormSide, NormSide], [s.Batch, 32, NormSide, NormSide])
    {
        private readonly Tensor _runningMean = Channels(b, 0), _runningVar = Channels(b, 1);

        private static Tensor Channels(IBackend b, float value) => Tensor.FromHost(b, Enumerable.Repeat(value, 32).ToArray(), 32);

        protected override Tensor Forward(Tape tape, Tensor x) =>
            F.BatchNorm(tape, x, Parameters[0], Parameters[1], _runningMean, _runningVar, training: true, momentum: 0.1, eps: 1e-5, relu: true);

        public override void Dispose()
        {
            _runningMean.Dispose();
            _runningVar.Dispose();
            base.Dispose();
        }
    }
}
