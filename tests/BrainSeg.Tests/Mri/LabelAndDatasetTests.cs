using BrainSeg.Mri;
using BrainSeg.Mri.Datasets;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.IO;
using BrainSeg.Mri.Labels;
using BrainSeg.Mri.Normalisation;
using NUnit.Framework;

namespace BrainSeg.Tests.Mri;

public class LabelAndDatasetTests
{
    [Test]
    public void FreeSurferPresetGroupsLabelsIntoTheSixAdultClasses()
    {
        var table = LabelTable.Preset("freesurfer-to-adult6");
        Assert.That(table.ClassNames, Is.EqualTo(new[] { "background", "WM", "cGM", "BGT", "CB", "BS", "lvCSF" }));
        Assert.Multiple(() =>
        {
            Assert.That(table.ClassOf(2), Is.EqualTo(1), "left cerebral WM");
            Assert.That(table.ClassOf(253), Is.EqualTo(1), "corpus callosum range");
            Assert.That(table.ClassOf(11100), Is.EqualTo(2), "first a2009s parcel");
            Assert.That(table.ClassOf(12175), Is.EqualTo(2), "last a2009s parcel");
            Assert.That(table.ClassOf(12176), Is.EqualTo(0), "past the range");
            Assert.That(table.ClassOf(10), Is.EqualTo(3));
            Assert.That(table.ClassOf(47), Is.EqualTo(4));
            Assert.That(table.ClassOf(16), Is.EqualTo(5));
            Assert.That(table.ClassOf(4), Is.EqualTo(6));
            Assert.That(table.ClassOf(24), Is.EqualTo(0), "CSF is unlisted: background");
            Assert.That(table.ClassOf(-3), Is.EqualTo(0));
        });
    }

    [Test]
    public void PresetsMatchTheSharedTableAndTheChallengeDefinitions()
    {
        string shared = SharedData.Require("labelmaps/freesurfer-to-adult6.tsv");
        var fromFile = LabelTable.Load(shared);
        var preset = LabelTable.Preset("freesurfer-to-adult6");
        for (int label = 0; label < 13000; label++) Assert.That(preset.ClassOf(label), Is.EqualTo(fromFile.ClassOf(label)), $"label {label}");

        var mr = LabelTable.Preset("mrbrains13");
        Assert.That(mr.ClassNames, Is.EqualTo(new[] { "background", "WM", "cGM", "BGT", "CB", "BS", "lvCSF", "pCSF" }));
        Assert.That(Enumerable.Range(0, 10).Select(mr.ClassOf), Is.EqualTo(new[] { 0, 2, 3, 1, 1, 7, 6, 4, 5, 0 }));

        var miccai = LabelTable.Preset("miccai2012-to-adult6");
        Assert.That(miccai.ClassCount, Is.EqualTo(7));
        Assert.That(new[] { 45, 150, 59, 38, 35, 52, 4, 46 }.Select(miccai.ClassOf), Is.EqualTo(new[] { 1, 2, 3, 4, 5, 6, 0, 0 }));
    }

    [Test]
    public void TheRealLabelMapCoversEveryClass()
    {
        var labels = ImageReader.ReadVolume(SharedData.Require("subject-fs1/aparc.a2009s+aseg.nii.gz"));
        var classes = LabelTable.Preset("freesurfer-to-adult6").Apply(labels.Voxels);
        var counts = new long[7];
        foreach (byte c in classes) counts[c]++;
        Assert.That(counts, Has.All.GreaterThan(1000), string.Join(", ", counts));
        Assert.That(counts[1], Is.GreaterThan(counts[5]), "more white matter than brain stem");
    }

    [Test]
    public void BadTablesAndLabelsAreClearErrors()
    {
        const string header = "# classes, in output order: 0 background, 1 A, 2 B\n";
        Assert.That(Assert.Throws<ImageFormatException>(() => LabelTable.Parse(header + "3\tC\n", "t.tsv"))!.Message, Does.Contain("line 2").And.Contain("\"C\""));
        Assert.That(Assert.Throws<ImageFormatException>(() => LabelTable.Parse(header + "x-3\tA\n", "t.tsv"))!.Message, Does.Contain("inclusive range"));
        Assert.That(Assert.Throws<ImageFormatException>(() => LabelTable.Parse(header + "1-5\tA\n4\tB\n", "t.tsv"))!.Message, Does.Contain("overlap"));
        Assert.That(Assert.Throws<ImageFormatException>(() => LabelTable.Parse("1\tA\n", "t.tsv"))!.Message, Does.Contain("classes, in output order"));
        var table = LabelTable.Parse(header + "1-2\tA\n7\tB\n", "t.tsv");
        Assert.That(table.Apply([0, 1, 2, 7, 9]), Is.EqualTo(new byte[] { 0, 1, 1, 2, 0 }));
        Assert.That(Assert.Throws<ImageFormatException>(() => table.Apply([1.5f]))!.Message, Does.Contain("not a whole-number label"));
        Assert.Throws<BadInputException>(() => LabelTable.Preset("nope"));
    }

    private static void WriteVolume(string path, int n, Affine affine, float value)
    {
        var h = new NiftiHeader { Dim = [3, n, n, n, 1, 1, 1, 1] };
        h.SetAffine(affine);
        NiftiWriter.Write<float>(path, h, Enumerable.Repeat(value, n * n * n).ToArray());
    }

    [Test]
    public void DatasetLayoutsPairImagesWithLabels()
    {
        using var temp = new TempFolder();
        var affine = Affine.Diagonal(1, 1, 1);
        foreach (string n in new[] { "1", "2", "10" })
        {
            Directory.CreateDirectory(temp.File($"mr/TrainingData/{n}"));
            WriteVolume(temp.File($"mr/TrainingData/{n}/T1.nii"), 4, affine, 100);
            WriteVolume(temp.File($"mr/TrainingData/{n}/LabelsForTraining.nii"), 4, affine, 3);
        }
        var mr = DatasetLayout.MrBrainS13(temp.File("mr"));
        Assert.That(mr.Select(s => s.Id), Is.EqualTo(new[] { "1", "2", "10" }));
        var (image, labels) = DatasetLayout.Load(mr[0]);
        Assert.That(image.Voxels[0], Is.EqualTo(100));
        Assert.That(labels!.Voxels[0], Is.EqualTo(3));

        Directory.CreateDirectory(temp.File("miccai/training-images"));
        Directory.CreateDirectory(temp.File("miccai/training-labels"));
        WriteVolume(temp.File("miccai/training-images/1000_3.nii"), 4, affine, 1);
        WriteVolume(temp.File("miccai/training-labels/1000_3_glm.nii"), 4, affine, 45);
        var miccai = DatasetLayout.Miccai2012(temp.File("miccai"));
        Assert.That(miccai.Single(), Is.EqualTo(new Subject("1000", temp.File("miccai/training-images/1000_3.nii"), temp.File("miccai/training-labels/1000_3_glm.nii"), "train")));

        // A missing label file names both files.
        File.Delete(temp.File("mr/TrainingData/2/LabelsForTraining.nii"));
        var missing = Assert.Throws<ImageFormatException>(() => DatasetLayout.MrBrainS13(temp.File("mr")))!;
        Assert.That(missing.Message, Does.Contain("LabelsForTraining.nii").And.Contain("T1.nii"));

        // A label map on another grid names both files.
        File.WriteAllText(temp.File("list.csv"), "image,label,split\nmiccai/training-images/1000_3.nii,other.nii,train\nmiccai/training-images/1000_3.nii,,test\n");
        WriteVolume(temp.File("other.nii"), 4, Affine.Diagonal(2, 2, 2), 1);
        var manifest = DatasetLayout.Manifest(temp.File("list.csv"));
        Assert.That(manifest.Select(s => s.Split), Is.EqualTo(new[] { "train", "test" }));
        Assert.That(manifest[1].LabelPath, Is.Null);
        var mismatch = Assert.Throws<ImageFormatException>(() => DatasetLayout.Load(manifest[0]))!;
        Assert.That(mismatch.Message, Does.Contain("other.nii").And.Contain("1000_3.nii").And.Contain("grid"));

        File.WriteAllText(temp.File("bad.csv"), "a.nii,b.nii\n");
        Assert.That(Assert.Throws<ImageFormatException>(() => DatasetLayout.Manifest(temp.File("bad.csv")))!.Message, Does.Contain("line 1"));
        Assert.Throws<ImageFormatException>(() => DatasetLayout.Miccai2012(temp.File("mr")));
    }

    [Test]
    public void NormalisationWorksInsideTheBrainMaskAndKeepsBackgroundZero()
    {
        var voxels = new float[1000];
        for (int i = 100; i < 1000; i++) voxels[i] = i; // 900 brain voxels, 100 background
        var z = new IntensityNormalisation(NormalisationMethod.ZScore).Apply(voxels);
        var brain = z.Skip(100).Select(v => (double)v).ToArray();
        Assert.That(brain.Average(), Is.EqualTo(0).Within(1e-4));
        Assert.That(Math.Sqrt(brain.Select(v => v * v).Average()), Is.EqualTo(1).Within(1e-4));
        Assert.That(z.Take(100), Has.All.EqualTo(0f));

        var p = IntensityNormalisation.Default.Apply(voxels);
        // numpy.percentile(range(100, 1000), [1, 99]) = 108.99, 990.01
        Assert.That(p[109 - 0], Is.EqualTo((109 - 108.99) / (990.01 - 108.99)).Within(1e-6));
        Assert.That(p.Take(100), Has.All.EqualTo(0f));
        Assert.That(IntensityNormalisation.Parse(IntensityNormalisation.Default.ToString()), Is.EqualTo(IntensityNormalisation.Default));
        Assert.That(IntensityNormalisation.Parse("zscore").Method, Is.EqualTo(NormalisationMethod.ZScore));
        Assert.That(IntensityNormalisation.Parse("percentile:2:98").UpperPercentile, Is.EqualTo(98));
        Assert.Throws<BadInputException>(() => IntensityNormalisation.Parse("percentile:99:1"));
    }
}
