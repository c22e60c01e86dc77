using BrainSeg.Mri;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.IO;
using BrainSeg.Mri.Phantom;
using BrainSeg.Mri.Sampling;
using NUnit.Framework;

namespace BrainSeg.Tests.Mri;

public class PhantomAndSamplingTests
{
    private static readonly PhantomSubject Small = SyntheticPhantom.Generate(48, seed: 7);

    [Test]
    public void PhantomHasEveryClassWithT1ContrastAndIsReproducible()
    {
        var counts = new long[7];
        var sums = new double[7];
        for (int i = 0; i < Small.Classes.Length; i++)
        {
            counts[Small.Classes[i]]++;
            sums[Small.Classes[i]] += Small.Image.Voxels[i];
        }
        Assert.That(counts, Has.All.GreaterThan(50), string.Join(", ", counts));
        var mean = sums.Zip(counts, (s, c) => s / c).ToArray();
        Assert.That(mean[0], Is.EqualTo(0), "background is zero, as after skull stripping");
        // T1 ordering: lvCSF < cGM < BGT < WM.
        Assert.That(mean[6], Is.LessThan(mean[2]));
        Assert.That(mean[2], Is.LessThan(mean[3]));
        Assert.That(mean[3], Is.LessThan(mean[1]));
        Assert.That(counts[1] + counts[2], Is.GreaterThan(counts.Skip(3).Sum()), "cerebrum dominates");

        var again = SyntheticPhantom.Generate(48, seed: 7);
        Assert.That(again.Image.Voxels.AsSpan().SequenceEqual(Small.Image.Voxels), Is.True);
        var other = SyntheticPhantom.Generate(48, seed: 8);
        Assert.That(other.Classes.AsSpan().SequenceEqual(Small.Classes), Is.False, "another seed, another shape");
    }

    [Test]
    public void PhantomWritesAndReadsAsNifti()
    {
        using var temp = new TempFolder();
        var header = new NiftiHeader { Dim = [3, 48, 48, 48, 1, 1, 1, 1], XyztUnits = 2 };
        header.SetAffine(Small.Image.Affine);
        NiftiWriter.Write<float>(temp.File("phantom.nii.gz"), header, Small.Image.Voxels);
        NiftiWriter.WriteLabelMap<byte>(temp.File("phantom-labels.nii.gz"), header, Small.Classes);
        var image = ImageReader.ReadVolume(temp.File("phantom.nii.gz"));
        var labels = ImageReader.Read(temp.File("phantom-labels.nii.gz"));
        Assert.That(image.Voxels, Is.EqualTo(Small.Image.Voxels));
        Assert.That(labels.Data, Is.EqualTo(Small.Classes));
        Assert.That(image.SameGridAs(labels.GetVolume()), Is.True);
    }

    private static PatchSampler Sampler(Plane plane, PatchGeometry geometry, int perClass, ulong seed = 3) =>
        new([new TrainingImage(Small.Image, Small.Classes)], 7, plane, geometry, perClass, seed);

    [Test]
    public void EachClassGetsExactlyItsSamplesAndCentresHaveThatClass()
    {
        var sampler = Sampler(Plane.Axial, PatchGeometry.Fcn, perClass: 40);
        Assert.That(sampler.SamplesPerEpoch, Is.EqualTo(7 * 40));
        var perClass = new int[7];
        int total = 0;
        foreach (var batch in sampler.Epoch(0, batchSize: 64))
            for (int s = 0; s < batch.Count; s++, total++)
            {
                var (_, x, y, z) = batch.Centres[s];
                byte cls = batch.CentreClasses[s];
                perClass[cls]++;
                Assert.That(Small.Classes[Small.Image.IndexOf(x, y, z)], Is.EqualTo(cls), "the centre voxel has the class it was drawn for");
                var t = batch.Geometry.TargetSize;
                Assert.That(batch.Targets[s * t * t + t * t / 2], Is.EqualTo(cls), "the target's centre is the centre voxel's class");
                int n = batch.Geometry.InputSize;
                Assert.That(batch.Inputs[s * n * n + n * n / 2], Is.EqualTo(Small.Image[x, y, z]), "the input's centre is the centre voxel");
            }
        Assert.That(total, Is.EqualTo(280));
        Assert.That(perClass, Has.All.EqualTo(40));
    }

    [Test]
    public void PatchesFollowThePlaneAndArePaddedWithZeros()
    {
        foreach (var plane in new[] { Plane.Axial, Plane.Coronal, Plane.Sagittal })
        {
            var sampler = Sampler(plane, PatchGeometry.Dilated, perClass: 3);
            var (_, columnAxis, rowAxis) = Orientation.PlaneAxes(Small.Image.Affine, plane);
            foreach (var batch in sampler.Epoch(1, 32))
                for (int s = 0; s < batch.Count; s++)
                {
                    var (_, x, y, z) = batch.Centres[s];
                    int n = batch.Geometry.InputSize, half = n / 2;
                    for (int r = 0; r < n; r += 7)
                        for (int c = 0; c < n; c += 5)
                        {
                            int[] p = [x, y, z];
                            p[columnAxis] += c - half;
                            p[rowAxis] += r - half;
                            bool inside = p[0] >= 0 && p[0] < 48 && p[1] >= 0 && p[1] < 48 && p[2] >= 0 && p[2] < 48;
                            float expected = inside ? Small.Image[p[0], p[1], p[2]] : 0f;
                            Assert.That(batch.Inputs[s * n * n + r * n + c], Is.EqualTo(expected), $"{plane} patch {s} at ({r}, {c})");
                        }
                    // 87 > 48: every dilated-network patch reaches outside the volume.
                    Assert.That(batch.Inputs[s * n * n], Is.EqualTo(0f));
                    int d = batch.Geometry.DiscriminatorSize;
                    Assert.That(batch.DiscriminatorImages[s * d * d + d * d / 2], Is.EqualTo(Small.Image[x, y, z]));
                }
        }
    }

    [Test]
    public void SameSeedSamePatchesWithOrWithoutTheBackgroundProducer()
    {
        var a = Sampler(Plane.Coronal, PatchGeometry.Fcn, perClass: 30, seed: 11);
        var b = Sampler(Plane.Coronal, PatchGeometry.Fcn, perClass: 30, seed: 11);
        var serial = a.Epoch(2, 50).ToList();
        var streamed = b.Stream(2, 50, prefetch: 2).ToList();
        Assert.That(streamed, Has.Count.EqualTo(serial.Count));
        for (int i = 0; i < serial.Count; i++)
        {
            Assert.That(streamed[i].Centres, Is.EqualTo(serial[i].Centres));
            Assert.That(streamed[i].Inputs.AsSpan().SequenceEqual(serial[i].Inputs), Is.True);
            Assert.That(streamed[i].Targets.AsSpan().SequenceEqual(serial[i].Targets), Is.True);
        }
        var otherEpoch = a.Epoch(3, 50).First();
        Assert.That(otherEpoch.Centres, Is.Not.EqualTo(serial[0].Centres), "each epoch draws anew");
        var otherSeed = Sampler(Plane.Coronal, PatchGeometry.Fcn, perClass: 30, seed: 12).Epoch(2, 50).First();
        Assert.That(otherSeed.Centres, Is.Not.EqualTo(serial[0].Centres));
    }

    [Test]
    public void MemoryDoesNotGrowWithTheNumberOfSamples()
    {
        // The paper's 50,000 samples per class: taking a few batches must cost what a few batches cost.
        var sampler = Sampler(Plane.Axial, PatchGeometry.Fcn, perClass: 50_000);
        Assert.That(sampler.SamplesPerEpoch, Is.EqualTo(350_000));
        long before = GC.GetAllocatedBytesForCurrentThread();
        int batches = 0;
        foreach (var batch in sampler.Epoch(0, 100))
            if (++batches == 5) break;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(allocated, Is.LessThan(5 * 2_000_000), "about five minibatches' worth, not an epoch's");

        using var cancel = new CancellationTokenSource();
        int streamed = 0;
        foreach (var batch in sampler.Stream(0, 100, prefetch: 2, cancel.Token))
            if (++streamed == 3) break; // leaving early stops the producer
        Assert.That(streamed, Is.EqualTo(3));
    }

    [Test]
    public void BadSamplerArgumentsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new PatchSampler([], 7, Plane.Axial, PatchGeometry.Fcn, 1, 0));
        Assert.Throws<BadInputException>(() => new PatchSampler([new TrainingImage(Small.Image, new byte[3])], 7, Plane.Axial, PatchGeometry.Fcn, 1, 0));
        Assert.Throws<BadInputException>(() => new PatchSampler([new TrainingImage(Small.Image, Small.Classes)], 3, Plane.Axial, PatchGeometry.Fcn, 1, 0));
        Assert.Throws<ArgumentException>(() => new PatchSampler([new TrainingImage(Small.Image, Small.Classes)], 7, Plane.Axial, new PatchGeometry(50), 1, 0));
    }
}
