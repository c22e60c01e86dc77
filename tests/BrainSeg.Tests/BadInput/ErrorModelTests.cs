using System.CommandLine;
using BrainSeg.Cli.Common;
using BrainSeg.Cuda;
using BrainSeg.Mri;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Seg.Reports;
using BrainSeg.Seg.Training;
using BrainSeg.Tests.Training;
using NUnit.Framework;
using static BrainSeg.Tests.Training.TrainingFixtures;

namespace BrainSeg.Tests.BadInput;

/// <summary>Exit codes say whose problem it is: 2 the request, 1 a failed result, 70 a defect of brainseg (with its stack trace).</summary>
public class ErrorModelTests
{
    [Test]
    public void ExitCodesFollowTheKindOfFailure()
    {
        Assert.Multiple(() =>
        {
            Assert.That(CliHost.ExitCodeOf(new BadInputException("x")), Is.EqualTo(ExitCodes.UsageError));
            Assert.That(CliHost.ExitCodeOf(new ImageFormatException("f", "p", "fix")), Is.EqualTo(ExitCodes.UsageError));
            Assert.That(CliHost.ExitCodeOf(new InvalidDataException("x")), Is.EqualTo(ExitCodes.UsageError));
            Assert.That(CliHost.ExitCodeOf(new FileNotFoundException("x")), Is.EqualTo(ExitCodes.UsageError));
            Assert.That(CliHost.ExitCodeOf(new CudaUnavailableException("x")), Is.EqualTo(ExitCodes.UsageError));
            Assert.That(CliHost.ExitCodeOf(new TrainingDivergedException("x")), Is.EqualTo(ExitCodes.Failure));
            Assert.That(CliHost.ExitCodeOf(new ArgumentException("x")), Is.EqualTo(ExitCodes.InternalError));
            Assert.That(CliHost.ExitCodeOf(new InvalidOperationException("x")), Is.EqualTo(ExitCodes.InternalError));
            Assert.That(CliHost.ExitCodeOf(new OverflowException("x")), Is.EqualTo(ExitCodes.InternalError));
            Assert.That(CliHost.ExitCodeOf(new CudaException("cuLaunchKernel failed: CUDA_ERROR_LAUNCH_FAILED")), Is.EqualTo(ExitCodes.InternalError));
        });
    }

    [Test]
    public void ADefectPrintsItsStackTraceAndARefusalOneLine()
    {
        static (int, string) Run(Exception e)
        {
            var root = new RootCommand();
            var verb = new Command("fail");
            verb.SetAction((Func<ParseResult, int>)(_ => throw e));
            root.Subcommands.Add(verb);
            var (stdout, stderr) = (new StringWriter(), new StringWriter());
            return (CliHost.Run(root, ["fail"], stdout, stderr), stderr.ToString());
        }
        var (code, error) = Run(new ArgumentException("an invariant broke"));
        Assert.That(code, Is.EqualTo(ExitCodes.InternalError));
        Assert.That(error, Does.StartWith("brainseg: internal error: ArgumentException: an invariant broke").And.Contain(" at "));
        (code, error) = Run(new BadInputException("the value is bad;\ngive another"));
        Assert.That(code, Is.EqualTo(ExitCodes.UsageError));
        Assert.That(error, Is.EqualTo("brainseg: error: the value is bad; give another" + Environment.NewLine));
        (code, error) = Run(new TrainingDivergedException("Ls became NaN"));
        Assert.That(code, Is.EqualTo(ExitCodes.Failure));
        Assert.That(error, Is.EqualTo("brainseg: failed: Ls became NaN" + Environment.NewLine));
    }

    [Test]
    public void StaleTemporariesOfKilledWritersAreRemovedAndLiveOnesKept()
    {
        using var folder = new RunFolder();
        string stale = folder.File($".checkpoint.safetensors.{int.MaxValue - 1}.{Guid.NewGuid():N}.tmp");
        string live = folder.File($".checkpoint.safetensors.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        string other = folder.File(".notes.tmp");
        foreach (string f in new[] { stale, live, other }) File.WriteAllText(f, "partial");
        Assert.That(AtomicFile.RemoveStale(folder.Path), Is.EqualTo(1));
        Assert.That(File.Exists(stale), Is.False);
        Assert.That(File.Exists(live) && File.Exists(other), Is.True);
    }

    [Test]
    public void ResumeRefusesOptionsThatCannotChange()
    {
        using var folder = new RunFolder();
        Cli.Refused(["train", "--data", "phantom", "--out", folder.Path, "--resume", "--batch", "6"], "--batch", "--resume");
        Cli.Refused(["train", "--data", "phantom", "--out", folder.Path, "--resume", "--net", "fcn"], "--net");
    }

    [Test]
    public void AResumedRunTakesMoreEpochs()
    {
        using var folder = new RunFolder();
        var options = new TrainingOptions { Batch = 6, PatchesPerClass = 6, Epochs = 1, DropoutP = 0 };
        using (var first = Tiny(options)) first.Run(folder.Path);
        string checkpoint = folder.File(Trainer.CheckpointFile);
        using (var done = Trainer.Resume(Host, Phantom(), checkpoint, null, TinyNetwork.Create))
            Assert.That(done.IsComplete, Is.True);
        using var more = Trainer.Resume(Host, Phantom(), checkpoint, null, TinyNetwork.Create, amend: o => o with { Epochs = 2 });
        Assert.That(more.IsComplete, Is.False);
        more.Run(folder.Path);
        Assert.That(more.Epoch, Is.EqualTo(2));
    }

    [Test]
    public void NonFiniteVoxelsAreCountedAndReadAsOutsideTheBrain()
    {
        float[] voxels = [0, 1, float.NaN, 2, float.PositiveInfinity, 3, float.NegativeInfinity, 4];
        var stderr = new StringWriter();
        Assert.That(InputWarnings.NonFinite("t1.nii", voxels, stderr), Is.EqualTo(3));
        Assert.That(stderr.ToString(), Does.Contain("t1.nii holds 3 NaN or infinite voxels"));
        var normalised = IntensityNormalisation.Default.Apply(voxels);
        Assert.That(normalised.All(float.IsFinite), Is.True);
        Assert.That(new[] { normalised[2], normalised[4], normalised[6] }, Is.All.EqualTo(0f));
        Assert.That(InputWarnings.NonFinite("ok.nii", [1f, 2f], stderr = new StringWriter()), Is.Zero);
        Assert.That(stderr.ToString(), Is.Empty);
    }
}
