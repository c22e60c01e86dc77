using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Cpu;
using BrainSeg.Mri;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Seg.Inference;
using BrainSeg.Seg.Networks;
using BrainSeg.Tests.Training;
using NUnit.Framework;

namespace BrainSeg.Tests.Inference;

public class VolumeSegmenterTests
{
    static SegmentationModel TinyModel(int classes, Plane plane, ulong seed)
    {
        var network = new TinyNetwork(CpuBackend.Instance, classes, new NetworkOptions { Seed = seed, DropoutP = 0.5 });
        return new SegmentationModel(network, Enumerable.Range(0, classes).Select(i => $"c{i}").ToArray(),
            new IntensityNormalisation(NormalisationMethod.ZScore), plane);
    }

    static Volume RandomVolume(int nx, int ny, int nz, Affine affine, int seed)
    {
        var random = new Random(seed);
        var voxels = new float[nx * ny * nz];
        for (int i = 0; i < voxels.Length; i++) voxels[i] = (float)(random.NextDouble() * 100);
        return new Volume(voxels, nx, ny, nz, affine);
    }

    [TestCase(Plane.Axial)]
    [TestCase(Plane.Coronal)]
    [TestCase(Plane.Sagittal)]
    public void WholeSliceOutputEqualsPatchWiseOutputs(Plane plane)
    {
        using var model = TinyModel(4, plane, 7);
        var image = RandomVolume(9, 8, 7, Affine.Diagonal(1, 1.2, 1.5), 11);
        var whole = VolumeSegmenter.Segment(model, image, batchSlices: 3, probabilities: true);

        // The same voxels one by one: a receptive-field-sized patch around each, zero outside the volume.
        int rf = model.Network.ReceptiveField, radius = model.PaddingRadius;
        Assert.That(rf, Is.EqualTo(7));
        Volume normalised = model.Normalisation.Apply(image);
        var (sliceAxis, columnAxis, rowAxis) = Orientation.PlaneAxes(image.Affine, plane);
        var random = new Random(3);
        for (int trial = 0; trial < 25; trial++)
        {
            int[] at = [random.Next(image.SizeX), random.Next(image.SizeY), random.Next(image.SizeZ)];
            var patch = new float[rf * rf];
            for (int r = 0; r < rf; r++)
                for (int c = 0; c < rf; c++)
                {
                    int[] p = (int[])at.Clone();
                    p[rowAxis] += r - radius;
                    p[columnAxis] += c - radius;
                    if (p[0] >= 0 && p[1] >= 0 && p[2] >= 0 && p[0] < image.SizeX && p[1] < image.SizeY && p[2] < image.SizeZ)
                        patch[r * rf + c] = normalised[p[0], p[1], p[2]];
                }
            using var tape = Tape.NoGrad(CpuBackend.Instance);
            var probabilities = model.Network.Probabilities(tape, tape.Own(Tensor.FromHost(CpuBackend.Instance, patch, 1, 1, rf, rf))).ToHost<float>();
            int voxel = image.IndexOf(at[0], at[1], at[2]);
            for (int k = 0; k < 4; k++)
                Assert.That(whole.Probabilities![k * image.Count + voxel], Is.EqualTo(probabilities[k]).Within(1e-5), $"voxel ({at[0]}, {at[1]}, {at[2]}), class {k}");
            int best = Array.IndexOf(probabilities, probabilities.Max());
            Assert.That(whole.Classes[voxel], Is.EqualTo(best));
        }
    }

    [Test]
    public void ClassesDoNotDependOnTheBatchOrOnAskingForProbabilities()
    {
        using var model = TinyModel(3, Plane.Axial, 5);
        var image = RandomVolume(10, 9, 6, Affine.Identity, 4);
        var one = VolumeSegmenter.Segment(model, image, batchSlices: 1);
        var all = VolumeSegmenter.Segment(model, image, batchSlices: 6, probabilities: true);
        Assert.That(one.Probabilities, Is.Null);
        Assert.That(all.Classes, Is.EqualTo(one.Classes));
        Assert.That(one.Classes.Distinct().Count(), Is.GreaterThan(1), "a random network still separates some voxels");
    }
}

public class ClassNamesMetadataTests
{
    [Test]
    public void ClassNamesSurviveAWrittenAndReadLabelMap()
    {
        string path = Path.Combine(Path.GetTempPath(), $"brainseg-labels-{Guid.NewGuid():N}.nii.gz");
        try
        {
            var header = new BrainSeg.Mri.IO.NiftiHeader { Dim = [3, 2, 2, 2, 1, 1, 1, 1] };
            var tagged = ClassNamesMetadata.Attach(header, ["background", "WM", "cGM"]);
            BrainSeg.Mri.IO.NiftiWriter.WriteLabelMap<byte>(path, tagged, new byte[] { 0, 1, 2, 1, 0, 0, 2, 2 });
            var read = BrainSeg.Mri.IO.ImageReader.Read(path);
            Assert.That(ClassNamesMetadata.Read(read.Header), Is.EqualTo(new[] { "background", "WM", "cGM" }));
            Assert.That(read.Header.Description, Does.Contain("1=WM"));
            Assert.That(ClassNamesMetadata.Read(header), Is.Null);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
