using System.Diagnostics;
using BenchmarkDotNet.Running;
using BrainSeg.Benchmarks;

// `--quick`: a few timed passes of the conv layer with a stopwatch (seconds, for iterating on kernels).
// Otherwise BenchmarkDotNet with its own arguments, e.g. --filter "*Conv*" --job short.
if (args is ["--quick"])
{
    var bench = new CpuConvBenchmarks();
    bench.Setup();
    foreach (var (name, pass) in new (string, Action)[] { ("forward", bench.Forward), ("backward data", bench.BackwardData), ("backward filter", bench.BackwardFilter) })
    {
        pass();
        double best = double.MaxValue, bestCpu = double.MaxValue;
        for (var i = 0; i < 5; i++)
        {
            // CPU time as well as wall time: on a shared machine it shows the work done, not the waiting.
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            pass();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
            bestCpu = Math.Min(bestCpu, (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds);
        }
        Console.WriteLine($"{name,-16} {best * 1e3,8:F1} ms  {CpuConvBenchmarks.Flops / best / 1e9,6:F1} GFLOP/s   per CPU-second {CpuConvBenchmarks.Flops / bestCpu / 1e9,6:F1}");
    }
    bench.Cleanup();

    // The bare SGEMM on one thread, for the kernel's own efficiency.
    var one = new BrainSeg.Engine.Cpu.CpuBackend(threads: 1);
    const int size = 768;
    var data = Enumerable.Range(0, size * size).Select(i => (float)(i % 7) - 3).ToArray();
    using var a = BrainSeg.Engine.Tensor.FromHost(one, data, size, size);
    using var b = BrainSeg.Engine.Tensor.FromHost(one, data, size, size);
    using var c = one.Empty(a.Shape, BrainSeg.Engine.DType.Float32);
    one.Gemm(false, false, 1, a, b, 0, c);
    var bestGemm = double.MaxValue;
    for (var i = 0; i < 5; i++)
    {
        var sw = Stopwatch.StartNew();
        one.Gemm(false, false, 1, a, b, 0, c);
        bestGemm = Math.Min(bestGemm, sw.Elapsed.TotalSeconds);
    }
    Console.WriteLine($"sgemm {size}³ 1 thread {bestGemm * 1e3,5:F1} ms  {2.0 * size * size * size / bestGemm / 1e9,6:F1} GFLOP/s");
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
