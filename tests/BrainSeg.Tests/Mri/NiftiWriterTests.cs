using System.Runtime.InteropServices;
using BrainSeg.Mri;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.IO;
using NUnit.Framework;

namespace BrainSeg.Tests.Mri;

public class NiftiWriterTests
{
    private static readonly NiftiDataType[] Types =
    [
        NiftiDataType.UInt8, NiftiDataType.Int8, NiftiDataType.Int16, NiftiDataType.UInt16, NiftiDataType.Int32,
        NiftiDataType.UInt32, NiftiDataType.Int64, NiftiDataType.UInt64, NiftiDataType.Float32, NiftiDataType.Float64,
    ];

    /// <summary>A header with every field set to something other than its default.</summary>
    private static NiftiHeader RichHeader(NiftiDataType type, int version, bool bigEndian)
    {
        var h = new NiftiHeader
        {
            Version = version, IsBigEndian = bigEndian, DataType = type, Dim = [4, 5, 4, 3, 2, 1, 1, 1],
            SclSlope = 0.5, SclInter = -3, XyztUnits = 10, IntentCode = 1002, IntentName = "label", IntentP1 = 1.5,
            Description = "round trip", AuxFile = "aux", CalMin = 1, CalMax = 99, SliceCode = 1, SliceStart = 0, SliceEnd = 2,
            SliceDuration = 0.25, TOffset = 0.5, DimInfo = 57,
        };
        h.SetAffine(Affine.FromRows([0, 0, 1.5, -10], [-1.25, 0, 0, 20], [0, 2, 0, 7.5]), sformCode: 4, qformCode: 2);
        h.PixDim[4] = 2.5;
        h.Extensions.Add(new NiftiExtension(6, "a comment, padded"u8.ToArray()));
        return h;
    }

    private static byte[] RandomVoxels(NiftiHeader h, int seed)
    {
        var data = new byte[MriImageVoxelCount(h) * h.DataType.BytesPerVoxel()];
        new Random(seed).NextBytes(data);
        // Keep floats finite so value comparisons are meaningful.
        if (h.DataType == NiftiDataType.Float32)
        {
            var f = MemoryMarshal.Cast<byte, float>(data.AsSpan());
            for (int i = 0; i < f.Length; i++) f[i] = (i * 7919 % 1000) / 7f - 50;
        }
        if (h.DataType == NiftiDataType.Float64)
        {
            var d = MemoryMarshal.Cast<byte, double>(data.AsSpan());
            for (int i = 0; i < d.Length; i++) d[i] = Math.Sqrt(i) - 3.3;
        }
        return data;
    }

    private static long MriImageVoxelCount(NiftiHeader h) => h.Shape.Aggregate(1L, (a, b) => a * b);

    [Test]
    public void EveryDatatypeFormatVersionAndByteOrderRoundTrips(
        [Values(".nii", ".nii.gz", ".hdr", ".img.gz")] string extension, [Values(1, 2)] int version, [Values(false, true)] bool bigEndian)
    {
        using var temp = new TempFolder();
        foreach (var type in Types)
        {
            var header = RichHeader(type, version, bigEndian);
            byte[] data = RandomVoxels(header, (int)type);
            string path = temp.File($"rt-{type}{extension}");
            NiftiWriter.Write(path, header, data);

            var back = NiftiReader.Read(path);
            Assert.That(back.Data, Is.EqualTo(data), $"{type}: voxels");
            var h = back.Header;
            Assert.Multiple(() =>
            {
                Assert.That(h.Version, Is.EqualTo(version));
                Assert.That(h.IsBigEndian, Is.EqualTo(bigEndian));
                Assert.That(h.IsPair, Is.EqualTo(extension is ".hdr" or ".img.gz"));
                Assert.That(h.DataType, Is.EqualTo(type));
                Assert.That(h.Dim, Is.EqualTo(header.Dim));
                Assert.That(h.PixDim, Is.EqualTo(header.PixDim.Select(v => (double)(float)v)).Within(0).Or.EqualTo(header.PixDim));
                Assert.That(h.SFormCode, Is.EqualTo(4));
                Assert.That(h.QFormCode, Is.EqualTo(2));
                Assert.That(h.SFormAffine().ApproximatelyEquals(header.SFormAffine(), 1e-6), Is.True, "sform");
                Assert.That(h.QFormAffine().ApproximatelyEquals(header.SFormAffine(), 1e-5), Is.True, "qform reproduces the affine");
                Assert.That(h.SclSlope, Is.EqualTo(0.5));
                Assert.That(h.SclInter, Is.EqualTo(-3));
                Assert.That(h.XyztUnits, Is.EqualTo(10));
                Assert.That(h.IntentCode, Is.EqualTo(1002));
                Assert.That(h.IntentName, Is.EqualTo("label"));
                Assert.That(h.Description, Is.EqualTo("round trip"));
                Assert.That(h.AuxFile, Is.EqualTo("aux"));
                Assert.That(h.DimInfo, Is.EqualTo(57));
                Assert.That(h.SliceEnd, Is.EqualTo(2));
                Assert.That(h.Extensions, Has.Count.EqualTo(1));
                Assert.That(h.Extensions[0].Code, Is.EqualTo(6));
                Assert.That(h.Extensions[0].Content.AsSpan(0, 17).ToArray(), Is.EqualTo("a comment, padded"u8.ToArray()));
            });
            var stats = back.Statistics();
            Assert.That(double.IsFinite(stats.Sum), Is.True);
        }
        Assert.That(Directory.GetFiles(temp.Path, "*.tmp"), Is.Empty, "no temporary files remain");
    }

    [Test]
    public void EveryReferenceFileRoundTripsWithItsHeader()
    {
        SharedData.Require("nifti/expected.json");
        using var temp = new TempFolder();
        foreach (string name in new[] { "5D_small.nii", "air.hdr.gz", "anatomical.nii", "big.nii.gz", "example4d.nii.gz", "example_nifti2.nii.gz", "functional.nii", "little.nii.gz" })
        {
            var image = NiftiReader.Read(SharedData.Require(Path.Combine("nifti", name)));
            string copy = temp.File("copy-" + name);
            NiftiWriter.Write(copy, image);
            var back = NiftiReader.Read(copy);
            Assert.That(back.Data.AsSpan().SequenceEqual(image.Data), Is.True, name);
            Assert.That(back.Header.Serialize(), Is.EqualTo(image.Header.Serialize()), $"{name}: every header field");
            Assert.That(back.Header.Extensions.Select(e => (e.Code, e.Content.Length)), Is.EqualTo(image.Header.Extensions.Select(e => (e.Code, e.Content.Length))), name);
            Assert.That(back.Statistics(), Is.EqualTo(image.Statistics()), name);
        }
    }

    [Test]
    public void LabelMapKeepsTheSourceGeometryAndChangesOnlyDatatypeAndScaling()
    {
        var source = NiftiReader.Read(SharedData.Require("nifti/functional.nii")); // 4-D, scaled int16, sform and qform code 2
        var (nx, ny, nz) = source.SpatialShape;
        var labels = new byte[nx * ny * nz];
        for (int i = 0; i < labels.Length; i++) labels[i] = (byte)(i % 7);
        using var temp = new TempFolder();
        string path = temp.File("labels.nii.gz");
        NiftiWriter.WriteLabelMap<byte>(path, source.Header, labels);

        var back = NiftiReader.Read(path);
        var h = back.Header;
        var s = source.Header;
        Assert.Multiple(() =>
        {
            Assert.That(back.Data, Is.EqualTo(labels));
            Assert.That(h.DataType, Is.EqualTo(NiftiDataType.UInt8));
            Assert.That(h.SclSlope, Is.EqualTo(1));
            Assert.That(h.SclInter, Is.EqualTo(0));
            Assert.That(back.Shape, Is.EqualTo(new[] { nx, ny, nz }), "one volume of a 4-D source is written 3-D");
            Assert.That(h.SFormCode, Is.EqualTo(s.SFormCode));
            Assert.That(h.QFormCode, Is.EqualTo(s.QFormCode));
            Assert.That(h.SFormAffine(), Is.EqualTo(s.SFormAffine()));
            Assert.That(h.QFormAffine(), Is.EqualTo(s.QFormAffine()));
            Assert.That(back.Affine, Is.EqualTo(source.Affine));
            Assert.That(h.PixDim, Is.EqualTo(s.PixDim));
            Assert.That(h.XyztUnits, Is.EqualTo(s.XyztUnits));
            Assert.That(h.IsBigEndian, Is.EqualTo(s.IsBigEndian));
        });
    }

    [Test]
    public void AFailedWriteLeavesNoFileBehind()
    {
        using var temp = new TempFolder();
        var header = RichHeader(NiftiDataType.Int16, 1, false);
        string path = temp.File("short.nii");
        Assert.Throws<ArgumentException>(() => NiftiWriter.Write(path, header, new byte[10]));
        Assert.Throws<BadInputException>(() => NiftiWriter.Write(temp.File("image.png"), header, RandomVoxels(header, 1)));
        Assert.That(Directory.GetFileSystemEntries(temp.Path), Is.Empty);

        // An existing file is replaced only by a complete one.
        NiftiWriter.Write(path, header, RandomVoxels(header, 1));
        byte[] before = File.ReadAllBytes(path);
        Assert.Throws<ArgumentException>(() => NiftiWriter.Write(path, header, new byte[3]));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
        Assert.Throws<DirectoryNotFoundException>(() => NiftiWriter.Write(temp.File("missing/x.nii"), header, RandomVoxels(header, 1)));
        Assert.That(Directory.GetFiles(temp.Path), Is.EqualTo(new[] { path }));
    }
}
