using BrainSeg.Cli;
using BrainSeg.Cli.Common;
using BrainSeg.Mri.IO;
using BrainSeg.Seg.Evaluation;
using BrainSeg.Seg.Inference;
using BrainSeg.Seg.Statistics;
using BrainSeg.Tests.Mri;
using NUnit.Framework;

namespace BrainSeg.Tests.Cohort;

/// <summary>`evaluate --pred DIR --ref DIR`: pairs matched by name, per-image rows, mean ± sd per class, and `compare` reading the result.</summary>
public class CohortEvaluationTests
{
    static readonly string[] Classes = ["background", "WM", "GM"];

    /// <summary>A 6×5×4 label map of three classes; <paramref name="flips"/> voxels changed from the reference pattern.</summary>
    static void WriteLabels(string path, int flips, int seed = 0)
    {
        var labels = new byte[6 * 5 * 4];
        for (int i = 0; i < labels.Length; i++) labels[i] = (byte)(i % 7 < 3 ? 0 : i % 7 < 5 ? 1 : 2);
        var random = new Random(seed);
        for (int k = 0; k < flips; k++) labels[random.Next(labels.Length)] = (byte)random.Next(3);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var header = ClassNamesMetadata.Attach(new NiftiHeader { Dim = [3, 6, 5, 4, 1, 1, 1, 1], PixDim = [1, 2, 2, 2, 1, 1, 1, 1] }, Classes);
        NiftiWriter.WriteLabelMap<byte>(path, header, labels);
    }

    static (int Code, string Out, string Error) Cli(params string[] args)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        int code = CliHost.Run(Program.CreateRoot(), args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    static bool AnyError(Exception e) => e is InvalidDataException or IOException or ArgumentException or BrainSeg.Mri.ImageFormatException;

    [Test]
    public void PairsAreMatchedByNameAndTheSummaryIsTheMeanAndSdOfTheImages()
    {
        using var folder = new TempFolder();
        foreach (var n in new[] { "s1.nii", "sub/s2.nii.gz", "s3.nii.gz", "s4.nii.gz" }) WriteLabels(folder.File("ref/" + n), 0);
        WriteLabels(folder.File("pred/s1.nii.gz"), 10, 1);
        WriteLabels(folder.File("pred/sub/s2.nii.gz"), 25, 2);
        WriteLabels(folder.File("pred/s3.nii"), 40, 3);
        WriteLabels(folder.File("pred/s5.nii.gz"), 5, 4);

        var cohort = CohortEvaluation.Evaluate(folder.File("pred"), folder.File("ref"), null, 6, AnyError);
        Assert.That(cohort.Images.Select(i => i.Name), Is.EqualTo(new[] { "s1", "s3", "sub/s2" }));
        Assert.That(cohort.Failures.Select(f => f.Name), Is.EqualTo(new[] { "s5" }));
        Assert.That(cohort.Failures[0].Message, Does.Contain("no reference"));
        Assert.That(cohort.UnmatchedReferences, Is.EqualTo(new[] { "s4" }));

        var single = SegmentationEvaluation.EvaluateFiles(folder.File("pred/s3.nii"), folder.File("ref/s3.nii.gz"), null, 6);
        Assert.That(cohort.Images[1].Scores.Classes.Select(c => c.Dice), Is.EqualTo(single.Classes.Select(c => c.Dice)));
        var wmDice = cohort.Images.Select(i => i.Scores.Classes[1].Dice).ToArray();
        Assert.That(wmDice.Distinct().Count(), Is.EqualTo(3), "the images differ, so the sd means something");
        var summary = cohort.Summary().ToDictionary(m => m.Measure, m => m.Value);
        Assert.That(summary["Dice WM"], Is.EqualTo(MeanSd.Of(wmDice)));
        Assert.That(summary["volume mL reference GM"].Sd, Is.Zero, "every reference is the same map");
        Assert.That(summary["volume mL reference GM"].Mean, Is.EqualTo(cohort.Images[0].Scores.Classes[2].ReferenceVolumeMl));
        Assert.That(summary["mean Dice"].Count, Is.EqualTo(3));

        var rows = cohort.ImagesCsv().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(rows[0], Does.StartWith("image,prediction,reference,mean_dice,components_predicted,components_reference,dice_background,"));
        Assert.That(rows.Length, Is.EqualTo(4));
        Assert.That(cohort.SummaryCsv().Split('\n')[0].TrimEnd('\r'), Is.EqualTo("measure,images,mean,sd"));
    }

    [Test]
    public void TheCohortJsonReadsBackImageByImage()
    {
        using var folder = new TempFolder();
        foreach (var n in new[] { "a", "b" })
        {
            WriteLabels(folder.File($"ref/{n}.nii.gz"), 0);
            WriteLabels(folder.File($"pred/{n}.nii.gz"), 20, n[0]);
        }
        var cohort = CohortEvaluation.Evaluate(folder.File("pred"), folder.File("ref"), null, 26, AnyError);
        string json = cohort.ToJson();
        Assert.That(CohortEvaluation.IsCohort(json));
        var read = CohortEvaluation.ReadImages(json, "cohort.json");
        Assert.That(read.Select(i => i.Name), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(read.Select(i => i.Scores.ToJson()), Is.EqualTo(cohort.Images.Select(i => i.Scores.ToJson())));
    }

    [Test]
    public void EvaluateOnFoldersWritesTheFilesAndCompareReadsTheJsonDirectly()
    {
        using var folder = new TempFolder();
        for (int i = 0; i < 4; i++)
        {
            WriteLabels(folder.File($"ref/s{i}.nii.gz"), 0);
            WriteLabels(folder.File($"a/s{i}.nii.gz"), 30 + i, i);
            WriteLabels(folder.File($"b/s{i}.nii.gz"), 5 + i, 10 + i);
        }
        foreach (var method in new[] { "a", "b" })
        {
            var (code, output, error) = Cli("evaluate", "--pred", folder.File(method), "--ref", folder.File("ref"),
                "--json", folder.File($"{method}.json"), "--csv", folder.File($"{method}-images.csv"), "--summary-csv", folder.File($"{method}-summary.csv"));
            Assert.That(code, Is.EqualTo(ExitCodes.Success), error);
            Assert.That(output, Does.Contain("4 images scored, 0 failed"));
            Assert.That(File.ReadAllLines(folder.File($"{method}-images.csv")).Length, Is.EqualTo(5));
            Assert.That(File.ReadAllText(folder.File($"{method}-summary.csv")), Does.Contain("Dice WM,4,"));
        }
        var compared = Cli("compare", folder.File("a.json"), "--vs", folder.File("b.json"), "--names", "noisy,clean");
        Assert.That(compared.Code, Is.EqualTo(ExitCodes.Success), compared.Error);
        Assert.That(compared.Out, Does.Contain("4 images"));

        File.Delete(folder.File("b/s3.nii.gz"));
        var missing = Cli("evaluate", "--pred", folder.File("b"), "--ref", folder.File("ref"), "--json", folder.File("b.json"));
        Assert.That(missing.Code, Is.EqualTo(ExitCodes.Success), "a reference without a prediction is only reported");
        var mismatched = Cli("compare", folder.File("a.json"), "--vs", folder.File("b.json"));
        Assert.That(mismatched.Code, Is.EqualTo(ExitCodes.UsageError));
        Assert.That(mismatched.Error, Does.Contain("different images").And.Contain("s3"));
    }

    [Test]
    public void APredictionWithoutAReferenceExits1WithTheList()
    {
        using var folder = new TempFolder();
        WriteLabels(folder.File("ref/a.nii.gz"), 0);
        WriteLabels(folder.File("pred/a.nii.gz"), 3);
        WriteLabels(folder.File("pred/extra.nii.gz"), 3);
        var (code, output, error) = Cli("evaluate", "--pred", folder.File("pred"), "--ref", folder.File("ref"));
        Assert.That(code, Is.EqualTo(ExitCodes.Failure), output + error);
        Assert.That(error, Does.Contain("extra").And.Contain("no reference"));
        Assert.That(output, Does.Contain("1 images scored, 1 failed"));
    }

    [Test]
    public void AFolderAgainstAFileExits2()
    {
        using var folder = new TempFolder();
        WriteLabels(folder.File("pred/a.nii.gz"), 3);
        WriteLabels(folder.File("ref.nii.gz"), 0);
        var (code, _, error) = Cli("evaluate", "--pred", folder.File("pred"), "--ref", folder.File("ref.nii.gz"));
        Assert.That(code, Is.EqualTo(ExitCodes.UsageError));
        Assert.That(error, Does.Contain("--ref").And.Contain("no such folder"));
    }
}
