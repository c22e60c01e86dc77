using System.Buffers.Binary;
using System.IO.Compression;
using BrainSeg.Mri;
using BrainSeg.Mri.IO;
using BrainSeg.Mri.Labels;
using BrainSeg.Tests.Training;
using NUnit.Framework;

namespace BrainSeg.Tests.BadInput;

/// <summary>
/// Files are read only as far as their header declares, and only regular files are read: a small file that
/// inflates to gigabytes, a stream without its footer, a FIFO or a device are refused in one line with
/// memory bounded by the declared image.
/// </summary>
public class BoundedReadingTests
{
    /// <summary>A valid 2×2×2 uint8 NIfTI-1 file (348-byte header, 4-byte extender, 8 voxels).</summary>
    static byte[] TinyNifti()
    {
        var h = new byte[352 + 8];
        BinaryPrimitives.WriteInt32LittleEndian(h, 348);
        short[] dim = [3, 2, 2, 2, 1, 1, 1, 1];
        for (int i = 0; i < 8; i++) BinaryPrimitives.WriteInt16LittleEndian(h.AsSpan(40 + 2 * i), dim[i]);
        BinaryPrimitives.WriteInt16LittleEndian(h.AsSpan(70), 2); // uint8
        BinaryPrimitives.WriteInt16LittleEndian(h.AsSpan(72), 8);
        for (int i = 0; i < 8; i++) BinaryPrimitives.WriteSingleLittleEndian(h.AsSpan(76 + 4 * i), 1);
        BinaryPrimitives.WriteSingleLittleEndian(h.AsSpan(108), 352);
        BinaryPrimitives.WriteSingleLittleEndian(h.AsSpan(112), 1);
        "n+1\0"u8.CopyTo(h.AsSpan(344));
        for (int i = 0; i < 8; i++) h[352 + i] = (byte)i;
        return h;
    }

    /// <summary>A valid 2×2×2 uint8 MGH file.</summary>
    static byte[] TinyMgh()
    {
        var h = new byte[284 + 8];
        BinaryPrimitives.WriteInt32BigEndian(h, 1);
        foreach (int o in new[] { 4, 8, 12 }) BinaryPrimitives.WriteInt32BigEndian(h.AsSpan(o), 2);
        BinaryPrimitives.WriteInt32BigEndian(h.AsSpan(16), 1);
        return h;
    }

    /// <summary>The file gzipped, followed inside the same stream by <paramref name="zeros"/> zero bytes.</summary>
    static void WriteGzip(string path, byte[] content, long zeros = 0)
    {
        using var file = File.Create(path);
        using var gz = new GZipStream(file, CompressionLevel.Optimal);
        gz.Write(content);
        var block = new byte[1 << 20];
        for (long left = zeros; left > 0; left -= block.Length) gz.Write(block, 0, (int)Math.Min(block.Length, left));
    }

    [TestCase("bomb.nii.gz")]
    [TestCase("bomb.mgz")]
    public void ASmallFileThatInflatesFarPastItsDeclaredSizeIsRefusedWithBoundedMemory(string name)
    {
        using var folder = new RunFolder();
        string path = folder.File(name);
        WriteGzip(path, name.EndsWith(".mgz") ? TinyMgh() : TinyNifti(), zeros: 64L << 20);
        Assert.That(new FileInfo(path).Length, Is.LessThan(1 << 20), "a small file");
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ImageFormatException>(() => ImageReader.Read(path))!;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(e.Message, Does.Contain("beyond"));
        Assert.That(allocated, Is.LessThan(4L << 20), "memory follows the declared 8 voxels, not the 64 MiB the stream inflates to");
        Cli.Refused(["nifti-info", path], name);
    }

    [Test]
    public void AFewZerosPastTheDeclaredDataAreAccepted()
    {
        using var folder = new RunFolder();
        string path = folder.File("padded.nii.gz");
        WriteGzip(path, TinyNifti(), zeros: 100);
        Assert.That(ImageReader.Read(path).Data, Is.EqualTo(new byte[] { 0, 1, 2, 3, 4, 5, 6, 7 }));
    }

    [Test]
    public void AGzipStreamWithoutItsFooterOrWithABadChecksumIsRefused()
    {
        using var folder = new RunFolder();
        string good = folder.File("good.nii.gz");
        WriteGzip(good, TinyNifti());
        byte[] gz = File.ReadAllBytes(good);
        Assert.That(ImageReader.Read(good).Data, Has.Length.EqualTo(8));

        File.WriteAllBytes(folder.File("nofooter.nii.gz"), gz[..^8]);
        Cli.Refused(["nifti-info", folder.File("nofooter.nii.gz")], "nofooter.nii.gz", "footer");
        byte[] badLength = (byte[])gz.Clone();
        badLength[^1] ^= 1;
        File.WriteAllBytes(folder.File("badlength.nii.gz"), badLength);
        Cli.Refused(["nifti-info", folder.File("badlength.nii.gz")], "badlength.nii.gz");
        byte[] badCrc = (byte[])gz.Clone();
        badCrc[^8] ^= 1;
        File.WriteAllBytes(folder.File("badcrc.nii.gz"), badCrc);
        Cli.Refused(["nifti-info", folder.File("badcrc.nii.gz")], "badcrc.nii.gz");
    }

    [Test]
    public void AHeaderDeclaringMoreThanTheLimitIsRefusedBeforeAllocating()
    {
        using var folder = new RunFolder();
        byte[] nifti = TinyNifti();
        short[] dim = [3, 32767, 32767, 32767];
        for (int i = 0; i < dim.Length; i++) BinaryPrimitives.WriteInt16LittleEndian(nifti.AsSpan(40 + 2 * i), dim[i]);
        string path = folder.File("huge.nii.gz");
        WriteGzip(path, nifti);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Cli.Refused(["nifti-info", path], "huge.nii.gz");
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(8L << 20));
    }

    [Test]
    public void FoldersDevicesAndFifosAreNotRead()
    {
        using var folder = new RunFolder();
        Cli.Refused(["nifti-info", folder.Path], "folder");
        if (!OperatingSystem.IsLinux())
            Assert.Ignore("FIFOs and /dev/zero are checked on Linux.");
        Cli.Refused(["nifti-info", "/dev/zero"], "/dev/zero", "not a regular file");
        string fifo = folder.File("x.nii");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", fifo)) mkfifo.WaitForExit();
        var run = Task.Run(() => Cli.Run(["nifti-info", fifo]));
        Assert.That(run.Wait(TimeSpan.FromSeconds(20)), Is.True, "a FIFO must not block the reader");
        Assert.That(run.Result.Error, Does.Contain("not a regular file"));
        Assert.That(run.Result.Code, Is.EqualTo(2));
    }

    [Test]
    public void ALabelTableOfMoreThan256ClassesIsRefused()
    {
        using var folder = new RunFolder();
        string path = folder.File("many.tsv");
        var names = Enumerable.Range(0, 300).Select(i => i == 0 ? "0 background" : $"{i} c{i}");
        File.WriteAllText(path, "# classes, in output order: " + string.Join(", ", names) + "\n1\tc1\n");
        var e = Assert.Throws<ImageFormatException>(() => LabelTable.Load(path))!;
        Assert.That(e.Message, Does.Contain("300 classes").And.Contain("256"));
        Assert.That(() => LabelTable.Load("/dev/zero"), Throws.InstanceOf<BadInputException>());
    }
}
