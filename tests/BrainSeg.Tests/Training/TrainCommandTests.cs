using BrainSeg.Cli;
using BrainSeg.Cli.Common;
using NUnit.Framework;

namespace BrainSeg.Tests.Training;

/// <summary>`brainseg train` refuses bad requests with exit code 2 and a message naming the option, before any training.</summary>
public class TrainCommandTests
{
    private static (int Code, string Error) Run(params string[] args)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        var code = CliHost.Run(Program.CreateRoot(), ["train", .. args], stdout, stderr);
        return (code, stderr.ToString());
    }

    [TestCase("--epochs", "0", "--epochs")]
    [TestCase("--net", "resnet", "resnet")]
    [TestCase("--plane", "oblique", "oblique")]
    [TestCase("--lr-seg", "-1", "--lr-seg")]
    [TestCase("--patches-per-class", "0", "--patches-per-class")]
    [TestCase("--device", "tpu", "tpu")]
    [TestCase("--threads", "-2", "--threads")]
    [TestCase("--no-such-option", "1", "--no-such-option")]
    public void ABadOptionExits2NamingIt(string option, string value, string named)
    {
        using var run = new RunFolder();
        var (code, error) = Run("--data", "phantom", "--out", run.Path, option, value);
        Assert.That(code, Is.EqualTo(ExitCodes.UsageError), error);
        Assert.That(error, Does.Contain(named));
    }

    [Test]
    public void AnAdversarialBatchThatDoesNotSplitInThreeExits2()
    {
        using var run = new RunFolder();
        var (code, error) = Run("--data", "phantom", "--out", run.Path, "--adversarial", "--batch", "100");
        Assert.That(code, Is.EqualTo(ExitCodes.UsageError));
        Assert.That(error, Does.Contain("multiple of 3"));
    }

    [Test]
    public void MissingRequiredOptionsExit2()
    {
        Assert.That(Run("--data", "phantom").Error, Does.Contain("--out"));
        Assert.That(Run("--data", "phantom").Code, Is.EqualTo(ExitCodes.UsageError));
        using var run = new RunFolder();
        var (code, error) = Run("--data", "t1.nii.gz", "--out", run.Path);
        Assert.That(code, Is.EqualTo(ExitCodes.UsageError));
        Assert.That(error, Does.Contain("--label-map"));
        (code, error) = Run("--data", "t1.nii.gz", "--label-map", "freesurfer-to-adult6", "--out", run.Path);
        Assert.That(code, Is.EqualTo(ExitCodes.UsageError));
        Assert.That(error, Does.Contain("--labels"));
    }

    [Test]
    public void ResumeWithoutACheckpointExits2()
    {
        using var run = new RunFolder();
        var (code, error) = Run("--data", "phantom", "--out", run.Path, "--resume", "--device", "cpu");
        Assert.That(code, Is.EqualTo(ExitCodes.UsageError));
        Assert.That(error, Does.Contain("checkpoint.safetensors"));
    }

    [Test]
    public void AMissingImageExits2()
    {
        using var run = new RunFolder();
        var (code, error) = Run("--data", run.File("none.nii.gz"), "--labels", run.File("none-labels.nii.gz"),
            "--label-map", "freesurfer-to-adult6", "--out", run.File("out"), "--device", "cpu");
        Assert.That(code, Is.EqualTo(ExitCodes.UsageError), error);
        Assert.That(error, Does.Contain("none.nii.gz"));
    }
}
