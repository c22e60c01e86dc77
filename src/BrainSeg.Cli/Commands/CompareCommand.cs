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
        var first = new Argument<string[]>("a") { Description = "Evaluations of method A ('brainseg evaluate --json'), one per image", Arity = ArgumentArity.OneOrMore };
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
            var a = parsed.GetValue(first)!.Select(Load).ToList();
            var b = parsed.GetValue(second)!.Select(Load).ToList();
            var comparison = MethodComparison.Compare(a, b, methodNames[0], methodNames[1]);
            // Both outputs are built before either is written, so a failure leaves neither behind.
            string? csvPath = parsed.GetValue(csv), jsonPath = parsed.GetValue(json);
            if (csvPath is not null) AtomicFile.WriteAllText(csvPath, comparison.ToCsv());
            if (jsonPath is not null) AtomicFile.WriteAllText(jsonPath, comparison.ToJson());
            parsed.InvocationConfiguration.Output.WriteLine(comparison.ToText());
            return 0;
        });
        return command;
    }

    /// <summary>The largest evaluation file read (one holds a few kilobytes).</summary>
    const int MaxEvaluationBytes = 16 << 20;

    static EvaluationResult Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such evaluation file; write one with 'brainseg evaluate --json'.", path);
        return EvaluationResult.FromJson(System.Text.Encoding.UTF8.GetString(FileBytes.ReadSmall(path, MaxEvaluationBytes, "evaluation")), path);
    }
}
