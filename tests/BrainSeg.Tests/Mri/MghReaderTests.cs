using BrainSeg.Mri;
using BrainSeg.Mri.IO;
using NUnit.Framework;

namespace BrainSeg.Tests.Mri;

public class MghReaderTests
{
    [TestCase("norm.mgz", "t1.nii.gz")]
    [TestCase("aparc.a2009s+aseg.mgz", "aparc.a2009s+aseg.nii.gz")]
    public void MgzAndNiftiCopiesOfTheSubjectReadIdentically(string mgz, string nifti)
    {
        var fromMgz = ImageReader.Read(SharedData.Require(Path.Combine("subject-fs1", mgz)));
        var fromNifti = ImageReader.Read(SharedData.Require(Path.Combine("subject-fs1", nifti)));
        Assert.That(fromMgz.Format, Is.EqualTo(ImageFormat.Mgh));
        Assert.That(fromMgz.Shape, Is.EqualTo(new[] { 256, 256, 256 }));
        Assert.That(fromMgz.Shape, Is.EqualTo(fromNifti.Shape));
        Assert.That(fromMgz.DataType, Is.EqualTo(fromNifti.DataType));
        Assert.That(fromMgz.Data.AsSpan().SequenceEqual(fromNifti.Data), Is.True, "same voxels");
        // The NIfTI copy stores the affine in float32; the MGH geometry is float32 too, combined in double.
        Assert.That(fromMgz.Affine.ApproximatelyEquals(fromNifti.Affine, 1e-4), Is.True, $"affine {fromMgz.Affine} vs {fromNifti.Affine}");
        Assert.That(fromMgz.Header.SFormCode, Is.EqualTo(fromNifti.Header.SFormCode));
        Assert.That(fromMgz.Header.QFormCode, Is.EqualTo(fromNifti.Header.QFormCode));
        Assert.That(fromMgz.Header.Zooms, Is.EqualTo(fromNifti.Header.Zooms).Within(1e-6));
    }

    [Test]
    public void MgzWrittenAsNiftiMatchesNibabelsConversion()
    {
        var fromMgz = ImageReader.Read(SharedData.Require("subject-fs1/norm.mgz"));
        var reference = ImageReader.Read(SharedData.Require("subject-fs1/t1.nii.gz"));
        using var temp = new TempFolder();
        NiftiWriter.Write(temp.File("norm.nii.gz"), fromMgz);
        var converted = ImageReader.Read(temp.File("norm.nii.gz"));
        Assert.That(converted.Data.AsSpan().SequenceEqual(reference.Data), Is.True);
        Assert.That(converted.Affine.ApproximatelyEquals(reference.Affine, 1e-4), Is.True);
        Assert.That((converted.Header.SFormCode, converted.Header.QFormCode), Is.EqualTo((reference.Header.SFormCode, reference.Header.QFormCode)));
    }

    [Test]
    public void WrongVersionIsNotMgh()
    {
        var bytes = new byte[400];
        bytes[3] = 7;
        var e = Assert.Throws<ImageFormatException>(() => MghReader.FromBytes(bytes, "x.mgh"))!;
        Assert.That(e.Message, Does.Contain("x.mgh").And.Contain("version field is 7"));
    }

    [Test]
    public void TruncatedMghDataIsRejected()
    {
        var bytes = new byte[284 + 10];
        bytes[3] = 1;
        foreach (int o in new[] { 4, 8, 12, 16 }) bytes[o + 3] = 4; // 4x4x4x4 uchar = 256 bytes
        var e = Assert.Throws<ImageFormatException>(() => MghReader.FromBytes(bytes, "t.mgh"))!;
        Assert.That(e.Message, Does.Contain("truncated data"));
        foreach (int o in new[] { 4, 8, 12, 16 }) System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(o), int.MaxValue);
        e = Assert.Throws<ImageFormatException>(() => MghReader.FromBytes(bytes, "t.mgh"))!;
        Assert.That(e.Message, Does.Contain("claim more voxels"));
    }
}
