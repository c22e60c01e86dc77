using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.Labels;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Mri.Phantom;
using BrainSeg.Seg.Data;
using NUnit.Framework;

namespace BrainSeg.Tests.Experiments;

/// <summary>Subjects, slabs and training data as the segmentation layer loads them for train, experiment and demo.</summary>
public class DataLoadingTests
{
    static LabelledImage Phantom(ulong seed) => ExperimentTests.Phantom(seed, 20);

    [Test]
    public void TestAndValidationSlabsAreHeldOutTogetherAndNeverTrainedOn()
    {
        var subject = Phantom(2);
        int axis = Orientation.SliceAxis(subject.Image.Affine, Plane.Axial);
        var (training, heldOut) = Slabs.HoldOut(subject, Plane.Axial, [(12, 15), (4, 6)]);
        Assert.That(heldOut.Select(h => h.Slices), Is.EqualTo(new (int, int)?[] { (12, 15), (4, 6) }), "in the order given");
        // Blocks 0..3, 7..11 and 16..19: 4 + 5 + 4 slices, none of them held out.
        Assert.That(training.Select(t => t.Image.Size(axis)), Is.EqualTo(new[] { 4, 5, 4 }));
        Assert.That(training.Sum(t => t.Image.Size(axis)) + 4 + 3, Is.EqualTo(20));
        int[] at = [0, 0, 0];
        at[axis] = 7;
        Assert.That(training[1].Image.Affine.Apply(0, 0, 0), Is.EqualTo(subject.Image.Affine.Apply(at[0], at[1], at[2])), "the middle block starts at slice 7");
        Assert.That(() => Slabs.HoldOut(subject, Plane.Axial, [(4, 8), (8, 10)]), Throws.TypeOf<BrainSeg.Mri.BadInputException>().With.Message.Contains("overlap"));
    }

    [Test]
    public void CentredSlicesAndLabelledExtent()
    {
        Assert.That(Slabs.Centred((10, 29), 8), Is.EqualTo((16, 23)));
        Assert.That(Slabs.Centred((10, 13), 8), Is.EqualTo((10, 13)), "a thinner slab is taken whole");
        var subject = Phantom(3);
        var (first, last) = Slabs.LabelledExtent(subject, Plane.Axial);
        Assert.That(first, Is.GreaterThanOrEqualTo(0));
        Assert.That(last, Is.LessThan(20));
        Assert.That(last - first, Is.GreaterThan(10), "the phantom fills most of its grid");
        var empty = subject with { Classes = new byte[subject.Classes.Length] };
        Assert.That(() => Slabs.LabelledExtent(empty, Plane.Axial), Throws.TypeOf<BrainSeg.Mri.BadInputException>().With.Message.Contains("--label-map"));
    }

    [Test]
    public void APairThatIsNotImageColonLabelsIsRefusedWithTheFix()
    {
        var table = LabelTable.Load("freesurfer-to-adult6");
        Assert.That(() => LabelledImage.Load("t1.nii.gz", table), Throws.TypeOf<BrainSeg.Mri.BadInputException>().With.Message.Contains("IMAGE:LABELS"));
        Assert.That(() => LabelledImage.Load("t1.nii.gz:", table), Throws.TypeOf<BrainSeg.Mri.BadInputException>().With.Message.Contains("IMAGE:LABELS"));
    }

    [Test]
    public void TheBuiltInPhantomLoadsAsTrainingData()
    {
        var (source, description) = TrainingData.Load("phantom", null, null, IntensityNormalisation.Default);
        Assert.That(source.Classes, Is.EqualTo(SyntheticPhantom.ClassNames.Count));
        Assert.That(source.ImageCount, Is.EqualTo(1));
        Assert.That(description["class_names"], Is.EqualTo(string.Join(",", SyntheticPhantom.ClassNames)));
        Assert.That(() => TrainingData.Load("missing.nii.gz", null, null, IntensityNormalisation.Default), Throws.TypeOf<BrainSeg.Mri.BadInputException>().With.Message.Contains("label map"));
    }
}
