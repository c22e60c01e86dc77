using BrainSeg.Mri;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.IO;
using NUnit.Framework;

namespace BrainSeg.Tests.Mri;

public class GeometryTests
{
    [Test]
    public void AxisCodesFollowTheAffine()
    {
        Assert.That(Orientation.AxisCodes(Affine.Diagonal(1, 1, 1)), Is.EqualTo("RAS"));
        Assert.That(Orientation.AxisCodes(Affine.Diagonal(-2, 2, 2)), Is.EqualTo("LAS"));
        // FreeSurfer's conformed space: columns point left, inferior, anterior.
        var lia = Affine.FromRows([-1, 0, 0, 128], [0, 0, 1, -128], [0, -1, 0, 128]);
        Assert.That(Orientation.AxisCodes(lia), Is.EqualTo("LIA"));
        Assert.That(Orientation.SliceAxis(lia, Plane.Sagittal), Is.EqualTo(0));
        Assert.That(Orientation.SliceAxis(lia, Plane.Axial), Is.EqualTo(1));
        Assert.That(Orientation.SliceAxis(lia, Plane.Coronal), Is.EqualTo(2));
        Assert.That(Orientation.PlaneAxes(lia, Plane.Axial), Is.EqualTo((1, 0, 2)));
    }

    [Test]
    public void TheRealSubjectIsStoredCoronallyAndTheReferenceFilesAxially()
    {
        var subject = NiftiReader.ReadHeader(SharedData.Require("subject-fs1/t1.nii.gz"));
        Assert.That(Orientation.AxisCodes(subject.BestAffine()), Is.EqualTo("LIA"));
        var example = NiftiReader.ReadHeader(SharedData.Require("nifti/example4d.nii.gz"));
        Assert.That(Orientation.AxisCodes(example.BestAffine()), Is.EqualTo("LAS"));
    }

    [Test]
    public void SlicesFollowTheNamedPlaneWhateverTheStorageOrder()
    {
        // The same anatomy stored RAS and LIA: the axial slice through the same world point must hold the same values.
        const int n = 5;
        var ras = new float[n * n * n];
        for (int i = 0; i < ras.Length; i++) ras[i] = i;
        var rasVolume = new Volume(ras, n, n, n, Affine.Diagonal(1, 1, 1));
        // LIA storage: array (i, j, k) = world (x = n-1-i, y = k, z = n-1-j).
        var lia = new float[n * n * n];
        for (int k = 0; k < n; k++)
            for (int j = 0; j < n; j++)
                for (int i = 0; i < n; i++)
                    lia[i + n * (j + n * k)] = rasVolume[n - 1 - i, k, n - 1 - j];
        var liaVolume = new Volume(lia, n, n, n, Affine.FromRows([-1, 0, 0, n - 1], [0, 0, 1, 0], [0, -1, 0, n - 1]));
        Assert.That(liaVolume.SliceCount(Plane.Axial), Is.EqualTo(n));

        var a = new float[n * n];
        var b = new float[n * n];
        rasVolume.CopySlice(Plane.Axial, 3, a);          // world z = 3
        liaVolume.CopySlice(Plane.Axial, n - 1 - 3, b);  // the same world z in LIA storage
        Assert.That(b.Order(), Is.EqualTo(a.Order()), "same voxels (in-plane order may differ by flips)");
        Assert.That(a.All(v => (int)v / (n * n) == 3), Is.True, "an axial slice of RAS data has constant z");
    }

    [Test]
    public void QformFromAnAffineRoundTripsRotationsAndFlips()
    {
        var h = new NiftiHeader();
        var oblique = Affine.FromRows([0.9, -0.3, 0.1, 10], [0.3, 0.95, 0.05, -20], [-0.1, 0.0, 1.2, 5]);
        foreach (var affine in new[] { Affine.Diagonal(-1, 2, 3), Affine.FromRows([0, 0, -2, 1], [1, 0, 0, 2], [0, -1.5, 0, 3]) })
        {
            h.SetAffine(affine);
            Assert.That(h.QFormAffine().ApproximatelyEquals(affine, 1e-12), Is.True, affine.ToString());
        }
        h.SetAffine(oblique);
        Assert.That(h.SFormAffine(), Is.EqualTo(oblique));
        Assert.That(h.QFormAffine().VoxelSizes().X, Is.EqualTo(oblique.VoxelSizes().X).Within(1e-12), "the qform keeps voxel sizes even when it drops shears");
    }
}
