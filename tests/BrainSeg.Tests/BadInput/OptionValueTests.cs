using BrainSeg.Cli.Common;
using BrainSeg.Tests.Training;
using NUnit.Framework;

namespace BrainSeg.Tests.BadInput;

/// <summary>
/// Every numeric option of every verb, given a word, a negative number, zero, a value past its stated range,
/// infinity, NaN, or twice: one line and exit 2, naming the option when the value is bad; the in-range
/// values (a zero where zero is allowed) reach the missing input that each base command names and stop there.
/// </summary>
public class OptionValueTests
{
    static readonly string Missing = Path.Combine(Path.GetTempPath(), "brainseg-missing-" + Guid.NewGuid().ToString("N"));

    static string M(string name) => Path.Combine(Missing, name);

    /// <summary>Commands that parse, then stop at a missing file (or, for model and bench, finish in a moment).</summary>
    static readonly Dictionary<string, string[]> Base = new()
    {
        ["train"] = ["train", "--data", M("t1.nii.gz"), "--labels", M("labels.nii.gz"), "--label-map", "freesurfer-to-adult6", "--out", M("run"), "--device", "cpu"],
        ["segment"] = ["segment", "--model", M("model.safetensors"), "-i", M("t1.nii.gz"), "-o", M("seg.nii.gz"), "--device", "cpu"],
        ["experiment"] = ["experiment", "--train", M("a.nii.gz") + ":" + M("b.nii.gz"), "--label-map", "freesurfer-to-adult6", "--out", M("exp"), "--device", "cpu"],
        ["demo"] = ["demo", "--data", M("a.nii.gz") + ":" + M("b.nii.gz"), "--label-map", "freesurfer-to-adult6", "--out", M("demo"), "--device", "cpu"],
        ["bench"] = ["bench", "--device", "cpu", "--step", "batchnorm", "--batch", "1", "--reps", "1", "--warmup", "0", "--time-limit", "2", "--json"],
        ["model"] = ["model", "--net", "fcn"],
    };

    /// <summary>verb, option, smallest value, a value just past the largest.</summary>
    static readonly object[] Numeric =
    [
        new object[] { "train", "--epochs", 1, "100001" },
        new object[] { "train", "--patches-per-class", 1, "10000001" },
        new object[] { "train", "--batch", 1, "100001" },
        new object[] { "train", "--lr-seg", 1e-300, "10.5" },
        new object[] { "train", "--lr-disc", 1e-300, "11" },
        new object[] { "train", "--lr-seg-adversarial", 0, "1e300" },  // 0 is the control arm
        new object[] { "train", "--seed", 0, "18446744073709551616" },
        new object[] { "train", "--threads", 0, "257" },
        new object[] { "train", "--log-every", 1, "10000001" },
        new object[] { "train", "--checkpoint-minutes", 1e-300, "1e300" },
        new object[] { "segment", "--batch-slices", 1, "4097" },
        new object[] { "experiment", "--epochs", 1, "100001" },
        new object[] { "experiment", "--patches-per-class", 1, "99999999999" },
        new object[] { "experiment", "--batch", 3, "100002" },
        new object[] { "experiment", "--seed", 0, "-0.5" },
        new object[] { "demo", "--epochs", 1, "100001" },
        new object[] { "demo", "--batch", 3, "2147483648" },
        new object[] { "bench", "--batch", 1, "100001" },
        new object[] { "bench", "--reps", 1, "100001" },
        new object[] { "bench", "--warmup", 0, "100001" },
        new object[] { "bench", "--classes", 2, "257" },
        new object[] { "bench", "--volume", 1, "1025" },
        new object[] { "bench", "--dilation", 1, "17" },
        new object[] { "bench", "--time-limit", 0, "86401" },
        new object[] { "model", "--classes", 2, "257" },
    ];

    [TestCaseSource(nameof(Numeric))]
    public void ABadValueIsOneLineAndExit2NamingTheOption(string verb, string option, double min, string pastRange)
    {
        string[] values = ["abc", "-1", "0", pastRange, "inf", "nan", "1,5", ""];
        foreach (string value in values)
        {
            string[] args = [.. WithoutOption(Base[verb], option), option, value];
            if (value == "0" && min <= 0)
                AssertEndsCleanly(args);
            else
                Cli.Refused(args, option);
        }
        Cli.Refused([.. WithoutOption(Base[verb], option), option, "3", option, "6"], option);
    }

    [TestCase("train", "--plane", "axial, coronal, sagittal")]
    [TestCase("train", "--net", "fcn, dilated")]
    [TestCase("experiment", "--plane", "axial, coronal, sagittal")]
    [TestCase("experiment", "--connectivity", "6, 18, 26")]
    [TestCase("bench", "--step", "fcn, dilated, adversarial, segment, cohort, conv, batchnorm")]
    [TestCase("bench", "--graphs", "on, off")]
    [TestCase("model", "--net", "fcn, dilated, disc")]
    public void AnUnknownChoiceIsOneLineListingTheAcceptedValues(string verb, string option, string accepted)
    {
        Cli.Refused([.. WithoutOption(Base[verb], option), option, "bogus"], option, "bogus", accepted);
    }

    [Test]
    public void EvaluateConnectivityListsItsValues() =>
        Cli.Refused(["evaluate", "--pred", M("p.nii.gz"), "--ref", M("r.nii.gz"), "--connectivity", "7"], "--connectivity", "6, 18, 26");

    [Test]
    public void AnUnknownVerbOrOptionIsOneLine()
    {
        Cli.Refused(["no-such-verb"], "no-such-verb");
        Cli.Refused([.. Base["segment"], "--no-such-option"], "--no-such-option");
    }

    [Test]
    public void GraphsAreRefusedWhereNoStepCanBeCaptured()
    {
        string[] bench = ["bench", "--batch", "1", "--reps", "1", "--warmup", "0"];
        Cli.Refused([.. bench, "--device", "cpu", "--step", "fcn", "--graphs", "on"], "--graphs on", "CUDA");
        Cli.Refused([.. bench, "--device", "cpu", "--step", "segment", "--graphs", "on"], "--graphs on", "fcn, dilated and adversarial");
        Cli.Refused([.. bench, "--device", "cpu", "--step", "fcn", "--graphs", "on", "--profile"], "--profile", "--graphs on");
    }

    [Test]
    public void ThreadsForAGpuAreRefusedNotIgnored() =>
        Cli.Refused([.. WithoutOption(Base["train"], "--device"), "--device", "cuda", "--threads", "4"], "--threads", "--device cpu");

    [Test]
    public void DemoWithoutDataRefusesTheOptionsOnlyDataUses()
    {
        using var folder = new RunFolder();
        Cli.Refused(["demo", "--out", folder.File("demo"), "--exclude-slices", "3:5"], "--exclude-slices", "--data");
        Cli.Refused(["demo", "--out", folder.File("demo"), "--label-map", "freesurfer-to-adult6"], "--label-map", "--data");
        Assert.That(Directory.Exists(folder.File("demo")), Is.False, "nothing is written before the refusal");
    }

    /// <summary>An in-range value: the command goes on and stops at the missing input (2), or finishes (0).</summary>
    static void AssertEndsCleanly(string[] args)
    {
        var (code, error, _) = Cli.Run(args);
        Assert.That(code, Is.EqualTo(ExitCodes.Success).Or.EqualTo(ExitCodes.UsageError), error);
        if (code == ExitCodes.UsageError)
            Assert.That(error.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(1), error);
    }

    /// <summary>The base command without <paramref name="option"/> and its value, so the option under test is given once.</summary>
    static string[] WithoutOption(string[] args, string option)
    {
        var list = args.ToList();
        int at = list.IndexOf(option);
        if (at >= 0) list.RemoveRange(at, 2);
        return [.. list];
    }
}
