using System.Globalization;
using BrainSeg.Seg.Reports;

namespace BrainSeg.Seg.Training;

/// <summary>One row of log.csv; NaN where a value is missing (Ld and La in the baseline, validation on most rows).</summary>
/// <param name="Components">The validation prediction's 3-D connected components, all classes.</param>
public sealed record LogRow(long Iteration, double Ls, double Ld, double La, double ValidationDice, double Components);

/// <summary>
/// RUN_DIR/log.csv: one row per logging window with the mean losses over it and, on the rows where the run
/// validated, the validation's mean Dice and 3-D component count (empty elsewhere). A resumed run first drops
/// the rows past its checkpoint (they belong to iterations it will train again), so the log never repeats one.
/// </summary>
public sealed class TrainingLog : IDisposable
{
    public const string Header = "epoch,iteration,patches,seconds,ls,ld,la,val_dice,val_components,precision";

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

    /// <param name="precision">How the row's iterations computed (fp32, or tf32 on a GPU): a resumed run may change it.</param>
    public void Append(int epoch, long iteration, long patches, double seconds, Losses mean, ValidationScore? validation = null, string precision = "fp32")
    {
        _writer.WriteLine(string.Join(",",
            epoch.ToString(CultureInfo.InvariantCulture), iteration.ToString(CultureInfo.InvariantCulture),
            patches.ToString(CultureInfo.InvariantCulture), seconds.ToString("F3", CultureInfo.InvariantCulture),
            Format(mean.Segmentation), Format(mean.Discriminator), Format(mean.Adversarial),
            Format(validation?.MeanDice ?? double.NaN), validation is { } v ? v.Components.ToString(CultureInfo.InvariantCulture) : "", precision));
        _writer.Flush();
    }

    private static string Format(double v) => double.IsNaN(v) ? "" : v.ToString("G7", CultureInfo.InvariantCulture);

    /// <summary>The rows of a log.csv; missing values (and the validation columns of older logs) are NaN.</summary>
    public static List<LogRow> Read(string path)
    {
        static double Parse(string[] f, int i) => i >= f.Length || f[i].Length == 0 ? double.NaN : double.Parse(f[i], CultureInfo.InvariantCulture);
        var rows = new List<LogRow>();
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            var f = line.Split(',');
            if (f.Length < 7) continue;
            rows.Add(new LogRow(long.Parse(f[1], CultureInfo.InvariantCulture), Parse(f, 4), Parse(f, 5), Parse(f, 6), Parse(f, 7), Parse(f, 8)));
        }
        return rows;
    }

    public void Dispose() => _writer.Dispose();
}
