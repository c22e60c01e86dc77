using System.CommandLine;
using BrainSeg.Cli.Common;
using BrainSeg.Cuda;
using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;
using BrainSeg.Mri;
using BrainSeg.Mri.Labels;
using BrainSeg.Seg.Benchmarking;
using BrainSeg.Seg.Training;

namespace BrainSeg.Cli.Commands;

/// <summary>
/// `brainseg bench`: times one step (training step, adversarial iteration, whole-volume inference or one
/// conv layer) on random data and prints the median; the fields match benchmarks/peers/torch_peer.py.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var device = DeviceOption.Create("auto");
        var step = Opt.Choice("--step",
            "What to time: fcn | dilated (training step), adversarial (Ls + Ld + La), segment (whole volume), cohort (volumes per minute through 'segment --output-dir', files read and written), conv (one 32→32 3×3 layer), batchnorm (batch norm + ReLU on 32 channels of 49×49).",
            "fcn", "fcn", "dilated", "adversarial", "segment", "cohort", "conv", "batchnorm");
        var batch = Opt.Int("--batch", "Patches per step (slices per forward pass for segment; default 100, 16 for segment)", 1, TrainingOptions.MaxBatch, 100);
        var tf32 = new Option<bool>("--tf32") { Description = "Allow TF32 tensor-core math for float32 convolutions and GEMMs (CUDA only)." };
        var nondeterministic = new Option<bool>("--nondeterministic")
        {
            Description = "Let cuDNN use its fastest algorithms even where they are not deterministic (CUDA only; the default prefers deterministic ones, PyTorch's benchmark mode does not).",
        };
        var reps = Opt.Int("--reps", "Timed repetitions; the median is reported (segment: max(3, reps/10))", 1, 100_000, 50);
        var warmup = Opt.Int("--warmup", "Untimed repetitions first (segment: 1)", 0, 100_000, 10);
        var classes = Opt.Int("--classes", "Output classes", 2, LabelTable.MaxClasses, 7);
        var volume = Opt.Int("--volume", "Side of the cubic volume for segment and cohort", 1, 1024, 256);
        var volumes = Opt.Int("--volumes", "Images in the cohort measurement", 1, 10_000, 8);
        var dilation = Opt.Int("--dilation", "Dilation of the conv layer", 1, 16, 1);
        var timeLimit = Opt.Real("--time-limit", "Stop timing after this many seconds (at least 3 repetitions; the output says how many ran); 0: no limit", 0, 86_400, 0);
        var json = new Option<bool>("--json") { Description = "Print one JSON line (the fields of the PyTorch peer) instead of text." };
        var profile = new Option<bool>("--profile") { Description = "Afterwards, split the step's time by op (up to 10 more repetitions with every op timed; device events on a GPU)." };

        var command = new Command("bench", "Time a training step, an adversarial iteration, whole-volume inference, one conv layer or one batch-norm layer on random data (median of the repetitions; CUDA events on the GPU).");
        foreach (var o in new Option[] { device, step, batch, tf32, nondeterministic, reps, warmup, classes, volume, volumes, dilation, timeLimit, json, profile })
            command.Options.Add(o);

        command.SetAction(parsed =>
        {
            if (parsed.GetValue(step) == "cohort")
                return Cohort(parsed.GetValue(device)!, new CohortBenchSettings(parsed.GetValue(volumes), parsed.GetValue(volume),
                    parsed.GetResult(batch) is { Implicit: false } ? parsed.GetValue(batch) : 16, parsed.GetValue(classes)), parsed.GetValue(json));
            var which = Enum.Parse<BenchStep>(parsed.GetValue(step)!, ignoreCase: true);
            var settings = new BenchSettings
            {
                Step = which,
                Batch = parsed.GetResult(batch) is { Implicit: false } ? parsed.GetValue(batch) : which == BenchStep.Segment ? 16 : 100,
                Reps = parsed.GetValue(reps),
                Warmup = parsed.GetValue(warmup),
                Classes = parsed.GetValue(classes),
                Volume = parsed.GetValue(volume),
                Dilation = parsed.GetValue(dilation),
                TimeLimitSeconds = parsed.GetValue(timeLimit),
            };
            settings.Validate();
            var allowTf32 = parsed.GetValue(tf32);
            var deterministic = !parsed.GetValue(nondeterministic);
            using var backend = Open(parsed.GetValue(device)!, new CudaBackendOptions { AllowTf32 = allowTf32, DeterministicAlgorithms = deterministic });
            if ((allowTf32 || !deterministic) && backend is not CudaBackend)
                throw new BadInputException("--tf32 and --nondeterministic apply to CUDA devices only; drop them or use --device cuda.");
            var clock = backend is CudaBackend cuda ? new CudaEventClock(cuda) : (IBenchClock)new StopwatchClock(backend);
            try
            {
                var card = Card(backend);
                var variant = (backend.IsGpu && allowTf32 ? "tf32/nchw" : "fp32/nchw") + (deterministic ? "" : "/nondet");
                if (!parsed.GetValue(json))
                    Console.Out.WriteLine($"card: {card}; TF32 {(allowTf32 ? "allowed" : "off")}");
                var result = BenchRunner.Run(backend, settings, clock, variant);
                Console.Out.WriteLine(parsed.GetValue(json)
                    ? BenchRunner.ToJson(result, [("card", card), ("tf32", allowTf32 ? "on" : "off")])
                    : BenchRunner.Describe(result));
                if (parsed.GetValue(profile))
                    foreach (var line in Profile(backend, settings, clock, Math.Min(result.TimedReps, 10)).Lines())
                        Console.Out.WriteLine(line);
            }
            finally
            {
                (clock as IDisposable)?.Dispose();
            }
            return 0;
        });
        return command;
    }

    /// <summary>Volumes per minute of a synthetic cohort through the segmentation pipeline (files read, segmented, written).</summary>
    private static int Cohort(string device, CohortBenchSettings settings, bool json)
    {
        settings.Validate();
        using var backend = Open(device, new CudaBackendOptions());
        var result = CohortBench.Run(backend, settings, json ? null : line => Console.Out.WriteLine(line));
        Console.Out.WriteLine(json ? result.ToJson() : result.Describe());
        return 0;
    }

    private static BenchProfile Profile(IBackend backend, BenchSettings settings, IBenchClock clock, int reps)
    {
        if (backend is not CudaBackend cuda) return BenchRunner.Profile(backend, settings, clock, new StopwatchOpClock(), reps);
        using var events = new CudaOpClock(cuda.Context);
        return BenchRunner.Profile(backend, settings, clock, events, reps);
    }

    private static IBackend Open(string device, CudaBackendOptions options)
    {
        var spec = DeviceSpec.Parse(device);
        switch (spec.Kind)
        {
            case DeviceKind.Cpu:
                return CpuBackend.Instance;
            case DeviceKind.Cuda:
                return CudaBackend.Create(spec.Ordinal, options);
            default:
                try
                {
                    return CudaBackend.Create(0, options);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Console.Error.WriteLine($"brainseg: note: no usable CUDA device ({e.Message.Split('\n')[0].Trim()}); using the CPU.");
                    return CpuBackend.Instance;
                }
        }
    }

    private static string Card(IBackend backend)
    {
        if (backend is not CudaBackend cuda) return $"CPU, {Environment.ProcessorCount} logical cores";
        var c = cuda.Context;
        return $"{c.DeviceName} (sm_{c.ComputeCapability.Major}{c.ComputeCapability.Minor}, {c.MultiprocessorCount} SMs, {c.TotalMemoryBytes / 1073741824.0:F1} GiB)";
    }

    /// <summary>
    /// CUDA events recorded on the backend's stream (where every op of the step is queued) around each
    /// repetition; the stop waits for the end event only, so nothing else synchronises inside the step.
    /// </summary>
    private sealed class CudaEventClock : IBenchClock, IDisposable
    {
        private readonly CudaBackend _backend;
        private readonly CudaEvent _start, _stop;

        public CudaEventClock(CudaBackend backend)
        {
            _backend = backend;
            backend.Context.MakeCurrent();
            _start = CudaEvent.Create();
            _stop = CudaEvent.Create();
        }

        public void Start()
        {
            _backend.Context.MakeCurrent();
            _start.Record(_backend.Context.Stream);
        }

        public double StopMs()
        {
            _backend.Context.MakeCurrent();
            _stop.Record(_backend.Context.Stream);
            return _stop.ElapsedMs(_start);
        }

        public long PeakBytes() => _backend.Context.Pool.PeakBytesInUse;

        public void Dispose()
        {
            _backend.Context.MakeCurrent();
            _start.Dispose();
            _stop.Dispose();
        }
    }
}
