using System.CommandLine;
using BrainSeg.Mri;
using BrainSeg.Mri.IO;

namespace BrainSeg.Cli.Commands;

/// <summary>`brainseg nifti-info PATH [--json]`: what the reader sees in an image file (NIfTI or MGH/MGZ).</summary>
internal static class NiftiInfoCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "Image file: .nii, .nii.gz, .hdr/.img (gzipped or not), .mgh or .mgz" };
        var json = new Option<bool>("--json") { Description = "Print JSON (shape, datatype, zooms, affine, sform_code, qform_code, scl_slope, scl_inter, sum, sumsq, min, max)" };
        var command = new Command("nifti-info", "Show an image's shape, datatype, voxel sizes, affine, scaling and value statistics");
        command.Arguments.Add(path);
        command.Options.Add(json);
        command.SetAction(parseResult =>
        {
            string file = parseResult.GetValue(path)!;
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            try
            {
                var info = ImageInfo.Read(file);
                output.WriteLine(parseResult.GetValue(json) ? info.ToJson() : info.ToText());
                return 0;
            }
            catch (ImageFormatException e)
            {
                // The same one-line form as every other verb's user errors.
                error.WriteLine($"brainseg: error: {e.Message}");
                return 2;
            }
        });
        return command;
    }
}
