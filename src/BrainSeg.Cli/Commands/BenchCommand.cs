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
        var math = new GpuMathOptions();
        var layout = Opt.Choice("--layout", "Memory order of the GPU's 4-D tensors: nhwc (channels-last, the default) or nchw (for comparison; CUDA only)", "nhwc", "nhwc", "nchw");
        var legacy = new Option<bool>("--legacy-conv") { Description = "Choose convolution algorithms with cuDNN's legacy search instead of timing the graph API's engines (for comparison; CUDA only)." };
        var fusion = Opt.Choice("--fusion", "on: where cuDNN's runtime fusion plans it and it times faster, a convolution computes its bias and ReLU as it writes its output, reads a training batch norm's output through that norm's scale, shift and ReLU instead of the written tensor, and makes that norm's backward sums as it writes its data gradient; off: always separate passes (for comparison; CUDA only)", "on", "on", "off");
        var reps = Opt.Int("--reps", "Timed repetitions; the median is reported (segment: max(3, reps/10))", 1, 100_000, 50);
        var warmup = Opt.Int("--warmup", "Untimed repetitions first (segment: 1)", 0, 100_000, 10);
        var classes = Opt.Int("--classes", "Output classes", 2, LabelTable.MaxClasses, 7);
        var volume = Opt.Int("--volume", "Side of the cubic volume for segment and cohort", 1, 1024, 256);
        var volumes = Opt.Int("--volumes", "Images in the cohort measurement", 1, 10_000, 8);
        var dilation = Opt.Int("--dilation", "Dilation of the conv layer", 1, 16, 1);
        var timeLimit = Opt.Real("--time-limit", "Stop timing after this many seconds (at least 3 repetitions; the output says how many ran); 0: no limit", 0, 86_400, 0);
        var graphs = Opt.Choice("--graphs", "on: the fcn and dilated training steps and the adversarial iteration are captured once as a CUDA graph and replayed, one launch per step (CUDA only; not with --profile)", "off", "on", "off");
        var json = new Option<bool>("--json") { Description = "Print one JSON line (the fields of the PyTorch peer) instead of text." };
        var profile = new Option<bool>("--profile") { Description = "Afterwards, split the step's time by op (up to 10 more repetitions with every op timed; device events on a GPU)." };

        var command = new Command("bench", "Time a training step, an adversarial iteration, whole-volume inference, one conv layer or one batch-norm layer on random data (median of the repetitions; CUDA events on the GPU).");
        foreach (var o in new Option[] { device, step, batch, layout, legacy, fusion, graphs, reps, warmup, classes, volume, volumes, dilation, timeLimit, json, profile })
            command.Options.Add(o);
        math.AddTo(command);

        command.SetAction(parsed =>
        {
            if (parsed.GetValue(step) == "cohort")
                return Cohort(parsed.GetValue(device)!, math.Read(parsed), new CohortBenchSettings(parsed.GetValue(volumes), parsed.GetValue(volume),
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
                Graphs = parsed.GetValue(graphs) == "on",
            };
            if (settings.Graphs && parsed.GetValue(profile))
                throw new BadInputException("--profile times each op, which a graph replay runs out of sight; drop --profile or --graphs on.");
            settings.Validate();
            var gpuMath = math.Read(parsed);
            bool legacySearch = parsed.GetValue(legacy), unfused = parsed.GetValue(fusion) == "off";
            var order = parsed.GetValue(layout) == "nchw" ? TensorLayout.Nchw : TensorLayout.Nhwc;
            using var backend = Open(parsed.GetValue(device)!, gpuMath, legacySearch, unfused, order);
            if ((gpuMath.Requested is not null || gpuMath.Deterministic || legacySearch || unfused || parsed.GetResult(layout) is { Implicit: false } || settings.Graphs) && backend is not CudaBackend)
                throw new BadInputException("--precision, --deterministic, --layout, --legacy-conv, --fusion off and --graphs on apply to CUDA devices only; drop them or use --device cuda.");
            var clock = backend is CudaBackend cuda ? new CudaEventClock(cuda) : (IBenchClock)new StopwatchClock(backend);
            try
            {
                var card = Card(backend);
                var precision = GpuMath.Describe(backend);
                var variant = backend is CudaBackend c
                    ? $"{(c.Options.AllowTf32 ? "tf32" : "fp32")}/{c.Options.Layout.ToString().ToLowerInvariant()}" + (c.Options.DeterministicAlgorithms ? "/deterministic" : "") + (legacySearch ? "/legacy-conv" : "") + (unfused ? "/unfused" : "") + (settings.Graphs ? "/graphs" : "")
                    : "fp32/nchw";
                if (!parsed.GetValue(json))
                    Console.Out.WriteLine($"card: {card}; precision {precision}");
                var result = BenchRunner.Run(backend, settings, clock, variant);
                Console.Out.WriteLine(parsed.GetValue(json)
                    ? BenchRunner.ToJson(result, [("card", card), ("precision", precision)], [("conv_engines", EnginesJson(backend))])
                    : BenchRunner.Describe(result));
                if (!parsed.GetValue(json) && backend is CudaBackend chosen)
                    foreach (var r in chosen.EngineReports)
                        Console.Out.WriteLine($"  conv {r.Direction} {r.Problem}: {r.Source} engine {r.Engine} [{r.Notes}]" +
                            (double.IsNaN(r.Milliseconds) ? "" : $" {r.Milliseconds:F3} ms") + (r.Note.Length > 0 ? $" ({r.Note})" : ""));
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
    private static int Cohort(string device, GpuMath math, CohortBenchSettings settings, bool json)
    {
        settings.Validate();
        using var backend = Devices.Open(device, math);
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

    private static IBackend Open(string device, GpuMath math, bool legacySearch, bool unfused, TensorLayout layout) =>
        Devices.Open(device, cc => math.Options(cc.Major) with { LegacyConvolutionSearch = legacySearch, RuntimeFusion = !unfused, Layout = layout });

    /// <summary>The convolution engines chosen, one JSON object per pass and geometry (an empty list on the CPU).</summary>
    private static string EnginesJson(IBackend backend)
    {
        using var buffer = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            foreach (var r in (backend as CudaBackend)?.EngineReports ?? [])
            {
                w.WriteStartObject();
                w.WriteString("direction", r.Direction);
                w.WriteString("problem", r.Problem);
                w.WriteString("source", r.Source);
                w.WriteString("engine", r.Engine);
                w.WriteString("notes", r.Notes);
                w.WriteNumber("workspace_bytes", r.WorkspaceBytes);
                if (!double.IsNaN(r.Milliseconds)) w.WriteNumber("ms", Math.Round(r.Milliseconds, 4));
                w.WriteNumber("timed", r.Timed.Count);
                if (r.Note.Length > 0) w.WriteString("note", r.Note);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
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
