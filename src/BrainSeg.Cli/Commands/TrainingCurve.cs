using BrainSeg.Seg.Training;
using ScottPlot;

namespace BrainSeg.Cli.Commands;

/// <summary>
/// RUN_DIR/curve.png drawn from log.csv with ScottPlot: Ls, Ld and La against the iteration and, when the run
/// validated, a second panel below with the validation's mean Dice and its 3-D component count.
/// </summary>
internal static class TrainingCurve
{
    public static void Write(string logCsv, string png)
    {
        var rows = TrainingLog.Read(logCsv);
        static void Series(ScottPlot.Plot plot, IReadOnlyList<LogRow> rows, string name, Func<LogRow, double> pick, bool right = false)
        {
            var points = rows.Where(r => double.IsFinite(pick(r))).ToArray();
            if (points.Length == 0) return;
            var line = plot.Add.Scatter(points.Select(r => (double)r.Iteration).ToArray(), points.Select(pick).ToArray());
            line.LegendText = name;
            if (right) line.Axes.YAxis = plot.Axes.Right;
        }
        var validated = rows.Any(r => double.IsFinite(r.ValidationDice));
        var multiplot = new ScottPlot.Multiplot();
        multiplot.AddPlots(validated ? 2 : 1);
        var losses = multiplot.GetPlot(0);
        Series(losses, rows, "Ls (segmentation)", r => r.Ls);
        Series(losses, rows, "Ld (discriminator, manual)", r => r.Ld);
        Series(losses, rows, "La (discriminator, generated)", r => r.La);
        losses.XLabel("iteration");
        losses.YLabel("loss (mean over the log window)");
        losses.ShowLegend();
        if (validated)
        {
            var validation = multiplot.GetPlot(1);
            Series(validation, rows, "validation mean Dice (left)", r => r.ValidationDice);
            Series(validation, rows, "3-D components (right)", r => r.Components, right: true);
            validation.XLabel("iteration");
            validation.YLabel("mean Dice");
            validation.Axes.Right.Label.Text = "components";
            validation.ShowLegend();
        }
        var temp = png + ".tmp.png";
        multiplot.SavePng(temp, 900, validated ? 900 : 500);
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
