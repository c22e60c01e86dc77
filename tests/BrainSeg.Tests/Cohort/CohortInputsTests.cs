using BrainSeg.Mri;
using BrainSeg.Seg.Inference;
using BrainSeg.Tests.Mri;
using NUnit.Framework;

namespace BrainSeg.Tests.Cohort;

/// <summary>Finding a cohort's images, naming their outputs and dealing them into shards.</summary>
public class CohortInputsTests
{
    [Test]
    public void ShardsPartitionAnyListExactlyOnceAndEvenly()
    {
        var random = new Random(4);
        for (int trial = 0; trial < 200; trial++)
        {
            int length = random.Next(0, 60), count = random.Next(1, 9);
            var items = Enumerable.Range(0, length).Select(_ => random.Next(1000)).ToArray(); // duplicates allowed
            var shares = Enumerable.Range(0, count).Select(i => new Shard(i, count).Take(items.Select((v, at) => (v, at))).ToList()).ToList();
            var positions = shares.SelectMany(s => s.Select(x => x.at)).OrderBy(x => x).ToArray();
            Assert.That(positions, Is.EqualTo(Enumerable.Range(0, length).ToArray()), $"{length} items in {count} shards: each exactly once");
            Assert.That(shares.Max(s => s.Count) - shares.Min(s => s.Count), Is.LessThanOrEqualTo(1), "shares within one item of each other");
        }
    }

    [TestCase("0/1", 0, 1)]
    [TestCase("3/4", 3, 4)]
    public void AShardParses(string text, int index, int count) => Assert.That(Shard.Parse(text), Is.EqualTo(new Shard(index, count)));

    [TestCase("4/4")]
    [TestCase("-1/4")]
    [TestCase("1/0")]
    [TestCase("1")]
    [TestCase("a/b")]
    public void ABadShardIsRefusedNamingTheOption(string text) =>
        Assert.That(() => Shard.Parse(text), Throws.TypeOf<BadInputException>().With.Message.Contains("--shard").And.Message.Contains(text));

    [Test]
    public void AFolderIsSearchedRecursivelyForImagesInSortedOrderLeavingOutTheOutputFolder()
    {
        using var folder = new TempFolder();
        foreach (var name in new[] { "sub-b/anat/T1.nii.gz", "sub-a/T1.mgz", "z.nii", "pair.hdr", "pair.img", "notes.txt", ".hidden/x.nii", "out/old.nii.gz", "c.mgh.gz" })
            CohortFixtures.WriteBroken(folder.Path, name);
        var found = CohortInputs.Discover(folder.Path, exclude: folder.File("out"));
        Assert.That(found.Select(i => i.RelativePath), Is.EqualTo(new[] { "c.mgh.gz", "pair.hdr", "sub-a/T1.mgz", "sub-b/anat/T1.nii.gz", "z.nii" }));
        Assert.That(found.All(i => File.Exists(i.Path)));
    }

    [Test]
    public void AGlobTakesItsMatchesRelativeToItsFixedFolder()
    {
        using var folder = new TempFolder();
        foreach (var name in new[] { "s1/T1.nii.gz", "s2/T1.nii.gz", "s2/seg.nii.gz", "s3/deep/T1.nii.gz" })
            CohortFixtures.WriteBroken(folder.Path, name);
        Assert.That(CohortInputs.Discover(Path.Combine(folder.Path, "*/T1.nii.gz")).Select(i => i.RelativePath), Is.EqualTo(new[] { "s1/T1.nii.gz", "s2/T1.nii.gz" }));
        Assert.That(CohortInputs.Discover(Path.Combine(folder.Path, "**/T1.nii.gz")).Select(i => i.RelativePath), Is.EqualTo(new[] { "s1/T1.nii.gz", "s2/T1.nii.gz", "s3/deep/T1.nii.gz" }));
    }

    [Test]
    public void AManifestListsPathsRelativeToItsFolder()
    {
        using var folder = new TempFolder();
        using var elsewhere = new TempFolder();
        CohortFixtures.WriteBroken(folder.Path, "b/T1.nii.gz");
        string outside = CohortFixtures.WriteBroken(elsewhere.Path, "far.mgz");
        File.WriteAllText(folder.File("list.csv"), $"subject,input\ns2,b/T1.nii.gz\ns1,\"{outside}\"\n");
        var found = CohortInputs.Discover(folder.File("list.csv"));
        Assert.That(found.Select(i => i.RelativePath), Is.EqualTo(new[] { "b/T1.nii.gz", "far.mgz" }));
        Assert.That(found[0].Path, Is.EqualTo(folder.File("b/T1.nii.gz")));
    }

    [Test]
    public void AManifestWithoutAnInputColumnIsRefused()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder.File("list.csv"), "path\na.nii.gz\n");
        Assert.That(() => CohortInputs.Discover(folder.File("list.csv")), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("'input' column"));
    }

    [Test]
    public void AnEmptyFolderIsRefused()
    {
        using var folder = new TempFolder();
        Assert.That(() => CohortInputs.Discover(folder.Path), Throws.InstanceOf<FileNotFoundException>().With.Message.Contains("no NIfTI or MGH/MGZ image"));
    }

    [TestCase("a/T1.nii.gz", "a/T1.nii.gz")]
    [TestCase("a/T1.nii", "a/T1.nii")]
    [TestCase("T1.mgz", "T1.nii.gz")]
    [TestCase("T1.mgh", "T1.nii")]
    [TestCase("T1.MGH.GZ", "T1.nii.gz")]
    [TestCase("T1.hdr", "T1.nii")]
    [TestCase("T1.hdr.gz", "T1.nii.gz")]
    public void AnOutputIsNamedAfterItsInput(string relative, string expected) =>
        Assert.That(CohortInputs.OutputPath(new CohortInput("/in/" + relative, relative), "/out"), Is.EqualTo("/out/" + expected));

    [Test]
    public void APlanNeverWritesOverAnInput()
    {
        using var folder = new TempFolder();
        CohortFixtures.WriteBroken(folder.Path, "a.nii.gz");
        var cohort = CohortInputs.Discover(folder.Path);
        Assert.That(() => CohortSegmenter.Plan(cohort, folder.Path, Shard.All, skipExisting: false),
            Throws.TypeOf<BadInputException>().With.Message.Contains("is an input image"));
    }

    [Test]
    public void APlanNeverWritesOverAnotherInputThroughALinkedFolder()
    {
        using var folder = new TempFolder();
        CohortFixtures.WriteBroken(folder.Path, "in/a.nii.gz");
        Directory.CreateSymbolicLink(folder.File("link"), folder.File("in"));
        var cohort = CohortInputs.Discover(folder.File("in"));
        Assert.That(() => CohortSegmenter.Plan(cohort, folder.File("link"), Shard.All, skipExisting: false),
            Throws.TypeOf<BadInputException>().With.Message.Contains("is an input image"));
    }

    [Test]
    public void AFileReachedThroughALinkedParentFolderIsTheSameFile()
    {
        using var folder = new TempFolder();
        CohortFixtures.WriteBroken(folder.Path, "real/sub/a.nii.gz");
        Directory.CreateSymbolicLink(folder.File("link"), "real");
        Assert.That(RealPath.Of(folder.File("link/sub/a.nii.gz")), Is.EqualTo(RealPath.Of(folder.File("real/sub/a.nii.gz"))));
        Assert.That(RealPath.Of(folder.File("link/sub/new.nii.gz")), Is.EqualTo(RealPath.Of(folder.File("real/sub/new.nii.gz"))), "a file that does not exist yet");
        Assert.That(RealPath.Of(folder.File("link/sub/a.nii.gz")), Is.Not.EqualTo(RealPath.Of(folder.File("real/sub/b.nii.gz"))));
    }

    [Test]
    public void AnMgzInputBesideANiftiOfTheSameNameIsRefusedBeforeItCouldOverwriteIt()
    {
        using var folder = new TempFolder();
        CohortFixtures.WriteBroken(folder.Path, "in/a.nii.gz");
        CohortFixtures.WriteBroken(folder.Path, "in/a.mgz");
        var cohort = CohortInputs.Discover(folder.File("in"));
        Assert.That(() => CohortSegmenter.Plan(cohort, folder.File("out"), Shard.All, skipExisting: false),
            Throws.TypeOf<BadInputException>().With.Message.Contains("would both be written to"));
    }

    [Test]
    public void ThePlansOfAllShardsCoverTheCohortOnce()
    {
        using var folder = new TempFolder();
        for (int i = 0; i < 11; i++) CohortFixtures.WriteBroken(folder.Path, $"s{i % 3}/img{i}.nii.gz");
        var cohort = CohortInputs.Discover(folder.Path);
        var planned = Enumerable.Range(0, 4).SelectMany(i => CohortSegmenter.Plan(cohort, folder.File("out"), new Shard(i, 4), false)).Select(j => j.Input.Path).ToList();
        Assert.That(planned, Is.EquivalentTo(cohort.Select(i => i.Path)));
        Assert.That(planned.Distinct().Count(), Is.EqualTo(11));
    }
}
