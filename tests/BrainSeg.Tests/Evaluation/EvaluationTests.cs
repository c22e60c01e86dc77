using BrainSeg.Mri;
using BrainSeg.Mri.Geometry;
using BrainSeg.Seg.Evaluation;
using NUnit.Framework;

namespace BrainSeg.Tests.Evaluation;

public class ConnectedComponentsTests
{
    static byte[] Empty(int n) => new byte[n * n * n];
    static void Set(byte[] v, int n, int x, int y, int z, byte value) => v[x + n * (y + n * z)] = value;

    [TestCase(6, 2)]
    [TestCase(18, 1)]
    [TestCase(26, 1)]
    public void TwoVoxelsSharingAnEdge(int connectivity, int expected)
    {
        var v = Empty(3);
        Set(v, 3, 0, 0, 1, 1);
        Set(v, 3, 1, 1, 1, 1);
        var counts = ConnectedComponents.CountPerClass(v, 3, 3, 3, 2, connectivity);
        Assert.That(counts[1], Is.EqualTo(expected));
        Assert.That(counts[0], Is.EqualTo(1), "the background around them is one piece");
    }

    [TestCase(6, 2)]
    [TestCase(18, 2)]
    [TestCase(26, 1)]
    public void TwoVoxelsSharingOnlyACorner(int connectivity, int expected)
    {
        var v = Empty(2);
        Set(v, 2, 0, 0, 0, 1);
        Set(v, 2, 1, 1, 1, 1);
        Assert.That(ConnectedComponents.CountPerClass(v, 2, 2, 2, 2, connectivity)[1], Is.EqualTo(expected));
    }

    [Test]
    public void BackgroundInsideAClosedShellIsASecondComponent()
    {
        // A 3x3x3 cube of class 1 whose centre is background, inside a 5x5x5 background volume.
        var v = Empty(5);
        for (int z = 1; z <= 3; z++)
            for (int y = 1; y <= 3; y++)
                for (int x = 1; x <= 3; x++)
                    Set(v, 5, x, y, z, 1);
        Set(v, 5, 2, 2, 2, 0);
        var six = ConnectedComponents.CountPerClass(v, 5, 5, 5, 3, 6);
        Assert.That(six, Is.EqualTo(new[] { 2, 1, 0 }));
        Assert.That(ConnectedComponents.CountPerClass(v, 5, 5, 5, 3, 26), Is.EqualTo(new[] { 2, 1, 0 }));
    }

    [Test]
    public void DiagonalStaircaseOfClassTwoAcrossSlices()
    {
        // Voxels (i, i, i) for i = 0..3: four pieces with faces, one with corners; (i, i, 0) two-step edges: one with 18.
        var v = Empty(4);
        for (int i = 0; i < 4; i++) Set(v, 4, i, i, i, 2);
        Assert.That(ConnectedComponents.CountPerClass(v, 4, 4, 4, 3, 6)[2], Is.EqualTo(4));
        Assert.That(ConnectedComponents.CountPerClass(v, 4, 4, 4, 3, 18)[2], Is.EqualTo(4));
        Assert.That(ConnectedComponents.CountPerClass(v, 4, 4, 4, 3, 26)[2], Is.EqualTo(1));
    }

    [Test]
    public void UShapeJoinsLateInTheRasterOrder()
    {
        // Two columns of class 1 that meet only in the last slice: provisional labels must merge.
        const int n = 5;
        var v = Empty(n);
        for (int z = 0; z < n; z++) { Set(v, n, 0, 2, z, 1); Set(v, n, 4, 2, z, 1); }
        for (int x = 0; x < n; x++) Set(v, n, x, 2, n - 1, 1);
        Assert.That(ConnectedComponents.CountPerClass(v, n, n, n, 2, 6), Is.EqualTo(new[] { 1, 1 }));
    }

    [TestCase(6)]
    [TestCase(18)]
    [TestCase(26)]
    public void MatchesBreadthFirstSearchOnRandomVolumes(int connectivity)
    {
        var random = new Random(1234 + connectivity);
        for (int trial = 0; trial < 5; trial++)
        {
            int nx = 7 + trial, ny = 9, nz = 6 + 2 * trial;
            var v = new byte[nx * ny * nz];
            for (int i = 0; i < v.Length; i++) v[i] = (byte)(random.NextDouble() < 0.55 ? 0 : random.Next(1, 4));
            Assert.That(ConnectedComponents.CountPerClass(v, nx, ny, nz, 4, connectivity),
                Is.EqualTo(BreadthFirstCounts(v, nx, ny, nz, 4, connectivity)), $"trial {trial}");
        }
    }

    [Test]
    public void A256CubedVolumeIsCountedQuickly()
    {
        const int n = 256;
        var v = new byte[n * n * n];
        // Slabs of alternating classes along z plus isolated voxels: 3 classes, known counts.
        for (int z = 0; z < n; z++)
            v.AsSpan(z * n * n, n * n).Fill((byte)((z / 32) % 2));
        Set(v, n, 100, 100, 5, 2);
        Set(v, n, 200, 10, 40, 2);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var counts = ConnectedComponents.CountPerClass(v, n, n, n, 3, 26);
        watch.Stop();
        Assert.That(counts, Is.EqualTo(new[] { 4, 4, 2 }));
        Assert.That(watch.Elapsed.TotalSeconds, Is.LessThan(8), "one raster pass over 16.7M voxels");
    }

    [Test]
    public void RejectsUnknownConnectivityAndOutOfRangeLabels()
    {
        var v = Empty(2);
        Assert.That(() => ConnectedComponents.CountPerClass(v, 2, 2, 2, 2, 8), Throws.TypeOf<BadInputException>().With.Message.Contains("6 (faces)"));
        v[3] = 5;
        Assert.That(() => ConnectedComponents.CountPerClass(v, 2, 2, 2, 2, 6), Throws.TypeOf<BadInputException>().With.Message.Contains("Label 5"));
    }

    static int[] BreadthFirstCounts(byte[] v, int nx, int ny, int nz, int classes, int connectivity)
    {
        var seen = new bool[v.Length];
        var counts = new int[classes];
        var queue = new Queue<int>();
        for (int start = 0; start < v.Length; start++)
        {
            if (seen[start]) continue;
            counts[v[start]]++;
            seen[start] = true;
            queue.Enqueue(start);
            while (queue.Count > 0)
            {
                int i = queue.Dequeue();
                int x = i % nx, y = i / nx % ny, z = i / (nx * ny);
                for (int dz = -1; dz <= 1; dz++)
                    for (int dy = -1; dy <= 1; dy++)
                        for (int dx = -1; dx <= 1; dx++)
                        {
                            int order = Math.Abs(dx) + Math.Abs(dy) + Math.Abs(dz);
                            if (order == 0 || (connectivity == 6 && order > 1) || (connectivity == 18 && order > 2)) continue;
                            int a = x + dx, b = y + dy, c = z + dz;
                            if (a < 0 || b < 0 || c < 0 || a >= nx || b >= ny || c >= nz) continue;
                            int j = a + nx * (b + ny * c);
                            if (seen[j] || v[j] != v[start]) continue;
                            seen[j] = true;
                            queue.Enqueue(j);
                        }
            }
        }
        return counts;
    }
}

public class DiceAndEvaluationTests
{
    [Test]
    public void DiceOfHandCountedOverlaps()
    {
        byte[] pred = [0, 1, 1, 1, 2, 2, 0, 0];
        byte[] refr = [0, 1, 1, 2, 2, 0, 0, 0];
        // Class 1: |P|=3, |R|=2, both 2 → 4/5. Class 2: |P|=2, |R|=2, both 1 → 1/2. Class 0: |P|=3, |R|=4, both 3 → 6/7.
        Assert.That(SegmentationEvaluation.Dice(pred, refr, 1), Is.EqualTo(0.8).Within(1e-12));
        Assert.That(SegmentationEvaluation.Dice(pred, refr, 2), Is.EqualTo(0.5).Within(1e-12));
        Assert.That(SegmentationEvaluation.Dice(pred, refr, 0), Is.EqualTo(6.0 / 7).Within(1e-12));
        Assert.That(SegmentationEvaluation.Dice(pred, refr, 3), Is.EqualTo(1.0), "absent from both");
    }

    [Test]
    public void EvaluateReportsMeanDiceComponentsAndMillilitres()
    {
        // 2x2x2 voxels of 2 mm: 8 mm³ = 0.008 mL each.
        byte[] pred = [0, 1, 1, 1, 2, 2, 0, 0];
        byte[] refr = [0, 1, 1, 2, 2, 0, 0, 0];
        var affine = Affine.Diagonal(2, 2, 2);
        var p = new Volume(pred.Select(b => (float)b).ToArray(), 2, 2, 2, affine);
        var r = new Volume(refr.Select(b => (float)b).ToArray(), 2, 2, 2, affine);
        var result = SegmentationEvaluation.Evaluate(p, r, ["background", "A", "B"], null, 6, "p", "r");
        Assert.That(result.MeanDice, Is.EqualTo(0.65).Within(1e-12));
        Assert.That(result.Classes[1].PredictedVolumeMl, Is.EqualTo(0.024).Within(1e-12));
        Assert.That(result.Classes[0].ReferenceVolumeMl, Is.EqualTo(0.032).Within(1e-12));
        // pred: class 1 at (1,0,0),(0,1,0),(1,1,0) one piece; class 2 at (0,0,1),(1,0,1) one; background (0,0,0) and (0,1,1),(1,1,1): two.
        Assert.That(result.Classes.Select(c => c.PredictedComponents), Is.EqualTo(new[] { 2, 1, 1 }));
        Assert.That(result.PredictedComponentsTotal, Is.EqualTo(4));

        var back = EvaluationResult.FromJson(result.ToJson(), "x.json");
        Assert.That(back.MeanDice, Is.EqualTo(result.MeanDice));
        Assert.That(back.Classes, Is.EqualTo(result.Classes));
    }

    [Test]
    public void DifferentGridsAreAnError()
    {
        var a = new Volume(new float[8], 2, 2, 2, Affine.Identity);
        var b = new Volume(new float[8], 2, 2, 2, Affine.Diagonal(1, 1, 1.5));
        var c = new Volume(new float[12], 2, 2, 3, Affine.Identity);
        Assert.That(() => SegmentationEvaluation.Evaluate(a, b, ["bg", "x"], null, 6, "p", "r"), Throws.TypeOf<BadInputException>().With.Message.Contains("different grids"));
        Assert.That(() => SegmentationEvaluation.Evaluate(a, c, ["bg", "x"], null, 6, "p", "r"), Throws.TypeOf<BadInputException>().With.Message.Contains("different grids"));
    }

    [Test]
    public void NonClassValuesAreRejectedWithTheFix()
    {
        var a = new Volume([0, 1, 2.5f, 0, 0, 0, 0, 0], 2, 2, 2, Affine.Identity);
        var b = new Volume(new float[8], 2, 2, 2, Affine.Identity);
        Assert.That(() => SegmentationEvaluation.Evaluate(a, b, ["bg", "x", "y"], null, 6, "p", "r"),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains("--label-map"));
    }
}
