using System.CommandLine;
using System.Runtime.InteropServices;
using BrainSeg.Cli.Common;
using BrainSeg.Mri.IO;
using BrainSeg.Mri;
using BrainSeg.Seg.Checkpoints;
using BrainSeg.Seg.Inference;
using BrainSeg.Seg.Reports;

namespace BrainSeg.Cli.Commands;

/// <summary>
/// `brainseg segment --model RUN_DIR/model.safetensors --input T1 --output seg.nii.gz [--probabilities] [--device] [--batch-slices]`,
/// or for a cohort `--input DIR|GLOB|manifest.csv --output-dir OUT [--shard i/n] [--skip-existing false]`.
/// </summary>
internal static class SegmentCommand
{
    /// <summary>The most slices one forward pass takes.</summary>
    public const int MaxBatchSlices = 4096;

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "RUN_DIR/model.safetensors written by 'brainseg train'", Required = true };
        var input = new Option<string>("--input", "-i") { Description = "T1-weighted image: NIfTI (.nii, .nii.gz) or MGH/MGZ; with --output-dir also a folder (searched recursively), a glob ('scans/*/T1.nii.gz': '*' within a name, '**' for any depth) or a manifest .csv with an 'input' column", Required = true };
        var output = new Option<string?>("--output", "-o") { Description = "Label map to write (.nii or .nii.gz): the model's class numbers on the input's grid" };
        var outputDir = new Option<string?>("--output-dir") { Description = "Segment every image --input names: each label map at its input's relative path (.nii.gz for compressed inputs, .nii otherwise), and summary.csv (status, seconds, volume per class in mL)" };
        var shard = new Option<string?>("--shard") { Description = "With --output-dir: take share i of n (0-based, by sorted relative path), so that n processes cover the cohort exactly once" };
        var skipExisting = new Option<bool>("--skip-existing") { Description = "With --output-dir, on by default: leave inputs whose label map exists (outputs are written whole or not at all, so a rerun continues after a failure); 'false' segments them again", DefaultValueFactory = _ => true };
        var probabilities = new Option<string?>("--probabilities") { Description = "Also write the class probabilities as a 4-D float32 NIfTI (one volume per class)" };
        var batchSlices = Opt.Int("--batch-slices", "Slices per forward pass (memory grows with it)", 1, MaxBatchSlices, 8);
        var device = DeviceOption.Create();
        var math = new GpuMathOptions();
        var command = new Command("segment", "Segment a whole image slice by slice with a trained network");
        foreach (Option o in new Option[] { model, input, output, outputDir, shard, skipExisting, probabilities, batchSlices, device })
            command.Options.Add(o);
        math.AddTo(command);
        command.SetAction(parsed =>
        {
            if (parsed.GetValue(outputDir) is { } folder)
            {
                if (parsed.GetValue(output) is not null || parsed.GetValue(probabilities) is not null)
                    throw new BadInputException("--output and --probabilities name one image's outputs; with --output-dir the names follow the inputs, so drop them.");
                var share = parsed.GetValue(shard) is { } text ? Shard.Parse(text) : Shard.All;
                return RunCohort(parsed.GetValue(model)!, parsed.GetValue(input)!, folder, share, parsed.GetValue(skipExisting),
                    parsed.GetValue(batchSlices), parsed.GetValue(device)!, parsed.InvocationConfiguration.Output, parsed.InvocationConfiguration.Error, math.Read(parsed));
            }
            if (parsed.GetValue(shard) is not null || parsed.GetResult(skipExisting) is { Implicit: false })
                throw new BadInputException("--shard and --skip-existing apply to a cohort; add --output-dir OUT.");
            if (CohortInputs.NamesMany(parsed.GetValue(input)!))
                throw new BadInputException($"--input {parsed.GetValue(input)} names many images; add --output-dir OUT for their label maps.");
            if (parsed.GetValue(output) is null)
                throw new BadInputException("Option '--output' is required for a single image (or give --output-dir for a cohort).");
            Run(parsed.GetValue(model)!, parsed.GetValue(input)!, parsed.GetValue(output)!, parsed.GetValue(probabilities),
                parsed.GetValue(batchSlices), parsed.GetValue(device)!, parsed.InvocationConfiguration.Output, math.Read(parsed));
            return ExitCodes.Success;
        });
        return command;
    }

    internal static void Run(string modelPath, string inputPath, string outputPath, string? probabilitiesPath, int batchSlices, string device, TextWriter stdout,
        GpuMath? gpuMath = null)
    {
        // Names and places of the outputs are checked before the work starts.
        NiftiWriter.CheckName(outputPath);
        if (probabilitiesPath is not null) NiftiWriter.CheckName(probabilitiesPath);
        OutputGuard.Check([modelPath, inputPath], [outputPath, probabilitiesPath]);
        // The model's metadata is checked before the image is decoded or a device opened.
        CheckpointMetadata.Read(SafeTensors.ReadMetadata(modelPath), modelPath);
        MriImage source = ImageReader.Read(inputPath);
        Volume image = source.GetVolume();
        InputWarnings.NonFinite(inputPath, image.Voxels);
        using var backend = Devices.Open(device, gpuMath);
        using var loaded = SegmentationModel.Load(backend, modelPath);
        stdout.WriteLine($"Segmenting {inputPath} ({string.Join("x", image.Shape)}) with the {loaded.Network.Title} on {backend.Name}, {loaded.Plane.ToString().ToLowerInvariant()} slices.");
        int lastPercent = -1;
        var result = VolumeSegmenter.Segment(loaded, image, batchSlices, probabilitiesPath is not null, (done, total) =>
        {
            int percent = done * 100 / total;
            if (percent / 10 == lastPercent / 10 && done < total) return;
            lastPercent = percent;
            stdout.WriteLine($"  {done}/{total} slices ({percent}%)");
        });

        var header = ClassNamesMetadata.Attach(source.Header, loaded.ClassNames);
        NiftiWriter.WriteLabelMap<byte>(outputPath, header, result.Classes);
        if (probabilitiesPath is not null)
        {
            var probabilityHeader = source.Header.Clone();
            probabilityHeader.Dim = [4, image.SizeX, image.SizeY, image.SizeZ, result.ClassCount, 1, 1, 1];
            probabilityHeader.DataType = NiftiDataType.Float32;
            probabilityHeader.SclSlope = 1;
            probabilityHeader.SclInter = 0;
            probabilityHeader.Description = "brainseg class probabilities: " + string.Join(",", loaded.ClassNames);
            if (probabilityHeader.Description.Length > 79) probabilityHeader.Description = probabilityHeader.Description[..79];
            NiftiWriter.Write(probabilitiesPath, probabilityHeader, MemoryMarshal.AsBytes(result.Probabilities.AsSpan()));
        }
        stdout.WriteLine($"Wrote {outputPath}: classes " + string.Join(", ", loaded.ClassNames.Select((n, i) => $"{i} {n}")));
        if (probabilitiesPath is not null) stdout.WriteLine($"Wrote {probabilitiesPath}: {result.ClassCount} probability volumes");
    }

    /// <summary>Segments the share <paramref name="shard"/> of a cohort; exit 1 when any image failed, after all the others.</summary>
    internal static int RunCohort(string modelPath, string input, string outputFolder, Shard shard, bool skipExisting, int batchSlices,
        string device, TextWriter stdout, TextWriter stderr, GpuMath? gpuMath = null)
    {
        var cohort = CohortInputs.Discover(input, exclude: outputFolder);
        var jobs = CohortSegmenter.Plan(cohort, outputFolder, shard, skipExisting);
        string summaryPath = Path.Combine(outputFolder, CohortSegmenter.SummaryName(shard));
        using var backend = Devices.Open(device, gpuMath);
        using var loaded = SegmentationModel.Load(backend, modelPath);
        stdout.WriteLine($"Segmenting {jobs.Count} of {cohort.Count} images (shard {shard}) with the {loaded.Network.Title} on {backend.Name}, " +
                         $"{loaded.Plane.ToString().ToLowerInvariant()} slices, into {outputFolder}; {jobs.Count(j => j.Skip)} done before.");
        var rows = new List<CohortRow>();
        try
        {
            CohortSegmenter.Run(loaded, jobs, batchSlices, CliHost.IsUserError, row =>
            {
                rows.Add(row);
                string what = row.Status switch
                {
                    CohortStatus.Done => FormattableString.Invariant($"{row.Output} ({row.SegmentSeconds:F1} s)"),
                    CohortStatus.Skipped => $"{row.Output} exists",
                    _ => row.Message,
                };
                stdout.WriteLine($"  [{rows.Count}/{jobs.Count}] {row.Status.ToString().ToLowerInvariant()} {row.Input}: {what}");
            });
        }
        finally
        {
            // Written even when a defect ends the run early, so that the rows so far are kept.
            AtomicFile.WriteAllText(summaryPath, CohortSegmenter.SummaryCsv(loaded.ClassNames, jobs, rows, earlierSummary: summaryPath));
        }
        var failed = rows.Where(r => r.Status == CohortStatus.Failed).ToList();
        stdout.WriteLine($"{rows.Count(r => r.Status == CohortStatus.Done)} segmented, {rows.Count(r => r.Status == CohortStatus.Skipped)} skipped, {failed.Count} failed; summary {summaryPath}");
        if (failed.Count == 0) return ExitCodes.Success;
        stderr.WriteLine($"brainseg: {failed.Count} of {jobs.Count} images failed (run the same command again to retry them; finished label maps are skipped):");
        foreach (var r in failed)
            stderr.WriteLine($"  {r.Input}: {r.Message}");
        return ExitCodes.Failure;
    }
}
