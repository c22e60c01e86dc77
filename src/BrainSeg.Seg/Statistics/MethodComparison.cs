using System.Globalization;
using System.Text;
using System.Text.Json;
using BrainSeg.Mri;
using BrainSeg.Seg.Evaluation;

namespace BrainSeg.Seg.Statistics;

/// <summary>One measure (e.g. the Dice of WM) over the images: mean ± sd per method and the paired t-test of B − A.</summary>
public sealed record ComparisonRow(string Measure, MeanSd A, MeanSd B, TTestResult Test);

/// <summary>
/// Two methods scored on the same images (the i-th evaluation of A and of B are the same image):
/// the Dice of every non-background class, the mean Dice and the total component count, each with a
/// paired two-sided t-test, marked * for p &lt; 0.05 and ** for p &lt; 0.01 as in the paper's Figure 3.
/// </summary>
public sealed record MethodComparison(string NameA, string NameB, int Images, IReadOnlyList<ComparisonRow> Rows)
{
    public static MethodComparison Compare(IReadOnlyList<EvaluationResult> a, IReadOnlyList<EvaluationResult> b, string nameA = "A", string nameB = "B")
    {
        if (a.Count != b.Count)
            throw new BadInputException($"{nameA} has {a.Count} evaluations but {nameB} has {b.Count}; give one evaluation per image for both methods, in the same image order.");
        if (a.Count < 2)
            throw new BadInputException($"A paired comparison needs at least 2 images per method, got {a.Count}.");
        var names = a[0].Classes.Select(c => c.Name).ToArray();
        foreach (var (e, i) in a.Concat(b).Select((e, i) => (e, i)))
            if (!e.Classes.Select(c => c.Name).SequenceEqual(names))
                throw new BadInputException($"Evaluation {e.Prediction} has classes [{string.Join(", ", e.Classes.Select(c => c.Name))}], not [{string.Join(", ", names)}]; compare evaluations with the same classes.");

        var rows = new List<ComparisonRow>();
        for (int c = 1; c < names.Length; c++)
            rows.Add(Row($"Dice {names[c]}", a.Select(e => e.Classes[c].Dice), b.Select(e => e.Classes[c].Dice)));
        rows.Add(Row("mean Dice", a.Select(e => e.MeanDice), b.Select(e => e.MeanDice)));
        rows.Add(Row("components (total)", a.Select(e => (double)e.PredictedComponentsTotal), b.Select(e => (double)e.PredictedComponentsTotal)));
        return new MethodComparison(nameA, nameB, a.Count, rows);
    }

    static ComparisonRow Row(string measure, IEnumerable<double> a, IEnumerable<double> b)
    {
        double[] x = a.ToArray(), y = b.ToArray();
        return new ComparisonRow(measure, MeanSd.Of(x), MeanSd.Of(y), PairedTTest.Test(x, y));
    }

    static string F(double v, string format = "G6") => v.ToString(format, CultureInfo.InvariantCulture);

    public string ToText()
    {
        var text = new StringBuilder();
        text.AppendLine($"{Images} images; paired two-sided t-tests of {NameB} − {NameA}; * p < 0.05, ** p < 0.01");
        int width = Math.Max(20, Rows.Max(r => r.Measure.Length) + 1);
        text.AppendLine($"{"measure".PadRight(width)} {NameA,-20} {NameB,-20} {"p",-10}");
        foreach (var r in Rows)
            text.AppendLine($"{r.Measure.PadRight(width)} {r.A,-20} {r.B,-20} {F(r.Test.P, "0.0000")} {r.Test.Mark}".TrimEnd());
        return text.ToString().TrimEnd();
    }

    public string ToMarkdown()
    {
        var text = new StringBuilder();
        text.AppendLine($"| measure | {NameA} (mean ± sd) | {NameB} (mean ± sd) | t | p |");
        text.AppendLine("|---|---|---|---|---|");
        foreach (var r in Rows)
            text.AppendLine($"| {r.Measure} | {r.A} | {r.B} | {F(r.Test.T, "0.000")} | {F(r.Test.P, "0.0000")} {r.Test.Mark} |");
        text.Append($"\n{Images} images; paired two-sided t-tests of {NameB} − {NameA}; * p < 0.05, ** p < 0.01.");
        return text.ToString();
    }

    public string ToCsv()
    {
        var text = new StringBuilder("measure,method_a,mean_a,sd_a,method_b,mean_b,sd_b,n,mean_difference,t,df,p,mark\n");
        foreach (var r in Rows)
            text.Append($"{Quote(r.Measure)},{Quote(NameA)},{F(r.A.Mean, "R")},{F(r.A.Sd, "R")},{Quote(NameB)},{F(r.B.Mean, "R")},{F(r.B.Sd, "R")},{Images},{F(r.Test.MeanDifference, "R")},{F(r.Test.T, "R")},{r.Test.DegreesOfFreedom},{F(r.Test.P, "R")},{r.Test.Mark}\n");
        return text.ToString();
    }

    static string Quote(string s) => s.Contains(',') || s.Contains('"') ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;

    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("format", "brainseg-comparison/1");
            json.WriteString("method_a", NameA);
            json.WriteString("method_b", NameB);
            json.WriteNumber("images", Images);
            json.WriteStartArray("rows");
            foreach (var r in Rows)
            {
                json.WriteStartObject();
                json.WriteString("measure", r.Measure);
                json.WriteNumber("mean_a", r.A.Mean);
                json.WriteNumber("sd_a", r.A.Sd);
                json.WriteNumber("mean_b", r.B.Mean);
                json.WriteNumber("sd_b", r.B.Sd);
                json.WriteNumber("mean_difference", r.Test.MeanDifference);
                if (double.IsFinite(r.Test.T)) json.WriteNumber("t", r.Test.T); else json.WriteString("t", r.Test.T > 0 ? "inf" : "-inf");
                json.WriteNumber("df", r.Test.DegreesOfFreedom);
                json.WriteNumber("p", r.Test.P);
                json.WriteString("mark", r.Test.Mark);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }
}
