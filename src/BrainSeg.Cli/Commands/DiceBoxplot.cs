namespace BrainSeg.Cli.Commands;

/// <summary>Figure-3-like boxplots with ScottPlot: Dice per class, without (left, grey) and with (right, blue) adversarial training.</summary>
internal static class DiceBoxplot
{
    public static void Write(string title, IReadOnlyList<string> classes, IReadOnlyList<double[]> without, IReadOnlyList<double[]> with, string marks, string png)
    {
        var plot = new ScottPlot.Plot();
        var markList = marks.Split(',');
        var boxesWithout = new List<ScottPlot.Box>();
        var boxesWith = new List<ScottPlot.Box>();
        for (int k = 0; k < classes.Count; k++)
        {
            boxesWithout.Add(BoxOf(without[k], 3 * k));
            boxesWith.Add(BoxOf(with[k], 3 * k + 1));
        }
        var left = plot.Add.Boxes(boxesWithout);
        left.LegendText = "without adversarial";
        left.FillColor = ScottPlot.Colors.LightGray;
        var right = plot.Add.Boxes(boxesWith);
        right.LegendText = "with adversarial";
        right.FillColor = ScottPlot.Colors.SteelBlue;
        var positions = Enumerable.Range(0, classes.Count).Select(k => 3.0 * k + 0.5).ToArray();
        var labels = classes.Select((c, k) => k < markList.Length && markList[k].Length > 0 ? $"{c} {markList[k]}" : c).ToArray();
        plot.Axes.Bottom.SetTicks(positions, labels);
        plot.YLabel("Dice");
        plot.Title(title);
        plot.ShowLegend();
        var temp = png + ".tmp.png";
        plot.SavePng(temp, 900, 500);
        File.Move(temp, png, overwrite: true);
    }

    static ScottPlot.Box BoxOf(double[] values, double position)
    {
        var sorted = values.Order().ToArray();
        double Quantile(double q)
        {
            double at = q * (sorted.Length - 1);
            int low = (int)Math.Floor(at), high = (int)Math.Ceiling(at);
            return sorted[low] + (at - low) * (sorted[high] - sorted[low]);
        }
        return new ScottPlot.Box
        {
            Position = position,
            BoxMin = Quantile(0.25),
            BoxMax = Quantile(0.75),
            BoxMiddle = Quantile(0.5),
            WhiskerMin = sorted[0],
            WhiskerMax = sorted[^1],
        };
    }

    /// <summary>Draws the figure, or says why not (a figure's failure does not fail the experiment).</summary>
    public static bool TryWrite(string title, IReadOnlyList<string> classes, IReadOnlyList<double[]> without, IReadOnlyList<double[]> with, string marks, string png, TextWriter log)
    {
        try
        {
            Write(title, classes, without, with, marks, png);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or IOException)
        {
            log.WriteLine($"note: no boxplot {png} ({e.GetType().Name}: {e.Message}).");
            return false;
        }
    }
}
