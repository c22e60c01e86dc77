namespace BrainSeg.Cli.Commands;

/// <summary>Figure-3-like boxplots with ScottPlot: Dice per class, one box per arm side by side (baseline grey, control amber, adversarial blue).</summary>
internal static class DiceBoxplot
{
    static readonly ScottPlot.Color[] Fills = [ScottPlot.Colors.LightGray, ScottPlot.Colors.Orange, ScottPlot.Colors.SteelBlue, ScottPlot.Colors.SeaGreen];

    public static void Write(string title, IReadOnlyList<string> classes, IReadOnlyList<(string Name, double[][] PerClass)> groups, string marks, string png)
    {
        var plot = new ScottPlot.Plot();
        var markList = marks.Split(',');
        int stride = groups.Count + 1;
        for (int g = 0; g < groups.Count; g++)
        {
            var boxes = plot.Add.Boxes(Enumerable.Range(0, classes.Count).Select(k => BoxOf(groups[g].PerClass[k], stride * k + g)).ToList());
            boxes.LegendText = groups[g].Name;
            boxes.FillColor = Fills[g % Fills.Length];
        }
        var positions = Enumerable.Range(0, classes.Count).Select(k => stride * k + (groups.Count - 1) / 2.0).ToArray();
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
    public static bool TryWrite(string title, IReadOnlyList<string> classes, IReadOnlyList<(string Name, double[][] PerClass)> groups, string marks, string png, TextWriter log)
    {
        try
        {
            Write(title, classes, groups, marks, png);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or IOException)
        {
            log.WriteLine($"note: no boxplot {png} ({e.GetType().Name}: {e.Message}).");
            return false;
        }
    }
}
