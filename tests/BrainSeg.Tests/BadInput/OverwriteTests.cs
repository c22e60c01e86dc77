using BrainSeg.Mri;
using BrainSeg.Mri.IO;
using BrainSeg.Tests.Training;
using NUnit.Framework;

namespace BrainSeg.Tests.BadInput;

/// <summary>Outputs never touch inputs, however the output is named; every writing verb refuses before it works.</summary>
public class OverwriteTests
{
    [Test]
    public void SegmentThroughASymlinkedFolderRefusesToOverwriteTheInput()
    {
        using var folder = new RunFolder();
        string real = Directory.CreateDirectory(folder.File("real")).FullName;
        string input = Path.Combine(real, "t1.nii");
        Cli.WriteImage(input);
        byte[] before = File.ReadAllBytes(input);
        Directory.CreateSymbolicLink(folder.File("link"), real);

        Cli.Refused(["segment", "--model", folder.File("none.safetensors"), "-i", input, "-o", Path.Combine(folder.File("link"), "t1.nii"), "--device", "cpu"], "overwrite", "t1.nii");
        Assert.That(File.ReadAllBytes(input), Is.EqualTo(before));
    }

    [Test]
    public void AHardLinkOrDotDotNameIsTheSameFile()
    {
        using var folder = new RunFolder();
        string input = folder.File("t1.nii");
        Cli.WriteImage(input);
        Directory.CreateDirectory(folder.File("sub"));
        Assert.That(() => OutputGuard.Check([input], [Path.Combine(folder.Path, "sub", "..", "t1.nii")]), Throws.TypeOf<BadInputException>());
        if (!OperatingSystem.IsLinux()) return;
        File.CreateSymbolicLink(folder.File("alias.nii"), input);
        Assert.That(() => OutputGuard.Check([input], [folder.File("alias.nii")]), Throws.TypeOf<BadInputException>().With.Message.Contains("overwrite"));
        Assert.That(() => OutputGuard.Check([input], [folder.File("other.nii")]), Throws.Nothing);
    }

    [Test]
    public void SegmentToTheOtherFileOfTheInputPairIsRefused()
    {
        using var folder = new RunFolder();
        string header = folder.File("x.hdr");
        Cli.WriteImage(header);
        byte[] hdr = File.ReadAllBytes(header), img = File.ReadAllBytes(folder.File("x.img"));
        Cli.Refused(["segment", "--model", folder.File("none.safetensors"), "-i", header, "-o", folder.File("x.img"), "--device", "cpu"], "overwrite", ".hdr/.img pair");
        Cli.Refused(["segment", "--model", folder.File("none.safetensors"), "-i", folder.File("x.img"), "-o", folder.File("x.hdr.gz"), "--device", "cpu"], "overwrite");
        Assert.That(File.ReadAllBytes(header), Is.EqualTo(hdr));
        Assert.That(File.ReadAllBytes(folder.File("x.img")), Is.EqualTo(img));
    }

    [Test]
    public void EvaluateJsonOntoThePredictionIsRefused()
    {
        using var folder = new RunFolder();
        string pred = folder.File("p.nii");
        Cli.WriteImage(pred);
        byte[] before = File.ReadAllBytes(pred);
        Cli.Refused(["evaluate", "--pred", pred, "--ref", pred, "--json", pred], "overwrite", "p.nii");
        Assert.That(File.ReadAllBytes(pred), Is.EqualTo(before));
    }

    [Test]
    public void SegmentChecksTheOutputNamesBeforeTheWork()
    {
        using var folder = new RunFolder();
        string input = folder.File("t1.nii");
        Cli.WriteImage(input);
        // The model does not exist either: the output's name is what the one line must be about.
        Cli.Refused(["segment", "--model", folder.File("none.safetensors"), "-i", input, "-o", folder.File("out"), "--device", "cpu"], "out", ".nii.gz");
        Cli.Refused(["segment", "--model", folder.File("none.safetensors"), "-i", input, "-o", folder.File("a.nii"), "--probabilities", folder.File("a.nii"), "--device", "cpu"], "same file");
        Directory.CreateDirectory(folder.File("dir.nii"));
        Cli.Refused(["segment", "--model", folder.File("none.safetensors"), "-i", input, "-o", folder.File("dir.nii"), "--device", "cpu"], "folder");
        Cli.Refused(["segment", "--model", folder.File("none.safetensors"), "-i", input, "-o", Path.Combine(input, "seg.nii"), "--device", "cpu"], "is a file");
    }

    [Test]
    public void TrainRefusesARunFolderThatIsAFileOrWouldReplaceItsData()
    {
        using var folder = new RunFolder();
        string image = folder.File("t1.nii");
        Cli.WriteImage(image);
        Cli.Refused(["train", "--data", "phantom", "--out", image, "--device", "cpu"], "is a file");
        File.Copy(image, folder.File("model.safetensors"));
        Cli.Refused(["train", "--data", folder.File("model.safetensors"), "--labels", image, "--label-map", "freesurfer-to-adult6", "--out", folder.Path, "--device", "cpu",
            "--patches-per-class", "1"], "overwrite"); // without the check: refused later for too few patches, not trained for hours
    }

    [Test]
    public void CompareOutputsOntoItsInputsAreRefused()
    {
        using var folder = new RunFolder();
        string a = folder.File("a.json"), b = folder.File("b.json");
        File.WriteAllText(a, "{}");
        File.WriteAllText(b, "{}");
        Cli.Refused(["compare", a, "--vs", b, "--json", b], "overwrite", "b.json");
        Cli.Refused(["compare", a, "--vs", b, "--csv", a], "overwrite", "a.json");
        Assert.That(File.ReadAllText(a) + File.ReadAllText(b), Is.EqualTo("{}{}"));
    }
}
