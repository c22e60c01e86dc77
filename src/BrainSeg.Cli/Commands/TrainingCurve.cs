using BrainSeg.Seg.Training;

namespace BrainSeg.Cli.Commands;

/// <summary>RUN_DIR/curve.png: Ls, Ld and La against the iteration, drawn from log.csv with ScottPlot.</summary>
internal static class TrainingCurve
{
    public static void Write(string logCsv, string png)
    {
        var rows = TrainingLog.Read(logCsv);
        var plot = new ScottPlot.Plot();
        void Series(string name, Func<(long Iteration, double Ls, double Ld, double La), double> pick)
        {
            var points = rows.Where(r => double.IsFinite(pick(r))).ToArray();
            if (points.Length == 0) return;
            var line = plot.Add.Scatter(points.Select(r => (double)r.Iteration).ToArray(), points.Select(pick).ToArray());
            line.LegendText = name;
        }
        Series("Ls (segmentation)", r => r.Ls);
        Series("Ld (discriminator, manual)", r => r.Ld);
        Series("La (discriminator, generated)", r => r.La);
        plot.XLabel("iteration");
        plot.YLabel("loss (mean over the log window)");
        plot.ShowLegend();
        var temp = png + ".tmp.png";
        plot.SavePng(temp, 900, 500);
        File.Move(temp, png, overwrite: true);
    }

    /// <summary>Draws the curve, or says why not (the PNG is a convenience: its failure does not fail the run).</summary>
    public static void TryWrite(string logCsv, string png, TextWriter stdout)
    {
        try
        {
            Write(logCsv, png);
            stdout.WriteLine($"Training curve: {png}");
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or IOException)
        {
            stdout.WriteLine($"note: no training curve ({e.GetType().Name}: {e.Message}); the numbers are in {logCsv}. " +
                "The plot needs libSkiaSharp.so beside brainseg.");
        }
    }
}
