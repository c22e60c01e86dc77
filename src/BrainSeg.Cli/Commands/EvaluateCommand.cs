using System.CommandLine;
using System.Globalization;
using BrainSeg.Cli.Common;
using BrainSeg.Mri;
using BrainSeg.Mri.IO;
using BrainSeg.Mri.Labels;
using BrainSeg.Seg.Evaluation;
using BrainSeg.Seg.Reports;

namespace BrainSeg.Cli.Commands;

/// <summary>
/// `brainseg evaluate --pred seg.nii.gz --ref labels.nii.gz [--label-map] [--connectivity 6|26] [--json out.json]`,
/// or for a cohort `--pred DIR --ref DIR [--json cohort.json] [--csv images.csv] [--summary-csv summary.csv]`.
/// </summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var pred = new Option<string>("--pred") { Description = "Segmentation to score (class numbers, as written by 'brainseg segment'), or a folder of them", Required = true };
        var reference = new Option<string>("--ref") { Description = "Reference label map on the same grid, or a folder of them matched by name (a.nii.gz scored against a.nii.gz, a.nii or a.mgz at the same relative path)", Required = true };
        var labelMap = new Option<string?>("--label-map") { Description = $"Maps the reference's raw labels to classes: a preset ({string.Join(", ", LabelTable.PresetNames)}) or a .tsv table; without it the reference must hold class numbers" };
        var connectivity = Opt.Choice("--connectivity", "Neighbourhood of the 3-D connected components: 6 (faces), 18 or 26 (faces, edges, corners)", "6", "6", "18", "26");
        var json = new Option<string?>("--json") { Description = "Also write the scores as JSON to this file (input of 'brainseg compare'); for folders, every image's scores and the mean ± sd per class" };
        var csv = new Option<string?>("--csv") { Description = "For folders: also write one row per image (Dice and volumes per class) as CSV to this file" };
        var summaryCsv = new Option<string?>("--summary-csv") { Description = "For folders: also write the mean ± sd over the images of each measure as CSV to this file" };
        var command = new Command("evaluate", "Score a segmentation against a reference: Dice per class, 3-D connected components, volumes in mL");
        command.Options.Add(pred);
        command.Options.Add(reference);
        command.Options.Add(labelMap);
        command.Options.Add(connectivity);
        command.Options.Add(json);
        command.Options.Add(csv);
        command.Options.Add(summaryCsv);
        command.SetAction(parsed =>
        {
            string predPath = parsed.GetValue(pred)!, refPath = parsed.GetValue(reference)!;
            string? jsonPath = parsed.GetValue(json);
            int neighbours = int.Parse(parsed.GetValue(connectivity)!, CultureInfo.InvariantCulture);
            if (Directory.Exists(predPath) || Directory.Exists(refPath))
                return RunCohort(predPath, refPath, parsed.GetValue(labelMap), neighbours, jsonPath, parsed.GetValue(csv), parsed.GetValue(summaryCsv),
                    parsed.InvocationConfiguration.Output, parsed.InvocationConfiguration.Error);
            if (parsed.GetValue(csv) is not null || parsed.GetValue(summaryCsv) is not null)
                throw new BadInputException("--csv and --summary-csv apply to folders of images; for one image use --json.");
            OutputGuard.Check([predPath, refPath, parsed.GetValue(labelMap)], [jsonPath]);
            var result = Run(predPath, refPath, parsed.GetValue(labelMap), neighbours);
            if (jsonPath is not null)
                AtomicFile.WriteAllText(jsonPath, result.ToJson());
            parsed.InvocationConfiguration.Output.WriteLine(result.ToText());
            return 0;
        });
        return command;
    }

    /// <summary>Scores a folder against a folder; exit 1 when a prediction has no reference or cannot be scored, after all the others.</summary>
    static int RunCohort(string predFolder, string refFolder, string? labelMap, int connectivity, string? jsonPath, string? csvPath, string? summaryPath,
        TextWriter stdout, TextWriter stderr)
    {
        var table = labelMap is null ? null : LabelTable.Load(labelMap);
        var cohort = CohortEvaluation.Evaluate(predFolder, refFolder, table, connectivity, CliHost.IsUserError);
        if (cohort.Images.Count == 0)
            throw new InvalidDataException($"No prediction under {predFolder} could be scored against {refFolder}: " + string.Join("; ", cohort.Failures.Take(3).Select(f => f.Message)));
        // All three are built before any is written, so that a failure leaves none behind.
        var files = new List<(string? Path, string Text)> { (jsonPath, cohort.ToJson()), (csvPath, cohort.ImagesCsv()), (summaryPath, cohort.SummaryCsv()) };
        foreach (var (path, text) in files)
            if (path is not null) AtomicFile.WriteAllText(path, text);
        stdout.WriteLine(cohort.ToText());
        if (cohort.Failures.Count == 0) return ExitCodes.Success;
        stderr.WriteLine($"brainseg: {cohort.Failures.Count} predictions were not scored:");
        foreach (var f in cohort.Failures)
            stderr.WriteLine($"  {f.Name}: {f.Message}");
        return ExitCodes.Failure;
    }

    internal static EvaluationResult Run(string predPath, string refPath, string? labelMap, int connectivity) =>
        SegmentationEvaluation.EvaluateFiles(predPath, refPath, labelMap is null ? null : LabelTable.Load(labelMap), connectivity);
}
