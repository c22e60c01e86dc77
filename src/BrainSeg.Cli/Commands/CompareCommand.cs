using System.CommandLine;
using BrainSeg.Mri;
using BrainSeg.Mri.IO;
using BrainSeg.Seg.Evaluation;
using BrainSeg.Seg.Reports;
using BrainSeg.Seg.Statistics;

namespace BrainSeg.Cli.Commands;

/// <summary>`brainseg compare A.json... --vs B.json... [--csv] [--json] [--names a,b]`: paired t-tests of two methods on the same images.</summary>
internal static class CompareCommand
{
    public static Command Create()
    {
        var first = new Argument<string[]>("a") { Description = "Evaluations of method A ('brainseg evaluate --json'), one per image, or one cohort evaluation of folders", Arity = ArgumentArity.OneOrMore };
        var second = new Option<string[]>("--vs") { Description = "Evaluations of method B on the same images, in the same order", Required = true, AllowMultipleArgumentsPerToken = true, Arity = ArgumentArity.OneOrMore };
        var names = new Option<string>("--names") { Description = "Names of the two methods, comma-separated", DefaultValueFactory = _ => "A,B" };
        var csv = new Option<string?>("--csv") { Description = "Also write the table as CSV to this file" };
        var json = new Option<string?>("--json") { Description = "Also write the table as JSON to this file" };
        var command = new Command("compare", "Compare two methods' per-image evaluations: mean ± sd per class and paired two-sided t-tests (* p < 0.05, ** p < 0.01)");
        command.Arguments.Add(first);
        command.Options.Add(second);
        command.Options.Add(names);
        command.Options.Add(csv);
        command.Options.Add(json);
        command.SetAction(parsed =>
        {
            string[] methodNames = parsed.GetValue(names)!.Split(',', StringSplitOptions.TrimEntries);
            if (methodNames.Length != 2 || methodNames.Any(string.IsNullOrEmpty))
                throw new BadInputException($"--names takes two names separated by a comma, e.g. --names baseline,adversarial; got \"{parsed.GetValue(names)}\".");
            OutputGuard.Check(parsed.GetValue(first)!.Concat(parsed.GetValue(second)!), [parsed.GetValue(csv), parsed.GetValue(json)]);
            var a = parsed.GetValue(first)!.SelectMany(Load).ToList();
            var b = parsed.GetValue(second)!.SelectMany(Load).ToList();
            CheckSameImages(a, b);
            var comparison = MethodComparison.Compare(a.Select(i => i.Scores).ToList(), b.Select(i => i.Scores).ToList(), methodNames[0], methodNames[1]);
            // Both outputs are built before either is written, so a failure leaves neither behind.
            string? csvPath = parsed.GetValue(csv), jsonPath = parsed.GetValue(json);
            if (csvPath is not null) AtomicFile.WriteAllText(csvPath, comparison.ToCsv());
            if (jsonPath is not null) AtomicFile.WriteAllText(jsonPath, comparison.ToJson());
            parsed.InvocationConfiguration.Output.WriteLine(comparison.ToText());
            return 0;
        });
        return command;
    }

    /// <summary>The largest evaluation file read (a cohort's holds a few kilobytes per image).</summary>
    const int MaxEvaluationBytes = 16 << 20;

    /// <summary>One image's evaluation (named null), or every image of a cohort's evaluation (named as matched).</summary>
    static IEnumerable<(string? Name, EvaluationResult Scores)> Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such evaluation file; write one with 'brainseg evaluate --json'.", path);
        string text = System.Text.Encoding.UTF8.GetString(FileBytes.ReadSmall(path, MaxEvaluationBytes, "evaluation"));
        return CohortEvaluation.IsCohort(text)
            ? CohortEvaluation.ReadImages(text, path).Select(i => ((string?)i.Name, i.Scores))
            : [(null, EvaluationResult.FromJson(text, path))];
    }

    /// <summary>Cohort evaluations pair by image name: both methods must have scored the same images.</summary>
    static void CheckSameImages(IReadOnlyList<(string? Name, EvaluationResult Scores)> a, IReadOnlyList<(string? Name, EvaluationResult Scores)> b)
    {
        if (a.Concat(b).Any(i => i.Name is null)) return; // single evaluations pair by the order given
        var onlyA = a.Select(i => i.Name).Except(b.Select(i => i.Name)).ToList();
        var onlyB = b.Select(i => i.Name).Except(a.Select(i => i.Name)).ToList();
        if (onlyA.Count + onlyB.Count > 0 || !a.Select(i => i.Name).SequenceEqual(b.Select(i => i.Name)))
            throw new BadInputException($"The two methods scored different images (only in A: {string.Join(", ", onlyA.Take(5))}; only in B: {string.Join(", ", onlyB.Take(5))}); evaluate both on the same references.");
    }
}
