using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using BrainSeg.Engine.Cpu;
using BrainSeg.Seg.Benchmarking;

namespace BrainSeg.Benchmarks;

/// <summary>
/// One training step (forward + backward + RMSprop, random patches rotated over four input sets) of the FCN
/// (51×51) and the dilated network (87×87) on the CPU backend: the same work as `brainseg bench --device cpu`.
/// FLOPs per step: 3 × forward (FCN 325 MFLOP, dilated 413 MFLOP per patch).
/// </summary>
[Config(typeof(TrainingConfig))]
public class CpuTrainingBenchmarks
{
    [Params(BenchStep.Fcn, BenchStep.Dilated)] public BenchStep Network { get; set; }
    [Params(8, 32)] public int Batch { get; set; }

    private BenchRunner.Workload _work = null!;
    private int _rep;

    [GlobalSetup]
    public void Setup()
    {
        _work = BenchRunner.Build(CpuBackend.Instance, new BenchSettings { Step = Network, Batch = Batch });
        _work.Step(_rep++); // first use: buffers and packed weights
    }

    [GlobalCleanup]
    public void Cleanup() => _work.Dispose();

    [Benchmark] public void TrainingStep() => _work.Step(_rep++);

    private static BenchSettings Settings(BenchmarkCase c) => new()
    {
        Step = (BenchStep)c.Parameters["Network"],
        Batch = (int)c.Parameters["Batch"],
    };

    private sealed class TrainingConfig : ManualConfig
    {
        public TrainingConfig()
        {
            // A step takes a large fraction of a second on two cores: a few single-invocation iterations suffice,
            // run in this process (no generated project to build, which alone can take minutes on two busy cores).
            AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(5).WithInvocationCount(1).WithUnrollFactor(1)
                .WithToolchain(InProcessEmitToolchain.Instance));
            AddColumn(new RateColumn("GFLOP/s", "3 × forward FLOPs of the batch / mean time", c => BenchRunner.WorkFlops(Settings(c)) / 1e9));
            AddColumn(new RateColumn("patches/s", "batch / mean time", c => Settings(c).Batch));
        }
    }

    /// <summary>Work per step over the mean time, per second.</summary>
    private sealed class RateColumn(string name, string legend, Func<BenchmarkCase, double> work) : IColumn
    {
        public string Id => name;
        public string ColumnName => name;
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => legend;
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            if (summary[benchmarkCase]?.ResultStatistics is not { } stats) return "-";
            return (work(benchmarkCase) / (stats.Mean * 1e-9)).ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}
