using System.Buffers.Binary;
using System.Diagnostics;
using BrainSeg.Mri;
using BrainSeg.Mri.IO;
using NUnit.Framework;

namespace BrainSeg.Tests.Mri;

/// <summary>Every kind of bad file gives an <see cref="ImageFormatException"/> naming the file and the problem.</summary>
public class BadInputTests
{
    private static byte[] Uncompressed(string name)
    {
        string path = SharedData.Require(Path.Combine("nifti", name));
        byte[] bytes = File.ReadAllBytes(path);
        return bytes[0] == 0x1f && bytes[1] == 0x8b ? FileBytesGunzip(bytes) : bytes;
    }

    private static byte[] FileBytesGunzip(byte[] gz)
    {
        using var input = new System.IO.Compression.GZipStream(new MemoryStream(gz), System.IO.Compression.CompressionMode.Decompress);
        using var output = new MemoryStream();
        input.CopyTo(output);
        return output.ToArray();
    }

    private static ImageFormatException Rejects(byte[] file, string expectedProblem, byte[]? image = null)
    {
        var e = Assert.Throws<ImageFormatException>(() => NiftiReader.FromBytes(file, image, "bad.nii"))!;
        Assert.That(e.Message, Does.StartWith("bad.nii: "));
        Assert.That(e.Message, Does.Contain(expectedProblem));
        return e;
    }

    private static ImageFormatException RejectsFile(string path, string expectedProblem)
    {
        var e = Assert.Throws<ImageFormatException>(() => ImageReader.Read(path))!;
        Assert.That(e.Message, Does.Contain(Path.GetFileName(path)));
        Assert.That(e.Message, Does.Contain(expectedProblem));
        return e;
    }

    [Test]
    public void WrongMagic()
    {
        var file = Uncompressed("anatomical.nii");
        "xyz"u8.CopyTo(file.AsSpan(344));
        Rejects(file, "bad NIfTI-1 magic");
    }

    [Test]
    public void NotNiftiAtAll() => Rejects(new byte[1024], "not a NIfTI file");

    [Test]
    public void TruncatedHeader() => Rejects(Uncompressed("anatomical.nii")[..200], "truncated header");

    [Test]
    public void TruncatedData() => Rejects(Uncompressed("anatomical.nii")[..5000], "truncated data");

    [Test]
    public void NegativeAndZeroDimensions()
    {
        var file = Uncompressed("anatomical.nii"); // big-endian
        BinaryPrimitives.WriteInt16BigEndian(file.AsSpan(42), -5);
        Rejects(file, "dimension 1 has size -5");
        BinaryPrimitives.WriteInt16BigEndian(file.AsSpan(42), 0);
        Rejects(file, "dimension 1 has size 0");
        BinaryPrimitives.WriteInt16BigEndian(file.AsSpan(40), 9);
        Rejects(file, "dim[0]");
    }

    [Test]
    public void DimensionsThatOverflowOrExceedTheFile()
    {
        var file = Uncompressed("example_nifti2.nii.gz"); // NIfTI-2: 64-bit dims
        for (int i = 1; i <= 4; i++) BinaryPrimitives.WriteInt64LittleEndian(file.AsSpan(16 + 8 * i), long.MaxValue / 3);
        Rejects(file, "claim more voxels");
        // A product that wraps around 64 bits (2 x 2^62 x 2^62 ...) must not slip through as a small number.
        BinaryPrimitives.WriteInt64LittleEndian(file.AsSpan(24), 2);
        for (int i = 2; i <= 4; i++) BinaryPrimitives.WriteInt64LittleEndian(file.AsSpan(16 + 8 * i), 1L << 62);
        Rejects(file, "claim more voxels");

        var small = Uncompressed("anatomical.nii");
        for (int i = 1; i <= 3; i++) BinaryPrimitives.WriteInt16BigEndian(small.AsSpan(40 + 2 * i), 1000); // 1e9 voxels in a 68 kB file
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        Rejects(small, "truncated data");
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - allocatedBefore, Is.LessThan(1 << 20), "rejected before allocating the claimed 2 GB");
    }

    [Test]
    public void UnknownAndUnsupportedDatatypes()
    {
        var file = Uncompressed("anatomical.nii");
        BinaryPrimitives.WriteInt16BigEndian(file.AsSpan(70), 77);
        Rejects(file, "unknown datatype code 77");
        BinaryPrimitives.WriteInt16BigEndian(file.AsSpan(70), 128);
        Rejects(file, "RGB24");
        BinaryPrimitives.WriteInt16BigEndian(file.AsSpan(70), 32);
        Rejects(file, "complex64");
    }

    [Test]
    public void VoxOffsetPastTheEnd()
    {
        var file = Uncompressed("anatomical.nii");
        BinaryPrimitives.WriteSingleBigEndian(file.AsSpan(108), 1e6f);
        Rejects(file, "past the end");
    }

    [Test]
    public void CorruptGzipStream()
    {
        byte[] gz = File.ReadAllBytes(SharedData.Require("nifti/little.nii.gz"));
        for (int i = 200; i < 260; i++) gz[i] ^= 0x5a;
        using var temp = new TempFolder();
        string path = temp.File("corrupt.nii.gz");
        File.WriteAllBytes(path, gz);
        RejectsFile(path, "corrupt gzip stream");
    }

    [Test]
    public void TruncatedGzipStream()
    {
        byte[] gz = File.ReadAllBytes(SharedData.Require("nifti/little.nii.gz"));
        using var temp = new TempFolder();
        string path = temp.File("cut.nii.gz");
        File.WriteAllBytes(path, gz[..(gz.Length / 2)]);
        var e = Assert.Throws<ImageFormatException>(() => ImageReader.Read(path))!;
        Assert.That(e.Message, Does.Contain("cut.nii.gz"));
        Assert.That(e.Message, Does.Contain("truncated data").Or.Contain("corrupt gzip").Or.Contain("footer"));
    }

    [Test]
    public void HeaderWithoutImageFile()
    {
        using var temp = new TempFolder();
        string path = temp.File("air.hdr.gz");
        File.Copy(SharedData.Require("nifti/air.hdr.gz"), path);
        RejectsFile(path, "image file is missing");
        File.Copy(SharedData.Require("nifti/air.img.gz"), temp.File("lonely.img.gz"));
        RejectsFile(temp.File("lonely.img.gz"), "no header beside it");
        Rejects(Uncompressed("air.hdr.gz"), "no image file was given");
    }

    [Test]
    public void MissingFileAndEmptyFile()
    {
        using var temp = new TempFolder();
        RejectsFile(temp.File("nothing-here.nii"), "does not exist");
        File.WriteAllBytes(temp.File("empty.nii"), []);
        RejectsFile(temp.File("empty.nii"), "too few");
        File.WriteAllBytes(temp.File("empty.mgz"), []);
        RejectsFile(temp.File("empty.mgz"), "truncated MGH header");
    }

    /// <summary>
    /// Seeded random mutations of the headers of real files: each read either fails with a clean
    /// ImageFormatException or succeeds with consistent data (and, when no field that governs the
    /// data changed, the original voxels).
    /// </summary>
    [Test]
    public void ThousandsOfHeaderMutationsFailCleanlyOrReadCorrectly()
    {
        SharedData.Require("nifti/expected.json");
        var sources = new (string Name, byte[] Header, byte[]? Image)[]
        {
            ("5D_small.nii", Uncompressed("5D_small.nii"), null),
            ("anatomical.nii", Uncompressed("anatomical.nii"), null),
            ("functional.nii", Uncompressed("functional.nii"), null),
            ("example4d.nii.gz", Uncompressed("example4d.nii.gz"), null),
            ("example_nifti2.nii.gz", Uncompressed("example_nifti2.nii.gz"), null),
            ("air.hdr.gz", Uncompressed("air.hdr.gz"), Uncompressed("air.img.gz")),
        };
        var originals = sources.Select(s => NiftiReader.FromBytes(s.Header, s.Image, s.Name)).ToArray();
        var random = new Random(20170917);
        var watch = Stopwatch.StartNew();
        int rejected = 0, read = 0, sameData = 0;
        const int Mutations = 1200;
        for (int m = 0; m < Mutations; m++)
        {
            int which = m % sources.Length;
            var (name, header, image) = sources[which];
            byte[] mutated = (byte[])header.Clone();
            int headerSize = BinaryPrimitives.ReadInt32LittleEndian(mutated) is 540 or 0x1c020000 ? 540 : 348;
            int span = Math.Min(mutated.Length, headerSize + 4 + (name == "example4d.nii.gz" ? 64 : 0));
            Mutate(mutated, span, headerSize == 540 ? Nifti2Fields : Nifti1Fields, random);
            string label = $"mutation {m} of {name}";
            try
            {
                var result = NiftiReader.FromBytes(mutated, image, label);
                read++;
                long voxels = result.Shape.Aggregate(1L, (a, b) => a * b);
                Assert.That(result.Data.LongLength, Is.EqualTo(voxels * result.DataType.BytesPerVoxel()), label);
                Assert.That(result.VolumeCount, Is.GreaterThanOrEqualTo(1), label);
                if (voxels <= 100_000) _ = result.Statistics(); // every value converts; skipped for the large file to keep the test fast
                _ = result.Affine;
                if (SameDataFields(result.Header, originals[which].Header))
                {
                    // SequenceEqual: NUnit's element-wise comparison of megabyte arrays is far too slow here.
                    Assert.That(result.Data.AsSpan().SequenceEqual(originals[which].Data), Is.True, $"{label}: only descriptive fields changed, so the voxels must not");
                    sameData++;
                }
            }
            catch (ImageFormatException e)
            {
                rejected++;
                Assert.That(e.Message, Does.StartWith(label + ": "), "the message names the file");
                Assert.That(e.Message.Length, Is.GreaterThan(label.Length + 20), "the message says what is wrong");
            }
        }
        TestContext.Progress.WriteLine($"{Mutations} mutations: {rejected} rejected, {read} read ({sameData} with unchanged voxels) in {watch.ElapsedMilliseconds} ms");
        Assert.That(rejected, Is.GreaterThan(50), "the mutations exercise the error paths");
        Assert.That(read, Is.GreaterThan(50), "the mutations exercise harmless changes too");
        Assert.That(watch.Elapsed.TotalSeconds, Is.LessThan(30));
    }

    // Offsets of the fields that govern how the data is read: sizeof_hdr, dims, datatype, bitpix,
    // vox_offset, scaling, magic, the extension flag.
    private static readonly int[] Nifti1Fields = [0, 1, 3, 40, 41, 42, 44, 46, 48, 50, 52, 54, 70, 72, 108, 110, 112, 116, 344, 345, 346, 348];
    private static readonly int[] Nifti2Fields = [0, 3, 4, 5, 8, 12, 14, 16, 24, 32, 40, 48, 56, 72, 168, 172, 176, 184, 540];

    private static void Mutate(byte[] file, int span, int[] governingFields, Random random)
    {
        if (random.Next(2) == 0)
        {
            // Half of the mutations hit a field that governs the data.
            int at = governingFields[random.Next(governingFields.Length)];
            if (random.Next(2) == 0) file[at] = (byte)random.Next(256);
            else file[at] ^= (byte)(1 << random.Next(8));
            return;
        }
        switch (random.Next(4))
        {
            case 0: // a few random bytes
                for (int k = random.Next(1, 5); k > 0; k--) file[random.Next(span)] = (byte)random.Next(256);
                break;
            case 1: // one bit
                file[random.Next(span)] ^= (byte)(1 << random.Next(8));
                break;
            case 2: // an extreme 16-bit value at an aligned position (dims, datatype, codes of NIfTI-1)
                {
                    short[] extremes = [0, -1, 1, short.MaxValue, short.MinValue, 7, 8, 128, 2048, 255];
                    int at = random.Next(span / 2) * 2;
                    BinaryPrimitives.WriteInt16LittleEndian(file.AsSpan(at), extremes[random.Next(extremes.Length)]);
                    if (random.Next(2) == 0) (file[at], file[at + 1]) = (file[at + 1], file[at]);
                    break;
                }
            default: // an extreme 32/64-bit value (offsets, NIfTI-2 dims, floats)
                {
                    long[] extremes = [0, -1, 1, int.MaxValue, int.MinValue, long.MaxValue, 0x7fc00000 /* NaN */, 0x7f800000 /* inf */, 1 << 20];
                    int at = random.Next(Math.Max(1, (span - 8) / 4)) * 4;
                    long value = extremes[random.Next(extremes.Length)];
                    if (random.Next(2) == 0) BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(at), (int)value);
                    else BinaryPrimitives.WriteInt64LittleEndian(file.AsSpan(at), value);
                    break;
                }
        }
    }

    private static bool SameDataFields(NiftiHeader a, NiftiHeader b) =>
        a.Version == b.Version && a.IsBigEndian == b.IsBigEndian && a.IsPair == b.IsPair && a.DataType == b.DataType &&
        a.VoxOffset == b.VoxOffset && a.Dim.Take(a.Rank + 1).SequenceEqual(b.Dim.Take(b.Rank + 1));
}
