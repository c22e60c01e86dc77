using BrainSeg.Cuda;
using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// Convolution engines chosen by timing through cuDNN's graph API: what the options admit, that the fastest timed
/// candidate is kept and remembered on disk, that a second backend takes the remembered choice, and that every
/// combination of precision and determinism still computes the CPU's convolution. Each test opens its own backend
/// with its own options and its own engine cache folder.
/// </summary>
[Category("Gpu"), NonParallelizable]
public sealed class ConvolutionEngineTests
{
    private string? _savedCache;
    private string _cache = "";

    [SetUp]
    public void OwnEngineCache()
    {
        GpuDevice.Require();
        _savedCache = Environment.GetEnvironmentVariable(KernelCache.CacheVariable);
        _cache = Directory.CreateTempSubdirectory("brainseg-engines-").FullName;
        // Kernels compiled before stay valid here: copy them so that only the engine table starts empty.
        var kernels = KernelCache.CacheFolder();
        if (Directory.Exists(kernels))
            foreach (var f in Directory.GetFiles(kernels).Where(f => !f.EndsWith(EngineCache.FileName, StringComparison.Ordinal)))
                File.Copy(f, Path.Combine(_cache, Path.GetFileName(f)));
        Environment.SetEnvironmentVariable(KernelCache.CacheVariable, _cache);
    }

    [TearDown]
    public void RestoreEngineCache()
    {
        if (_cache.Length == 0) return;  // ignored before SetUp made one: no device here
        Environment.SetEnvironmentVariable(KernelCache.CacheVariable, _savedCache);
        Directory.Delete(_cache, recursive: true);
        _cache = "";
    }

    private static readonly Conv2dSpec Spec = new(Dilation: 2, Padding: 1);

    /// <summary>Runs the three passes of one small convolution on <paramref name="gpu"/> and on the CPU; returns the largest relative error.</summary>
    private static double ThreePasses(CudaBackend gpu, DType dt)
    {
        var rng = new Random(5);
        double[] Noise(int n) => Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        int n = 2, c = 5, h = 11, w = 13, k = 4;
        int ho = Spec.OutputSize(h, 3), wo = Spec.OutputSize(w, 3);
        double[] xv = Noise(n * c * h * w), wv = Noise(k * c * 9), dyv = Noise(n * k * ho * wo);
        double worst = 0;
        foreach (var pass in Enum.GetValues<ConvolutionDirection>())
        {
            var (cpu, dev) = (Run(CpuBackend.Instance), Run(gpu));
            double scale = cpu.Max(Math.Abs);
            worst = Math.Max(worst, cpu.Zip(dev, (a, b) => Math.Abs(a - b) / scale).Max());

            double[] Run(IBackend b)
            {
                using var x = Make(b, xv, n, c, h, w);
                using var filter = Make(b, wv, k, c, 3, 3);
                using var dy = Make(b, dyv, n, k, ho, wo);
                using var output = b.Empty(pass switch
                {
                    ConvolutionDirection.Forward => dy.Shape,
                    ConvolutionDirection.BackwardData => x.Shape,
                    _ => filter.Shape,
                }, dt);
                if (pass == ConvolutionDirection.Forward) b.Conv2dForward(x, filter, output, Spec);
                else if (pass == ConvolutionDirection.BackwardData) b.Conv2dBackwardData(dy, filter, output, Spec);
                else b.Conv2dBackwardFilter(x, dy, output, Spec);
                return output.ToHostDoubles();
            }

            Tensor Make(IBackend b, double[] values, params int[] shape)
            {
                var t = b.Empty(new Shape(shape), dt);
                t.UploadDoubles(values);
                return t;
            }
        }
        return worst;
    }

    /// <summary>
    /// The forward with a folded batch norm's epilogue (+ bias, then ReLU) on <paramref name="gpu"/> and on the CPU, twice:
    /// the first call chooses, the second is counted. Returns the largest relative error and the second call's launches.
    /// </summary>
    private static (double Error, long WarmLaunches) ForwardWithEpilogue(CudaBackend gpu, DType dt)
    {
        var rng = new Random(7);
        double[] Noise(int n) => Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        int n = 2, c = 5, h = 11, w = 13, k = 4;
        double[] xv = Noise(n * c * h * w), wv = Noise(k * c * 9), bv = Noise(k);
        var (expected, launches) = Run(CpuBackend.Instance);
        var (actual, warm) = Run(gpu);
        double scale = expected.Max(Math.Abs);
        return (expected.Zip(actual, (a, b) => Math.Abs(a - b) / scale).Max(), warm);

        (double[], long) Run(IBackend b)
        {
            using var x = Make(b, xv, n, c, h, w);
            using var filter = Make(b, wv, k, c, 3, 3);
            using var bias = Make(b, bv, k);
            using var y = b.Empty(new Shape(n, k, Spec.OutputSize(h, 3), Spec.OutputSize(w, 3)), dt);
            b.Conv2dForward(x, filter, y, Spec, bias, relu: true);
            var before = (b as CudaBackend)?.Counters.Total ?? default;
            b.Conv2dForward(x, filter, y, Spec, bias, relu: true);
            long counted = ((b as CudaBackend)?.Counters.Total ?? default).Launches - before.Launches;
            return (y.ToHostDoubles(), counted);
        }

        Tensor Make(IBackend b, double[] values, params int[] shape)
        {
            var t = b.Empty(new Shape(shape), dt);
            t.UploadDoubles(values);
            return t;
        }
    }

    [TestCase(true, DType.Float32)]
    [TestCase(true, DType.Float64)]
    [TestCase(false, DType.Float32)]
    public void ABiasAndReluRideOnTheConvolutionWhereAFusedEngineTimesFaster(bool fusion, DType dt)
    {
        using var gpu = CudaBackend.Create(options: new CudaBackendOptions { RuntimeFusion = fusion });
        var (error, launches) = ForwardWithEpilogue(gpu, dt);
        var fused = gpu.EngineReports.Where(r => r.Direction == "forward conv+bias+relu").ToList();
        foreach (var r in fused) TestContext.Out.WriteLine($"{r.Direction}: {r.Source} engine {r.Engine} {r.Milliseconds:G4} ms {r.Note}");

        Assert.That(error, Is.LessThan(dt == DType.Float32 ? 1e-4 : 1e-10));
        if (!fusion)
        {
            Assert.That(fused, Is.Empty, "fusion off: no fused graph is built");
            Assert.That(launches, Is.EqualTo(2), "the convolution, then the bias and ReLU pass");
            return;
        }
        // The fused engine's choice is reported as any pass's; a last report says when the separate pass runs instead and
        // why (no fused engine on this device, or a slower one). Nothing is chosen again on the second call.
        Assert.That(fused, Is.Not.Empty, "the fused graph was asked for on the first call");
        var decision = fused[^1];
        Assert.That(launches, Is.EqualTo(decision.Source == "separate" ? 2 : 1));
        if (decision.Source == "separate") Assert.That(decision.Note, Is.Not.Empty, "why the separate pass runs");
        if (gpu.Name.Contains("Fake", StringComparison.Ordinal))
            Assert.That((fused.Count, decision.Source, decision.Engine, launches), Is.EqualTo((1, "timed", "6", 1L)),
                "the stand-in's fused engine (6) times faster than its best plain engine plus the separate pass");
    }

    [Test]
    public void TheFusedChoiceIsRememberedLikeAnyOther()
    {
        using (var gpu = CudaBackend.Create()) ForwardWithEpilogue(gpu, DType.Float32);
        using var again = CudaBackend.Create();
        var (error, _) = ForwardWithEpilogue(again, DType.Float32);
        Assert.That(error, Is.LessThan(1e-4));
        // The fused engine comes from the disk like the plain ones; where the separate pass won it is compared again (the
        // pass is timed in each process), and where no fused engine exists there is nothing to remember.
        var fused = again.EngineReports.Where(r => r.Direction == "forward conv+bias+relu").ToList();
        Assert.That(fused, Is.Not.Empty);
        if (!fused[0].Note.StartsWith("no fused engine", StringComparison.Ordinal)) Assert.That(fused[0].Source, Is.EqualTo("cache"));
        Assert.That(again.EngineReports.Where(r => r.Direction == "forward").Select(r => r.Source), Is.All.EqualTo("cache"));
    }

    private static CudaBackend Open(bool tf32, bool deterministic) =>
        CudaBackend.Create(options: new CudaBackendOptions { AllowTf32 = tf32, DeterministicAlgorithms = deterministic });

    [TestCase(false, true)]
    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(true, true)]
    public void EveryPassIsTimedAndTheFastestAdmissibleEngineIsKept(bool tf32, bool deterministic)
    {
        using var gpu = Open(tf32, deterministic);
        double error = ThreePasses(gpu, DType.Float32);
        var reports = gpu.EngineReports;
        foreach (var r in reports)
            TestContext.Out.WriteLine($"{r.Direction} {r.Source} engine {r.Engine} [{r.Notes}] {r.Milliseconds:G4} ms of " +
                string.Join(", ", r.Timed.Select(t => $"{t.Engine} [{t.Notes}] {t.Milliseconds:G4}")) + (r.Note.Length > 0 ? $"; {r.Note}" : ""));

        Assert.That(reports.Select(r => r.Direction), Is.EquivalentTo(new[] { "forward", "backward-data", "backward-filter" }));
        foreach (var r in reports)
        {
            Assert.That(r.Source, Is.EqualTo("timed"), $"{r.Direction}: {r.Note}");
            Assert.That(r.Timed, Is.Not.Empty);
            Assert.That(r.Milliseconds, Is.EqualTo(r.Timed.Min(t => t.Milliseconds)), $"{r.Direction}: the fastest timed candidate is kept");
            Assert.That(r.Timed.SelectMany(t => t.Notes.Split(',')), Has.None.EqualTo("down-convert-inputs"));
            if (!tf32)
                Assert.That(r.Timed.SelectMany(t => t.Notes.Split(',')), Has.None.EqualTo("tensor-core").And.None.EqualTo("reduced-precision-reduction"),
                    $"{r.Direction}: exact float32 admits no TF32 engine");
            if (deterministic)
                Assert.That(r.Timed.SelectMany(t => t.Notes.Split(',')), Has.None.EqualTo("nondeterministic"));
        }
        // TF32 rounds the inputs to 10 mantissa bits: about 1e-3 relative; exact float32 stays at the usual 1e-4.
        Assert.That(error, Is.LessThan(tf32 ? 1e-2 : 1e-4));
    }

    [Test]
    public void TheStandInsEnginesAreChosenAsItsTableSays()
    {
        // The CPU stand-in for the NVIDIA libraries (kernels/emulation) proposes a known table of engines; on a real
        // device the engines and their speeds are cuDNN's, which the generic test above covers.
        using var probe = Open(false, true);
        if (!probe.Name.Contains("Fake", StringComparison.Ordinal)) Assert.Ignore("runs on the CPU stand-in only, whose engine table is known");
        probe.Dispose();
        foreach (var (tf32, deterministic, engine) in new[] { (false, true, "0"), (false, false, "2"), (true, false, "1:2=3"), (true, true, "1:2=3") })
        {
            using var gpu = Open(tf32, deterministic);
            ThreePasses(gpu, DType.Float32);
            Assert.That(gpu.EngineReports.Select(r => r.Engine), Is.All.EqualTo(engine), $"tf32 {tf32}, deterministic {deterministic}");
            // Engine 3 cannot build a plan and is said so; engines 4 (Winograd) and 5 (down-converting) are never timed for exact float32.
            if (!tf32) Assert.That(gpu.EngineReports.Select(r => r.Note), Is.All.Contains("3 "), "the refused engine is named");
        }
    }

    [Test]
    public void ASecondBackendTakesTheRememberedChoiceFromDisk()
    {
        string[] first;
        using (var gpu = Open(false, true))
        {
            ThreePasses(gpu, DType.Float32);
            first = gpu.EngineReports.Select(r => r.Engine).ToArray();
        }
        Assert.That(File.Exists(EngineCache.FilePath), "the choices are written beside the kernel cache");
        Assert.That(EngineCache.Size().Entries, Is.EqualTo(3));

        using var again = Open(false, true);
        double error = ThreePasses(again, DType.Float32);
        Assert.That(again.EngineReports.Select(r => r.Source), Is.All.EqualTo("cache"));
        Assert.That(again.EngineReports.Select(r => r.Engine), Is.EqualTo(first));
        Assert.That(error, Is.LessThan(1e-4));

        // Another precision is another problem: timed, not taken from the exact float32 choice.
        using var tf32 = Open(true, true);
        ThreePasses(tf32, DType.Float32);
        Assert.That(tf32.EngineReports.Select(r => r.Source), Is.All.EqualTo("timed"));
    }

    [Test]
    public void AChoiceThatNoLongerBuildsIsTimedAgain()
    {
        using (var gpu = Open(false, true)) ThreePasses(gpu, DType.Float32);
        // A remembered engine this cuDNN does not have (as after an update that renumbers them).
        var lines = File.ReadAllLines(EngineCache.FilePath).Select(l => { var f = l.Split('\t'); f[1] = "999999"; return string.Join('\t', f); });
        File.WriteAllLines(EngineCache.FilePath, lines.Append("a malformed line").Append("key\tnot-an-engine\t0\t1"));

        using var again = Open(false, true);
        double error = ThreePasses(again, DType.Float32);
        Assert.That(again.EngineReports.Select(r => r.Source), Is.All.EqualTo("timed"));
        Assert.That(error, Is.LessThan(1e-4));
        Assert.That(File.ReadAllText(EngineCache.FilePath), Does.Not.Contain("999999"), "the stale choices are replaced");
    }

    [Test]
    public void Float64AndTheLegacySearchStillAgreeWithTheCpu()
    {
        using (var gpu = Open(false, true))
            Assert.That(ThreePasses(gpu, DType.Float64), Is.LessThan(1e-10));
        using var legacy = CudaBackend.Create(options: new CudaBackendOptions { LegacyConvolutionSearch = true });
        Assert.That(ThreePasses(legacy, DType.Float32), Is.LessThan(1e-4));
        Assert.That(legacy.EngineReports, Is.Empty, "the legacy search reports through ConvolutionChoices only");
        Assert.That(legacy.ConvolutionChoices, Has.Count.EqualTo(3));
    }
}
