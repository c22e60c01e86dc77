using BrainSeg.Cli;
using BrainSeg.Cli.Common;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.IO;
using NUnit.Framework;

namespace BrainSeg.Tests.BadInput;

/// <summary>Runs brainseg in-process and checks the error contract: the exit code, and exactly one line on stderr.</summary>
internal static class Cli
{
    public static (int Code, string Error, string Output) Run(params string[] args)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        int code = CliHost.Run(Program.CreateRoot(), args, stdout, stderr);
        return (code, stderr.ToString(), stdout.ToString());
    }

    /// <summary>Exit 2 with one line "brainseg: error: ..." that contains every one of <paramref name="named"/>.</summary>
    public static string Refused(string[] args, params string[] named)
    {
        var (code, error, _) = Run(args);
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(ExitCodes.UsageError), $"brainseg {string.Join(' ', args)}\n{error}");
            Assert.That(lines, Has.Length.EqualTo(1), $"brainseg {string.Join(' ', args)}: one line expected\n{error}");
            Assert.That(error, Does.StartWith("brainseg: error: "));
            foreach (string n in named) Assert.That(error, Does.Contain(n));
        });
        return error;
    }

    /// <summary>A small float32 NIfTI image (4×4×4 by default) with an identity affine.</summary>
    public static void WriteImage(string path, float[]? voxels = null, int size = 4)
    {
        voxels ??= Enumerable.Range(0, size * size * size).Select(i => (float)(i % 7)).ToArray();
        var header = new NiftiHeader { DataType = NiftiDataType.Float32, Dim = [3, size, size, size, 1, 1, 1, 1] };
        header.SetAffine(Affine.FromRows([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]), sformCode: 2, qformCode: 0);
        NiftiWriter.Write<float>(path, header, voxels);
    }
}
