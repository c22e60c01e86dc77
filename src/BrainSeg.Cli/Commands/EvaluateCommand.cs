using System.CommandLine;
using System.Globalization;
using BrainSeg.Cli.Common;
using BrainSeg.Mri;
using BrainSeg.Mri.IO;
using BrainSeg.Mri.Labels;
using BrainSeg.Seg.Evaluation;
using BrainSeg.Seg.Inference;
using BrainSeg.Seg.Reports;

namespace BrainSeg.Cli.Commands;

/// <summary>`brainseg evaluate --pred seg.nii.gz --ref labels.nii.gz [--label-map] [--connectivity 6|26] [--json out.json]`.</summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var pred = new Option<string>("--pred") { Description = "Segmentation to score (class numbers, as written by 'brainseg segment')", Required = true };
        var reference = new Option<string>("--ref") { Description = "Reference label map on the same grid", Required = true };
        var labelMap = new Option<string?>("--label-map") { Description = $"Maps the reference's raw labels to classes: a preset ({string.Join(", ", LabelTable.PresetNames)}) or a .tsv table; without it the reference must hold class numbers" };
        var connectivity = Opt.Choice("--connectivity", "Neighbourhood of the 3-D connected components: 6 (faces), 18 or 26 (faces, edges, corners)", "6", "6", "18", "26");
        var json = new Option<string?>("--json") { Description = "Also write the scores as JSON to this file (input of 'brainseg compare')" };
        var command = new Command("evaluate", "Score a segmentation against a reference: Dice per class, 3-D connected components, volumes in mL");
        command.Options.Add(pred);
        command.Options.Add(reference);
        command.Options.Add(labelMap);
        command.Options.Add(connectivity);
        command.Options.Add(json);
        command.SetAction(parsed =>
        {
            string predPath = parsed.GetValue(pred)!, refPath = parsed.GetValue(reference)!;
            string? jsonPath = parsed.GetValue(json);
            OutputGuard.Check([predPath, refPath, parsed.GetValue(labelMap)], [jsonPath]);
            var result = Run(predPath, refPath, parsed.GetValue(labelMap), int.Parse(parsed.GetValue(connectivity)!, CultureInfo.InvariantCulture));
            if (jsonPath is not null)
                AtomicFile.WriteAllText(jsonPath, result.ToJson());
            parsed.InvocationConfiguration.Output.WriteLine(result.ToText());
            return 0;
        });
        return command;
    }

    internal static EvaluationResult Run(string predPath, string refPath, string? labelMap, int connectivity)
    {
        MriImage predImage = ImageReader.Read(predPath);
        Volume predicted = predImage.GetVolume();
        Volume reference = ImageReader.ReadVolume(refPath);
        LabelTable? table = labelMap is null ? null : LabelTable.Load(labelMap);
        IReadOnlyList<string> names = table?.ClassNames
            ?? ClassNamesMetadata.Read(predImage.Header)
            ?? GenericNames(predicted, reference);
        return SegmentationEvaluation.Evaluate(predicted, reference, names, table, connectivity, predPath, refPath);
    }

    /// <summary>"background", "class 1", ... up to the largest value in either map.</summary>
    static string[] GenericNames(Volume a, Volume b)
    {
        float max = Math.Max(a.Voxels.Max(), b.Voxels.Max());
        if (!(max >= 1 && max < 256))
            throw new InvalidDataException($"The label maps hold values up to {max}; give --label-map to map raw labels to at most 256 classes.");
        return Enumerable.Range(0, (int)max + 1).Select(i => i == 0 ? "background" : $"class {i}").ToArray();
    }
}
