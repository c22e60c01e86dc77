using BrainSeg.Cli.Commands;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Seg.Training;
using BrainSeg.Tests.Mri;
using NUnit.Framework;
using static BrainSeg.Tests.Training.TrainingFixtures;

namespace BrainSeg.Tests.Training;

/// <summary>The train verb's data path on the real FreeSurfer subject: read, map with the preset, normalise, sample, train.</summary>
public class RealDataTrainingTests
{
    [Test, Category("RealData")]
    public void SubjectFs1TrainsWithTheFreeSurferPreset()
    {
        var image = SharedData.Require("subject-fs1/t1.nii.gz");
        var labels = SharedData.Require("subject-fs1/aparc.a2009s+aseg.nii.gz");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (source, description) = BrainSeg.Seg.Data.TrainingData.Load(image, labels, "freesurfer-to-adult6", IntensityNormalisation.Default);
        TestContext.Out.WriteLine($"loaded in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.That(source.Classes, Is.EqualTo(7));
        Assert.That(description["class_names"], Is.EqualTo("background,WM,cGM,BGT,CB,BS,lvCSF"));

        // A few iterations of the small network on class-balanced patches of the real brain: Ls is finite and the
        // sampler hands out full minibatches of the requested size.
        using var trainer = Tiny(new TrainingOptions { Adversarial = true, Batch = 30, PatchesPerClass = 20, Seed = 2 }, source);
        Assert.That(source.PatchesPerEpoch(trainer.Request), Is.EqualTo(7 * 20));
        var losses = trainer.EpochBatches(0).Take(1).Select(trainer.Iterate).ToList();
        Assert.That(losses.Select(l => l.Segmentation), Is.All.GreaterThan(0).And.All.LessThan(10));
        Assert.That(losses.Select(l => l.Adversarial), Is.All.GreaterThan(0).And.All.LessThan(10));
    }
}
