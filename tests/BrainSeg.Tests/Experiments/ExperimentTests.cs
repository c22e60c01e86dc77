using System.IO.Compression;
using BrainSeg.Engine.Cpu;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Mri.Phantom;
using BrainSeg.Mri;
using BrainSeg.Seg.Data;
using BrainSeg.Seg.Experiments;
using BrainSeg.Seg.Reports;
using BrainSeg.Seg.Training;
using BrainSeg.Tests.Training;
using NUnit.Framework;

namespace BrainSeg.Tests.Experiments;

public class ExperimentTests
{
    internal static LabelledImage Phantom(ulong seed, int size = 24)
    {
        var p = SyntheticPhantom.Generate(size, seed);
        return new LabelledImage($"phantom{seed}", p.Image, p.Classes);
    }

    [Test]
    public void TinyDemoRunsEndToEndAndWritesTheReport()
    {
        string outDir = Path.Combine(Path.GetTempPath(), $"brainseg-demo-test-{Guid.NewGuid():N}");
        try
        {
            var options = new ExperimentOptions
            {
                Networks = [NetworkKind.Fcn],
                Training = TrainingOptions.Paper with { Epochs = 1, PatchesPerClass = 6, Batch = 12 },
                NetworkFactory = TinyNetwork.Create,
                Validation = new Validation(Phantom(5), SyntheticPhantom.ClassNames, IntensityNormalisation.Default, BrainSeg.Mri.Geometry.Plane.Axial, every: 1, maxSlices: 4),
            };
            var result = ExperimentRunner.Run(CpuBackend.Instance, [Phantom(1)], [Phantom(3), Phantom(4)], SyntheticPhantom.ClassNames,
                IntensityNormalisation.Default, outDir, options, figures: null, log: null, dataDescription: "test phantoms");
            Assert.That(File.Exists(result.ReportPath));
            string report = File.ReadAllText(result.ReportPath);
            Assert.That(report, Does.Contain("| Dice WM |"));
            Assert.That(report, Does.Contain("overlay-fcn.png"));
            Assert.That(report, Does.Contain("**Smaller than the paper's protocol.**"), "a run shorter than the paper's says its comparison is no evidence");
            Assert.That(report, Does.Contain("**control**"), "the method notes explain the arms");
            var network = result.Networks.Single();
            Assert.That(network.Evaluations.Keys, Is.EqualTo(new[] { Arm.Baseline, Arm.Control, Arm.Adversarial }));
            Assert.That(network.Evaluations.Values.Select(e => e.Count), Is.All.EqualTo(2));
            Assert.That(network.Comparisons.Select(c => (c.Other, c.Reference)), Is.EqualTo(new[] { (Arm.Baseline, Arm.Adversarial), (Arm.Control, Arm.Adversarial) }),
                "the adversarial arm is tested against each other arm");
            Assert.That(network.Comparisons.SelectMany(c => c.Comparison.Rows).All(r => r.Test.P is >= 0 and <= 1));
            Assert.That(File.ReadAllLines(Path.Combine(outDir, "results.csv")), Has.Length.EqualTo(1 + 3 * 2 * 7));
            foreach (var f in new[] { "overlay-fcn.png", "comparison-fcn-baseline-vs-adversarial.csv", "comparison-fcn-control-vs-adversarial.csv", "runs/fcn-baseline/model.safetensors",
                         "runs/fcn-control/log.csv", "runs/fcn-adversarial/log.csv", "evaluations/fcn-adversarial/phantom4.json" })
                Assert.That(File.Exists(Path.Combine(outDir, f)), f);
            // Validation every iteration: every row of the log carries a mean Dice and a component count.
            var rows = TrainingLog.Read(Path.Combine(outDir, "runs/fcn-control/log.csv"));
            Assert.That(rows, Is.Not.Empty);
            Assert.That(rows.All(r => r.ValidationDice is >= 0 and <= 1 && r.Components >= 1), string.Join("; ", rows));
            Assert.That(Directory.GetFiles(outDir, "*.tmp", SearchOption.AllDirectories), Is.Empty, "no temporary files left behind");
        }
        finally
        {
            if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
        }
    }

    [Test]
    public void HeldOutSlabIsNeverInTheTrainingBlocks()
    {
        var subject = Phantom(2, 20);
        var (training, test) = Slabs.HoldOut(subject, BrainSeg.Mri.Geometry.Plane.Axial, 8, 11);
        int axis = BrainSeg.Mri.Geometry.Orientation.SliceAxis(subject.Image.Affine, BrainSeg.Mri.Geometry.Plane.Axial);
        Assert.That(training.Select(t => t.Image.Size(axis)), Is.EqualTo(new[] { 8, 8 }));
        Assert.That(test.Slices, Is.EqualTo((8, 11)));
        // The block above starts at slice 12: its first voxel is the subject's voxel at slice 12, and its affine says so.
        var above = training[1].Image;
        int[] at = [0, 0, 0];
        at[axis] = 12;
        Assert.That(above[0, 0, 0], Is.EqualTo(subject.Image[at[0], at[1], at[2]]));
        Assert.That(above.Affine.Apply(0, 0, 0), Is.EqualTo(subject.Image.Affine.Apply(at[0], at[1], at[2])));
        Assert.That(() => Slabs.HoldOut(subject, BrainSeg.Mri.Geometry.Plane.Axial, 0, 19), Throws.TypeOf<BadInputException>().With.Message.Contains("every slice"));
        Assert.That(() => Slabs.HoldOut(subject, BrainSeg.Mri.Geometry.Plane.Axial, 15, 25), Throws.TypeOf<BadInputException>().With.Message.Contains("outside"));
    }

    [Test]
    public void PngHasValidChunksAndDecodesToThePixels()
    {
        Assert.That(Png.Crc32.Compute("IEND"u8), Is.EqualTo(0xAE426082u), "the CRC every PNG ends with");
        byte[] rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90];
        byte[] png = Png.EncodeRgb(rgb, 3, 2);
        Assert.That(png.AsSpan(0, 8).ToArray(), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }));
        // Walk the chunks, check each CRC, collect IDAT.
        int at = 8;
        var idat = new MemoryStream();
        var types = new List<string>();
        while (at < png.Length)
        {
            int length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            string type = System.Text.Encoding.ASCII.GetString(png, at + 4, 4);
            uint crc = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at + 8 + length));
            Assert.That(crc, Is.EqualTo(Png.Crc32.Compute(png.AsSpan(at + 4, 4 + length))), type);
            if (type == "IDAT") idat.Write(png, at + 8, length);
            types.Add(type);
            at += 12 + length;
        }
        Assert.That(types, Is.EqualTo(new[] { "IHDR", "IDAT", "IEND" }));
        idat.Position = 0;
        using var inflated = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionMode.Decompress)) z.CopyTo(inflated);
        byte[] raw = inflated.ToArray();
        Assert.That(raw, Is.EqualTo(new byte[] { 0 }.Concat(rgb[..9]).Concat(new byte[] { 0 }).Concat(rgb[9..]).ToArray()));
    }

    [Test]
    public void OverlayUsesThePapersColours()
    {
        Assert.That(Overlay.ColourOf("WM", 1), Is.EqualTo(((byte)40, (byte)90, (byte)230)));
        Assert.That(Overlay.ColourOf("lvCSF", 6).R, Is.EqualTo(255));
        var p = SyntheticPhantom.Generate(16, 1);
        byte[] png = Overlay.RenderPng(p.Image, [p.Classes], p.ClassNames, BrainSeg.Mri.Geometry.Plane.Axial, 8, scale: 1);
        int width = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16));
        Assert.That(width, Is.EqualTo(2 * 16 + 4), "image panel, one label panel, a 4-pixel gap");
    }
}
