using System.Globalization;
using BrainSeg.Seg.Reports;

namespace BrainSeg.Seg.Training;

/// <summary>
/// RUN_DIR/log.csv: one row per logging window with the mean losses over it. A resumed run first drops the
/// rows past its checkpoint (they belong to iterations it will train again), so the log never repeats one.
/// </summary>
public sealed class TrainingLog : IDisposable
{
    public const string Header = "epoch,iteration,patches,seconds,ls,ld,la";

    private readonly StreamWriter _writer;

    public TrainingLog(string path, long keepThroughIteration)
    {
        var kept = new List<string>();
        if (File.Exists(path) && keepThroughIteration > 0)
            foreach (var line in File.ReadLines(path).Skip(1))
            {
                var fields = line.Split(',');
                if (fields.Length >= 2 && long.TryParse(fields[1], CultureInfo.InvariantCulture, out var it) && it <= keepThroughIteration)
                    kept.Add(line);
            }
        AtomicFile.WriteAllText(path, string.Concat(kept.Prepend(Header).Select(line => line + Environment.NewLine)));
        _writer = new StreamWriter(path, append: true);
    }

    public void Append(int epoch, long iteration, long patches, double seconds, Losses mean)
    {
        _writer.WriteLine(string.Join(",",
            epoch.ToString(CultureInfo.InvariantCulture), iteration.ToString(CultureInfo.InvariantCulture),
            patches.ToString(CultureInfo.InvariantCulture), seconds.ToString("F3", CultureInfo.InvariantCulture),
            Format(mean.Segmentation), Format(mean.Discriminator), Format(mean.Adversarial)));
        _writer.Flush();
    }

    private static string Format(double v) => double.IsNaN(v) ? "" : v.ToString("G7", CultureInfo.InvariantCulture);

    /// <summary>Rows of a log.csv as (iteration, Ls, Ld, La); missing losses are NaN.</summary>
    public static List<(long Iteration, double Ls, double Ld, double La)> Read(string path)
    {
        static double Parse(string s) => s.Length == 0 ? double.NaN : double.Parse(s, CultureInfo.InvariantCulture);
        var rows = new List<(long, double, double, double)>();
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            var f = line.Split(',');
            if (f.Length < 7) continue;
            rows.Add((long.Parse(f[1], CultureInfo.InvariantCulture), Parse(f[4]), Parse(f[5]), Parse(f[6])));
        }
        return rows;
    }

    public void Dispose() => _writer.Dispose();
}
