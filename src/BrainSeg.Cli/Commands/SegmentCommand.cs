using System.CommandLine;
using System.Runtime.InteropServices;
using BrainSeg.Cli.Common;
using BrainSeg.Mri.IO;
using BrainSeg.Mri;
using BrainSeg.Seg.Checkpoints;
using BrainSeg.Seg.Inference;

namespace BrainSeg.Cli.Commands;

/// <summary>`brainseg segment --model RUN_DIR/model.safetensors --input T1 --output seg.nii.gz [--probabilities] [--device] [--batch-slices]`.</summary>
internal static class SegmentCommand
{
    /// <summary>The most slices one forward pass takes.</summary>
    public const int MaxBatchSlices = 4096;

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "RUN_DIR/model.safetensors written by 'brainseg train'", Required = true };
        var input = new Option<string>("--input", "-i") { Description = "T1-weighted image: NIfTI (.nii, .nii.gz) or MGH/MGZ", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "Label map to write (.nii or .nii.gz): the model's class numbers on the input's grid", Required = true };
        var probabilities = new Option<string?>("--probabilities") { Description = "Also write the class probabilities as a 4-D float32 NIfTI (one volume per class)" };
        var batchSlices = Opt.Int("--batch-slices", "Slices per forward pass (memory grows with it)", 1, MaxBatchSlices, 8);
        var device = DeviceOption.Create();
        var command = new Command("segment", "Segment a whole image slice by slice with a trained network");
        foreach (Option o in new Option[] { model, input, output, probabilities, batchSlices, device })
            command.Options.Add(o);
        command.SetAction(parsed =>
        {
            Run(parsed.GetValue(model)!, parsed.GetValue(input)!, parsed.GetValue(output)!, parsed.GetValue(probabilities),
                parsed.GetValue(batchSlices), parsed.GetValue(device)!, parsed.InvocationConfiguration.Output);
            return ExitCodes.Success;
        });
        return command;
    }

    internal static void Run(string modelPath, string inputPath, string outputPath, string? probabilitiesPath, int batchSlices, string device, TextWriter stdout)
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
        using var backend = Devices.Open(device);
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
}
