using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;

namespace BrainSeg.Benchmarks;

/// <summary>
/// One 32→32 3×3 valid convolution layer at batch 100 on 49×49 inputs (the paper's dilated-network layer
/// size), float32 on the CPU backend: forward, backward data and backward filter, each 2·N·K·C·R·S·Ho·Wo FLOPs.
/// </summary>
[Config(typeof(GflopsConfig))]
public class CpuConvBenchmarks
{
    public const int N = 100, C = 32, K = 32, H = 49, W = 49, R = 3, S = 3;
    public static readonly Conv2dSpec Spec = Conv2dSpec.Valid;
    public static long Flops => 2L * N * K * C * R * S * Spec.OutputSize(H, R) * Spec.OutputSize(W, S);

    private readonly CpuBackend _cpu = CpuBackend.Instance;
    private Tensor _x = null!, _w = null!, _y = null!, _dy = null!, _dx = null!, _dw = null!;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        float[] Values(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        int ho = Spec.OutputSize(H, R), wo = Spec.OutputSize(W, S);
        _x = Tensor.FromHost(_cpu, Values(N * C * H * W), N, C, H, W);
        _w = Tensor.FromHost(_cpu, Values(K * C * R * S), K, C, R, S);
        _dy = Tensor.FromHost(_cpu, Values(N * K * ho * wo), N, K, ho, wo);
        _y = _cpu.Empty(_dy.Shape, DType.Float32);
        _dx = _cpu.Empty(_x.Shape, DType.Float32);
        _dw = _cpu.Empty(_w.Shape, DType.Float32);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _x, _w, _y, _dy, _dx, _dw }) t.Dispose();
    }

    [Benchmark] public void Forward() => _cpu.Conv2dForward(_x, _w, _y, Spec);
    [Benchmark] public void BackwardData() => _cpu.Conv2dBackwardData(_dy, _w, _dx, Spec);
    [Benchmark] public void BackwardFilter() => _cpu.Conv2dBackwardFilter(_x, _dy, _dw, Spec);

    private sealed class GflopsConfig : ManualConfig
    {
        public GflopsConfig() => AddColumn(new GflopsColumn());
    }

    /// <summary>Achieved GFLOP/s from the mean time of each pass.</summary>
    private sealed class GflopsColumn : IColumn
    {
        public string Id => "GFLOPs";
        public string ColumnName => "GFLOP/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "2·N·K·C·R·S·Ho·Wo floating-point operations per pass / mean time";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is not { } stats) return "-";
            return (Flops / stats.Mean).ToString("F1", System.Globalization.CultureInfo.InvariantCulture); // ns → GFLOP/s
        }
    }
}
