using System.Buffers.Binary;
using System.Text;
using BrainSeg.Cli.Common;
using BrainSeg.Engine;
using BrainSeg.Seg.Checkpoints;
using BrainSeg.Seg.Inference;
using BrainSeg.Seg.Training;
using BrainSeg.Tests.Training;
using NUnit.Framework;
using static BrainSeg.Tests.Training.TrainingFixtures;

namespace BrainSeg.Tests.BadInput;

/// <summary>
/// A model or checkpoint is trusted only after every metadata value is in range and every tensor fits the
/// file: mutated metadata, wrapped shapes, invalid UTF-8 and special files end in one line and exit 2,
/// before a network is built from them.
/// </summary>
public class ModelFileTests
{
    /// <summary>A model of the tiny test network (untrained: only its form matters here).</summary>
    static string WriteModel(RunFolder folder, Action<Dictionary<string, string>>? mutate = null)
    {
        string path = folder.File("model.safetensors");
        using var trainer = Tiny(new TrainingOptions { Batch = 6, PatchesPerClass = 30, Epochs = 1 });
        var metadata = trainer.CheckpointMetadata();
        mutate?.Invoke(metadata);
        SafeTensors.Write(path, trainer.CheckpointTensors(), metadata);
        return path;
    }

    [Test]
    public void TheUnmutatedModelLoads()
    {
        using var folder = new RunFolder();
        using var model = SegmentationModel.Load(Host, WriteModel(folder), TinyNetwork.Create);
        Assert.That(model.ClassNames, Has.Count.EqualTo(7));
    }

    [TestCase("classes", "100000000")]
    [TestCase("classes", "2000000000")]
    [TestCase("classes", "1")]
    [TestCase("classes", "-7")]
    [TestCase("classes", "seven")]
    [TestCase("epochs", "99999999999")]
    [TestCase("patches_per_class", "99999999999")]
    [TestCase("batch", "0")]
    [TestCase("seed", "99999999999999999999999")]
    [TestCase("checkpoint_minutes", "1e300")]
    [TestCase("lr_seg", "NaN")]
    [TestCase("dropout", "1")]
    [TestCase("epoch", "2")]
    [TestCase("iteration", "-1")]
    [TestCase("random_offset", "18446744073709551616")]
    [TestCase("network", "resnet")]
    [TestCase("plane", "oblique")]
    [TestCase("normalisation", "percentile:99:1")]
    [TestCase("format", "brainseg-checkpoint/0")]
    public void AnOutOfRangeMetadataValueIsRefusedBeforeTheNetworkIsBuilt(string key, string value)
    {
        using var folder = new RunFolder();
        string path = WriteModel(folder, m => m[key] = value);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => SegmentationModel.Load(Host, path, TinyNetwork.Create))!;
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(16L << 20), "nothing is built from the value");
        Assert.That(e.Message, Does.Contain(key == "format" ? "format" : key));
        Assert.That(() => Trainer.Resume(Host, Phantom(), path, null, TinyNetwork.Create), Throws.TypeOf<InvalidDataException>());
        Cli.Refused(["segment", "--model", path, "-i", Image(folder), "-o", folder.File("seg.nii"), "--device", "cpu"], "model.safetensors");
    }

    [Test]
    public void AMissingMetadataKeyIsNamed()
    {
        using var folder = new RunFolder();
        string path = WriteModel(folder, m => m.Remove("classes"));
        Assert.That(() => SegmentationModel.Load(Host, path, TinyNetwork.Create), Throws.TypeOf<InvalidDataException>().With.Message.Contains("'classes'"));
    }

    [Test]
    public void AShapeWhoseProductWrapsAroundIsRefused()
    {
        using var folder = new RunFolder();
        // 65536^4 × 4 bytes is 2^66: it wraps to 0 in 64 bits and would pass for an empty tensor.
        string path = RawFile(folder, """{"a":{"dtype":"F32","shape":[65536,65536,65536,65536],"data_offsets":[0,0]}}"""u8.ToArray());
        Assert.That(() => SafeTensors.Read(path), Throws.TypeOf<InvalidDataException>().With.Message.Contains("'a'"));
    }

    [Test]
    public void InvalidUtf8InAMetadataValueIsRefused()
    {
        using var folder = new RunFolder();
        byte[] json = [.. """{"__metadata__":{"format":"x"""u8, 0xFF, 0xFE, .. "\"}}"u8];
        string path = RawFile(folder, json);
        Assert.That(() => SafeTensors.Read(path), Throws.TypeOf<InvalidDataException>());
        Cli.Refused(["segment", "--model", path, "-i", Image(folder), "-o", folder.File("seg.nii"), "--device", "cpu"], "model.safetensors");
    }

    [Test]
    public void SpecialFilesAreNotReadAsModels()
    {
        using var folder = new RunFolder();
        Cli.Refused(["segment", "--model", folder.Path, "-i", Image(folder), "-o", folder.File("seg.nii"), "--device", "cpu"], "folder");
        if (!OperatingSystem.IsLinux()) Assert.Ignore("/dev/zero is checked on Linux.");
        long before = GC.GetAllocatedBytesForCurrentThread();
        Cli.Refused(["segment", "--model", "/dev/zero", "-i", Image(folder), "-o", folder.File("seg.nii"), "--device", "cpu"], "/dev/zero");
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(16L << 20));
    }

    static string Image(RunFolder folder)
    {
        string path = folder.File("t1.nii");
        if (!File.Exists(path)) Cli.WriteImage(path);
        return path;
    }

    /// <summary>A safetensors file of the given header JSON (space-padded) and no data.</summary>
    static string RawFile(RunFolder folder, byte[] json)
    {
        int padded = (json.Length + 7) / 8 * 8;
        var bytes = new byte[8 + padded];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)padded);
        json.CopyTo(bytes, 8);
        bytes.AsSpan(8 + json.Length).Fill((byte)' ');
        string path = folder.File("model.safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
