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
        var best = double.MaxValue;
        for (var i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            pass();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        Console.WriteLine($"{name,-16} {best * 1e3,8:F1} ms  {CpuConvBenchmarks.Flops / best / 1e9,6:F1} GFLOP/s");
    }
    bench.Cleanup();
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
