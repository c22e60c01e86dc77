using BrainSeg.Cli;
using BrainSeg.Cli.Common;
using BrainSeg.Seg.Training;
using BrainSeg.Tests.Mri;
using BrainSeg.Tests.Training;
using NUnit.Framework;

namespace BrainSeg.Tests.Cohort;

/// <summary>`brainseg segment --input DIR --output-dir OUT`: exit codes, the summary, shards and reruns, end to end.</summary>
public class SegmentCohortCommandTests
{
    static readonly Lazy<string> Model = new(() =>
    {
        // An untrained FCN as 'brainseg train' would save it: the command loads the real network from the file.
        string path = Path.Combine(Path.GetTempPath(), $"brainseg-cohort-model-{Environment.ProcessId}.safetensors");
        using var trainer = new Trainer(TrainingFixtures.Host, TrainingFixtures.Phantom(), new TrainingOptions { Network = NetworkKind.Fcn, Seed = 3 });
        trainer.SaveCheckpoint(path);
        return path;
    });

    [OneTimeTearDown]
    public void RemoveTheModel()
    {
        if (Model.IsValueCreated) File.Delete(Model.Value);
    }

    static (int Code, string Out, string Error) Segment(params string[] args)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        int code = CliHost.Run(Program.CreateRoot(), ["segment", "--device", "cpu", .. args], stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    static string[] SummaryLines(string path) => File.ReadAllLines(path);

    [Test]
    public void AFailingInputExits1WithTheListAfterTheOthersAreWrittenAndARerunSkipsThem()
    {
        using var folder = new TempFolder();
        CohortFixtures.WriteImage(folder.File("in"), "s1.nii.gz", 10, 9, 2);
        CohortFixtures.WriteBroken(folder.File("in"), "s2.nii.gz");
        CohortFixtures.WriteImage(folder.File("in"), "s3/t1.nii", 10, 9, 2);

        var (code, output, error) = Segment("--model", Model.Value, "--input", folder.File("in"), "--output-dir", folder.File("out"));
        Assert.That(code, Is.EqualTo(ExitCodes.Failure), output + error);
        Assert.That(error, Does.Contain("1 of 3 images failed").And.Contain("s2.nii.gz"));
        Assert.That(File.Exists(folder.File("out/s1.nii.gz")) && File.Exists(folder.File("out/s3/t1.nii")));
        var summary = SummaryLines(folder.File("out/summary.csv"));
        Assert.That(summary[0], Does.StartWith("input,output,status,read_seconds,segment_seconds,write_seconds,background_ml,"));
        Assert.That(summary.Skip(1).Select(l => l.Split(',')[2]), Is.EqualTo(new[] { "done", "failed", "done" }));

        File.Delete(folder.File("in/s2.nii.gz"));
        (code, output, error) = Segment("--model", Model.Value, "--input", folder.File("in"), "--output-dir", folder.File("out"));
        Assert.That(code, Is.EqualTo(ExitCodes.Success), output + error);
        Assert.That(output, Does.Contain("0 segmented, 2 skipped, 0 failed"));
        var rerun = SummaryLines(folder.File("out/summary.csv"));
        Assert.That(rerun.Skip(1).Select(l => l.Split(',')[2]), Is.EqualTo(new[] { "skipped", "skipped" }));
        Assert.That(rerun[1].Split(',')[3..7], Is.EqualTo(summary[1].Split(',')[3..7]), "a skipped image keeps the times and volumes of the run that segmented it");
        Assert.That(rerun[1].Split(',')[6], Is.Not.Empty);
    }

    [Test]
    public void ShardsRunAsSeparateProcessesCoverTheCohortOnce()
    {
        using var folder = new TempFolder();
        for (int i = 0; i < 5; i++) CohortFixtures.WriteImage(folder.File("in"), $"s{i}.nii.gz", 8, 8, 1);
        var written = new List<string>();
        for (int shard = 0; shard < 2; shard++)
        {
            var (code, output, error) = Segment("--model", Model.Value, "--input", folder.File("in") + "/*.nii.gz", "--output-dir", folder.File("out"), "--shard", $"{shard}/2");
            Assert.That(code, Is.EqualTo(ExitCodes.Success), output + error);
            written.AddRange(SummaryLines(folder.File($"out/summary-shard-{shard}-of-2.csv")).Skip(1).Select(l => Path.GetFileName(l.Split(',')[0])));
        }
        Assert.That(written, Is.EqualTo(new[] { "s0.nii.gz", "s2.nii.gz", "s4.nii.gz", "s1.nii.gz", "s3.nii.gz" }));
        Assert.That(Directory.GetFiles(folder.File("out"), "*.nii.gz").Length, Is.EqualTo(5));
    }

    [TestCase("--shard", "2/2", "--shard")]
    [TestCase("--output", "x.nii.gz", "--output")]
    public void ABadCohortOptionExits2NamingIt(string option, string value, string named)
    {
        using var folder = new TempFolder();
        CohortFixtures.WriteBroken(folder.File("in"), "a.nii.gz");
        var (code, _, error) = Segment("--model", "no-model.safetensors", "--input", folder.File("in"), "--output-dir", folder.File("out"), option, value);
        Assert.That(code, Is.EqualTo(ExitCodes.UsageError), error);
        Assert.That(error, Does.StartWith("brainseg: error:").And.Contain(named));
        Assert.That(Directory.Exists(folder.File("out")), Is.False, "nothing written");
    }

    [Test]
    public void AnOutputFolderThatIsTheInputFolderExits2AndWritesNothing()
    {
        using var folder = new TempFolder();
        CohortFixtures.WriteImage(folder.Path, "a.nii.gz");
        var before = CohortFixtures.Snapshot(folder.Path);
        var (code, _, error) = Segment("--model", Model.Value, "--input", folder.Path, "--output-dir", folder.Path);
        Assert.That(code, Is.EqualTo(ExitCodes.UsageError), error);
        Assert.That(error, Does.Contain("inputs are never overwritten"));
        Assert.That(CohortFixtures.Snapshot(folder.Path).Keys, Is.EquivalentTo(before.Keys));
    }

    [Test]
    public void AFolderWithoutOutputDirExits2SayingSo()
    {
        using var folder = new TempFolder();
        var (code, _, error) = Segment("--model", "m.safetensors", "--input", folder.Path, "--output", folder.File("x.nii.gz"));
        Assert.That(code, Is.EqualTo(ExitCodes.UsageError));
        Assert.That(error, Does.Contain("--output-dir"));
    }

    [TestCase("--shard", "0/2")]
    [TestCase("--skip-existing", "false")]
    public void ACohortOptionWithoutOutputDirExits2SayingSo(string option, string value)
    {
        var (code, _, error) = Segment("--model", "m.safetensors", "--input", "t1.nii.gz", "--output", "seg.nii.gz", option, value);
        Assert.That(code, Is.EqualTo(ExitCodes.UsageError));
        Assert.That(error, Does.Contain(option).And.Contain("--output-dir"));
    }

    [Test]
    public void TheSingleImageFormWritesTheNamedOutputAndNothingElse()
    {
        using var folder = new TempFolder();
        string image = CohortFixtures.WriteImage(folder.File("in"), "t1.nii.gz", 10, 9, 2);
        Directory.CreateDirectory(folder.File("seg"));
        var (code, output, error) = Segment("--model", Model.Value, "--input", image, "--output", folder.File("seg/labels.nii"));
        Assert.That(code, Is.EqualTo(ExitCodes.Success), error);
        Assert.That(output, Does.Contain("Wrote " + folder.File("seg/labels.nii")));
        Assert.That(Directory.GetFiles(folder.File("seg")), Is.EqualTo(new[] { folder.File("seg/labels.nii") }), "no summary for one image");
    }

    [Test]
    public void TheSingleImageFormStillNeedsOutput()
    {
        var (code, _, error) = Segment("--model", "m.safetensors", "--input", "t1.nii.gz");
        Assert.That(code, Is.EqualTo(ExitCodes.UsageError));
        Assert.That(error, Does.Contain("'--output' is required"));
    }
}
