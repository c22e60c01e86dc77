using BrainSeg.Mri;
using BrainSeg.Mri.IO;
using BrainSeg.Seg.Inference;
using BrainSeg.Tests.Mri;
using NUnit.Framework;

namespace BrainSeg.Tests.Cohort;

/// <summary>Segmenting a cohort through the pipeline: the same label maps as one at a time, failures recorded, reruns resumed.</summary>
public class CohortSegmenterTests
{
    static bool AnyImageError(Exception e) => e is ImageFormatException or IOException or ArgumentException;

    [Test]
    public void ThePipelineWritesTheLabelMapsOfOneAtATimeAndTheClassVolumes()
    {
        using var folder = new TempFolder();
        using var model = CohortFixtures.TinyModel();
        string[] names = ["a.nii.gz", "b/b.nii", "c.nii.gz", "d.nii.gz"];
        foreach (var n in names) CohortFixtures.WriteImage(folder.File("in"), n, nz: 2 + n.Length % 3);
        var jobs = CohortSegmenter.Plan(CohortInputs.Discover(folder.File("in")), folder.File("out"), Shard.All, skipExisting: true);
        var seen = new List<string>();
        var rows = CohortSegmenter.Run(model, jobs, batchSlices: 2, AnyImageError, row => seen.Add(row.Input));

        Assert.That(rows.Select(r => r.Status), Is.All.EqualTo(CohortStatus.Done));
        Assert.That(seen, Is.EqualTo(names.Select(n => folder.File("in/" + n))), "rows come in cohort order");
        foreach (var (row, name) in rows.Zip(names))
        {
            Assert.That(row.Output, Is.EqualTo(folder.File("out/" + name)));
            var image = ImageReader.Read(folder.File("in/" + name)).GetVolume();
            var expected = VolumeSegmenter.Segment(model, image, batchSlices: 3).Classes;
            var written = ImageReader.Read(row.Output);
            Assert.That(written.DataType, Is.EqualTo(NiftiDataType.UInt8));
            Assert.That(written.Data, Is.EqualTo(expected), $"{name}: the pipeline's label map is the single-volume one");
            Assert.That(ClassNamesMetadata.Read(written.Header), Is.EqualTo(new[] { "c0", "c1", "c2" }));
            for (int c = 0; c < 3; c++)
                Assert.That(row.VolumesMl![c], Is.EqualTo(expected.Count(v => v == c) * CohortFixtures.VoxelMl).Within(1e-4).Percent, $"{name}, class {c} in mL (the header keeps voxel sizes in float32)");
        }
    }

    [Test]
    public void AFailingInputIsRecordedAndTheRestGoOnThenARerunSkipsTheFinishedOnes()
    {
        using var folder = new TempFolder();
        using var model = CohortFixtures.TinyModel();
        CohortFixtures.WriteImage(folder.File("in"), "a.nii.gz");
        CohortFixtures.WriteBroken(folder.File("in"), "b.nii.gz");
        CohortFixtures.WriteImage(folder.File("in"), "c.nii");
        var inputsBefore = CohortFixtures.Snapshot(folder.File("in"));
        var cohort = CohortInputs.Discover(folder.File("in"));

        var first = CohortSegmenter.Run(model, CohortSegmenter.Plan(cohort, folder.File("out"), Shard.All, true), 2, AnyImageError);
        Assert.That(first.Select(r => r.Status), Is.EqualTo(new[] { CohortStatus.Done, CohortStatus.Failed, CohortStatus.Done }));
        Assert.That(first[1].Message, Does.Contain("b.nii.gz"));
        Assert.That(File.Exists(folder.File("out/b.nii.gz")), Is.False, "no output for a failed input");
        var finished = File.GetLastWriteTimeUtc(folder.File("out/a.nii.gz"));

        // The broken input is fixed; the rerun segments only it.
        CohortFixtures.WriteImage(folder.File("in"), "b.nii.gz");
        var plan = CohortSegmenter.Plan(cohort, folder.File("out"), Shard.All, true);
        Assert.That(plan.Select(j => j.Skip), Is.EqualTo(new[] { true, false, true }));
        var second = CohortSegmenter.Run(model, plan, 2, AnyImageError);
        Assert.That(second.Select(r => (Path.GetFileName(r.Input), r.Status)),
            Is.EqualTo(new[] { ("a.nii.gz", CohortStatus.Skipped), ("c.nii", CohortStatus.Skipped), ("b.nii.gz", CohortStatus.Done) }));
        Assert.That(File.GetLastWriteTimeUtc(folder.File("out/a.nii.gz")), Is.EqualTo(finished), "a finished label map is not written again");
        Assert.That(File.Exists(folder.File("out/b.nii.gz")));
        Assert.That(CohortFixtures.Snapshot(folder.File("in")).Keys, Is.EquivalentTo(inputsBefore.Keys), "no file appears among the inputs");
    }

    [Test]
    public void TheNextImageIsReadAheadAndNoMoreThanThreeAreHeldAtOnce()
    {
        using var folder = new TempFolder();
        using var model = CohortFixtures.TinyModel();
        // Images large enough that each segmentation leaves a read on another thread time to start.
        for (int i = 0; i < 8; i++) CohortFixtures.WriteImage(folder.File("in"), $"s{i}.nii.gz", 24, 24, 8);
        var plan = CohortSegmenter.Plan(CohortInputs.Discover(folder.File("in")), folder.File("out"), Shard.All, true);
        int started = 0, reported = 0, mostHeld = 0;
        MriImage Read(string path)
        {
            // Images read (or being read) whose label map is not written yet: the ones in memory.
            int held = Interlocked.Increment(ref started) - Volatile.Read(ref reported);
            InterlockedMax(ref mostHeld, held);
            return ImageReader.Read(path);
        }
        var rows = CohortSegmenter.Run(model, plan, 2, AnyImageError, _ => Interlocked.Increment(ref reported), Read);
        Assert.That(rows.Select(r => r.Status), Is.All.EqualTo(CohortStatus.Done));
        Assert.That(mostHeld, Is.EqualTo(CohortSegmenter.VolumesInFlight),
            "image k+1 is read before the label map of k−1 is reported (overlap), and never image k+2 (bound)");
    }

    static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
    }

    [Test]
    public void AnErrorThatIsNotAnInputProblemEndsTheRun()
    {
        using var folder = new TempFolder();
        using var model = CohortFixtures.TinyModel();
        CohortFixtures.WriteBroken(folder.File("in"), "a.nii.gz");
        var plan = CohortSegmenter.Plan(CohortInputs.Discover(folder.File("in")), folder.File("out"), Shard.All, true);
        Assert.That(() => CohortSegmenter.Run(model, plan, 2, _ => false), Throws.InstanceOf<ImageFormatException>());
    }

    [Test]
    public void TheSummaryHasARowPerImageInCohortOrderWithVolumesInMl()
    {
        var rows = new[]
        {
            new CohortRow("/in/a, b.nii.gz", "/out/a, b.nii.gz", CohortStatus.Done, 0.5, 2.25, 0.125, [1.5, 0.0018], ""),
            new CohortRow("/in/c.nii.gz", "/out/c.nii.gz", CohortStatus.Failed, 0.01, 0, 0, null, "c.nii.gz: not \"NIfTI\""),
        };
        var jobs = rows.Select(r => new CohortJob(new CohortInput(r.Input, Path.GetFileName(r.Input)), r.Output, false)).ToList();
        var lines = CohortSegmenter.SummaryCsv(["background", "WM"], jobs, rows.Reverse()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Is.EqualTo(new[]
        {
            "input,output,status,read_seconds,segment_seconds,write_seconds,background_ml,WM_ml,message",
            "\"/in/a, b.nii.gz\",\"/out/a, b.nii.gz\",done,0.5,2.25,0.125,1.5,0.002,",
            "/in/c.nii.gz,/out/c.nii.gz,failed,0.01,0,0,,,\"c.nii.gz: not \"\"NIfTI\"\"\"",
        }).Using<string>((a, b) => string.CompareOrdinal(a.TrimEnd('\r'), b)));
    }

    [Test]
    public void TheRealImagesOfTheSharedDataAreSegmentedOrReportedOneByOne()
    {
        SharedData.Require("nifti/expected.json");
        using var folder = new TempFolder();
        using var model = CohortFixtures.TinyModel();
        var cohort = CohortInputs.Discover(SharedData.NiftiFolder);
        var before = CohortFixtures.Snapshot(SharedData.NiftiFolder);
        var rows = CohortSegmenter.Run(model, CohortSegmenter.Plan(cohort, folder.Path, Shard.All, true), 8, AnyImageError);
        Assert.That(rows.Count, Is.EqualTo(cohort.Count));
        var failed = rows.Where(r => r.Status == CohortStatus.Failed).Select(r => Path.GetFileName(r.Input)).ToList();
        Assert.That(failed, Does.Contain("not-nifti.nii"), "the file that is not NIfTI fails on its own");
        Assert.That(rows.Count(r => r.Status == CohortStatus.Done), Is.GreaterThan(cohort.Count / 2), string.Join("; ", rows.Select(r => $"{r.Input}: {r.Status} {r.Message}")));
        var after = CohortFixtures.Snapshot(SharedData.NiftiFolder);
        Assert.That(after.Keys, Is.EquivalentTo(before.Keys));
        foreach (var (path, (bytes, written)) in before)
            Assert.That(after[path].Written, Is.EqualTo(written), $"{path} untouched");
    }
}
