using System.Buffers.Binary;
using System.Text;
using BrainSeg.Engine;
using BrainSeg.Mri;
using BrainSeg.Seg.Checkpoints;
using BrainSeg.Seg.Training;
using NUnit.Framework;
using static BrainSeg.Tests.Training.TrainingFixtures;

namespace BrainSeg.Tests.Training;

public class CheckpointTests
{
    [Test]
    public void SafetensorsLayoutIsTheHandCheckedOne()
    {
        using var folder = new RunFolder();
        var path = folder.File("t.safetensors");
        var a = new SafeTensor("a", DType.Float32, [2, 3], Bytes([0f, 1f, 2f, 3f, 4f, 5f]));
        var b = new SafeTensor("b", DType.Int32, [1], BitConverter.GetBytes(7));
        SafeTensors.Write(path, [a, b], new Dictionary<string, string> { ["k"] = "v" });

        var file = File.ReadAllBytes(path);
        const string json = """{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"I32","shape":[1],"data_offsets":[24,28]}}""";
        var padded = (json.Length + 7) / 8 * 8;
        Assert.That(BinaryPrimitives.ReadUInt64LittleEndian(file), Is.EqualTo((ulong)padded), "u64 little-endian header length, padded to 8");
        Assert.That(Encoding.UTF8.GetString(file, 8, padded), Is.EqualTo(json.PadRight(padded)));
        Assert.That(file.Length, Is.EqualTo(8 + padded + 28));
        Assert.That(BitConverter.ToSingle(file, 8 + padded + 4 * 5), Is.EqualTo(5f), "a[1,2], row-major little-endian");
        Assert.That(BitConverter.ToInt32(file, 8 + padded + 24), Is.EqualTo(7));
        Assert.That(File.Exists(path + ".tmp"), Is.False, "the temporary file is renamed away");

        var (tensors, metadata) = SafeTensors.Read(path);
        Assert.That(tensors.Select(t => t.Name), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(tensors[0].Shape, Is.EqualTo(new[] { 2, 3 }));
        Assert.That(tensors[0].Values<float>(), Is.EqualTo(new[] { 0f, 1f, 2f, 3f, 4f, 5f }));
        Assert.That(tensors[1].Values<int>(), Is.EqualTo(new[] { 7 }));
        Assert.That(metadata, Is.EqualTo(new Dictionary<string, string> { ["k"] = "v" }));
    }

    private static byte[] Bytes(float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    [Test]
    public void TruncatedOrCorruptFilesAreClearErrors()
    {
        using var folder = new RunFolder();
        var path = folder.File("t.safetensors");
        SafeTensors.Write(path, [new SafeTensor("a", DType.Float32, [4], Bytes([1f, 2f, 3f, 4f]))], new Dictionary<string, string>());
        var good = File.ReadAllBytes(path);

        File.WriteAllBytes(path, good[..^4]);
        Assert.That(() => SafeTensors.Read(path), Throws.TypeOf<InvalidDataException>().With.Message.Contains("truncated").And.Message.Contains(path));
        File.WriteAllBytes(path, good[..12]);
        Assert.That(() => SafeTensors.Read(path), Throws.TypeOf<InvalidDataException>().With.Message.Contains("truncated"));
        File.WriteAllBytes(path, good[..5]);
        Assert.That(() => SafeTensors.Read(path), Throws.TypeOf<InvalidDataException>().With.Message.Contains("8-byte"));
        var garbled = (byte[])good.Clone();
        garbled[9] = (byte)'!';
        File.WriteAllBytes(path, garbled);
        Assert.That(() => SafeTensors.Read(path), Throws.TypeOf<InvalidDataException>().With.Message.Contains("not JSON"));
        File.WriteAllBytes(path, [.. good, 0, 0, 0, 0]);
        Assert.That(() => SafeTensors.Read(path), Throws.TypeOf<InvalidDataException>().With.Message.Contains("after the last tensor"));
    }

    [Test]
    public void CheckpointRoundTripRestoresWeightsStatisticsAndBothOptimisersBitForBit()
    {
        using var folder = new RunFolder();
        var options = new TrainingOptions { Adversarial = true, Batch = 6, Seed = 9 };
        using var trainer = Tiny(options);
        trainer.Iterate(trainer.EpochBatches(0).First());
        var path = folder.File("c.safetensors");
        trainer.SaveCheckpoint(path);

        using var restored = Trainer.Resume(Host, Phantom(), path, null, TinyNetwork.Create);
        var expected = trainer.CheckpointTensors();
        var actual = restored.CheckpointTensors();
        Assert.That(actual.Select(t => t.Name), Is.EqualTo(expected.Select(t => t.Name)));
        for (var i = 0; i < expected.Count; i++)
            Assert.That(actual[i].Data, Is.EqualTo(expected[i].Data), expected[i].Name);
        // The state is really there: running statistics moved, and both optimisers hold non-zero mean squares.
        Assert.That(expected.Select(t => t.Name), Has.Some.Contains("running_mean"));
        Assert.That(expected.Where(t => t.Name.StartsWith("optimizer.segmentation.")).SelectMany(t => t.Values<float>()), Has.Some.GreaterThan(0));
        Assert.That(expected.Where(t => t.Name.StartsWith("optimizer.discriminator.discriminator.")).SelectMany(t => t.Values<float>()), Has.Some.GreaterThan(0));
        Assert.That(expected.Where(t => t.Name.StartsWith("optimizer.discriminator.segmenter_adversarial.")).SelectMany(t => t.Values<float>()), Has.Some.GreaterThan(0));
        Assert.That(restored.Random.Offset, Is.EqualTo(trainer.Random.Offset));
        Assert.That(restored.Options, Is.EqualTo(trainer.Options with { }));
        var meta = SafeTensors.Read(path).Metadata;
        Assert.That(meta["scheme"], Is.EqualTo("adversarial"));
        Assert.That(meta["ld_inputs"], Is.EqualTo("manual"));
        Assert.That(meta["lr_seg_adversarial"], Is.EqualTo("1E-05"));
    }

    [Test]
    public void AnInterruptedAndResumedRunEndsBitIdenticalToAnUninterruptedOne()
    {
        // 14 patches per epoch (2 per class, 7 classes), batch 6: two adversarial iterations per epoch, two epochs.
        var options = new TrainingOptions { Adversarial = true, Batch = 6, PatchesPerClass = 2, Epochs = 2, Seed = 21, LogEvery = 1 };
        using var straight = new RunFolder();
        using (var trainer = Tiny(options))
            Assert.That(trainer.Run(straight.Path), Is.EqualTo(TrainingOutcome.Completed));

        using var interrupted = new RunFolder();
        using (var cancel = new CancellationTokenSource())
        using (var trainer = Tiny(options))
        {
            // Stop in the middle of the first epoch, as Ctrl-C would.
            var outcome = trainer.Run(interrupted.Path, p => { if (p.GlobalIteration == 1) cancel.Cancel(); }, cancel.Token);
            Assert.That(outcome, Is.EqualTo(TrainingOutcome.Interrupted));
            Assert.That(File.Exists(interrupted.File(Trainer.ModelFile)), Is.False);
        }
        using (var trainer = Trainer.Resume(Host, Phantom(), interrupted.File(Trainer.CheckpointFile), null, TinyNetwork.Create))
        {
            Assert.That((trainer.Epoch, trainer.Iteration), Is.EqualTo((0, 1L)));
            Assert.That(trainer.Run(interrupted.Path), Is.EqualTo(TrainingOutcome.Completed));
        }

        var a = SafeTensors.Read(straight.File(Trainer.ModelFile)).Tensors;
        var b = SafeTensors.Read(interrupted.File(Trainer.ModelFile)).Tensors;
        Assert.That(b.Select(t => t.Name), Is.EqualTo(a.Select(t => t.Name)));
        for (var i = 0; i < a.Count; i++)
            Assert.That(b[i].Data, Is.EqualTo(a[i].Data), a[i].Name);
        // The log of the resumed run has every iteration once.
        Assert.That(TrainingLog.Read(interrupted.File(Trainer.LogFile)).Select(r => r.Iteration), Is.EqualTo(new long[] { 1, 2, 3, 4 }));
        Assert.That(TrainingLog.Read(interrupted.File(Trainer.LogFile)).Select(r => r.Ls), Is.EqualTo(TrainingLog.Read(straight.File(Trainer.LogFile)).Select(r => r.Ls)));
    }

    [Test]
    public void ACheckpointOfAnotherClassCountIsRefused()
    {
        using var folder = new RunFolder();
        using (var trainer = Tiny(new TrainingOptions()))
            trainer.SaveCheckpoint(folder.File("c.safetensors"));
        Assert.That(() => Trainer.Resume(Host, Phantom(classes: 8), folder.File("c.safetensors"), null, TinyNetwork.Create),
            Throws.TypeOf<BadInputException>().With.Message.Contains("7 classes"));
    }

    [Test]
    public void ANonFiniteLossStopsTheRunNamingTheLossAndTheCheckpoint()
    {
        using var folder = new RunFolder();
        // An absurd rate blows the weights up within a few iterations.
        using var trainer = Tiny(new TrainingOptions { Batch = 6, PatchesPerClass = 30, Epochs = 1, LearningRateSegmentation = 1e30, DropoutP = 0 });
        Assert.That(() => trainer.Run(folder.Path),
            Throws.TypeOf<TrainingDivergedException>().With.Message.Contains("Ls").And.Message.Contains("iteration"));
        Assert.That(File.Exists(folder.File(Trainer.ModelFile)), Is.False);
    }

    [Test]
    public void TheModelFileCarriesBatchNormStatisticsOfTheFinalWeights()
    {
        using var run = new RunFolder();
        using (var trainer = Tiny(new TrainingOptions { Batch = 6, PatchesPerClass = 4, Epochs = 1 }))
            Assert.That(trainer.Run(run.Path), Is.EqualTo(TrainingOutcome.Completed));
        var (checkpoint, _) = SafeTensors.Read(Path.Combine(run.Path, Trainer.CheckpointFile));
        var (model, _) = SafeTensors.Read(Path.Combine(run.Path, Trainer.ModelFile));
        var saved = model.ToDictionary(t => t.Name);
        Assert.That(checkpoint.Count(t => t.Name.Contains("running_")), Is.GreaterThan(0), "the test network must have batch norm");
        foreach (var t in checkpoint)
        {
            var same = t.Data.AsSpan().SequenceEqual(saved[t.Name].Data);
            if (t.Name.Contains("running_"))
                Assert.That(same, Is.False, $"{t.Name}: the model file should hold re-estimated statistics, not the running averages");
            else
                Assert.That(same, Is.True, $"{t.Name}: re-estimating batch-norm statistics must not touch {t.Name}");
        }
    }
}
