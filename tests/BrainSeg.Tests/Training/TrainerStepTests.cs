using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Mri;
using BrainSeg.Seg.Training;
using NUnit.Framework;
using static BrainSeg.Tests.Training.TrainingFixtures;

namespace BrainSeg.Tests.Training;

/// <summary>The three updates of the paper, each checked for the direction it moves its parameters.</summary>
public class TrainerStepTests
{
    /// <summary>The first <paramref name="count"/> patches of the trainer's first minibatch (its batch must hold them).</summary>
    private static (Tensor Images, Tensor Labels) Batch(Trainer trainer, int count) =>
        trainer.UploadPatches(trainer.EpochBatches(0).First(), 0, count);

    [Test]
    public void OneLsStepLowersTheSegmentationLossOnAFixedBatch()
    {
        using var trainer = Tiny(new TrainingOptions { DropoutP = 0, Seed = 3, Batch = 8 });
        var (images, labels) = Batch(trainer, 8);
        using (images)
        using (labels)
        {
            var before = trainer.SegmentationStep(images, labels);
            var after = SegmentationLoss(trainer, images, labels);
            TestContext.Out.WriteLine($"Ls {before} → {after}");
            Assert.That(after, Is.LessThan(before));
        }
    }

    [Test]
    public void LsFallsOverAShortBaselineRun()
    {
        // 12 patches per class of 7 classes: ten full minibatches of 8.
        using var trainer = Tiny(new TrainingOptions { Seed = 4, Batch = 8, PatchesPerClass = 12 });
        var losses = trainer.EpochBatches(0).Where(b => b.Count == 8).Select(b => trainer.Iterate(b).Segmentation).ToList();
        Assert.That(losses, Has.Count.EqualTo(10));
        TestContext.Out.WriteLine(string.Join(" ", losses.Select(l => l.ToString("F3"))));
        Assert.That(losses.Skip(7).Average(), Is.LessThan(losses.Take(3).Average()));
    }

    [Test]
    public void TheLaStepAscendsForTheSegmenterAndDescendsForTheDiscriminator()
    {
        // Paper defaults for the rates: θd and θs both move at 1e-5 in the La step.
        using var trainer = Tiny(new TrainingOptions { Adversarial = true, DropoutP = 0, Seed = 6, Batch = 9 });
        Assert.That(trainer.AdversarialSegmenterGroup!.GradScale, Is.EqualTo(-1), "θs must be stepped with an explicit gradient scale of −1");
        var segmenter = trainer.Segmenter.Parameters().ToArray();
        var discriminator = trainer.Discriminator!.Parameters().ToArray();
        var (images, labels) = Batch(trainer, 8);
        using (images)
        using (labels)
        {
            // The gradients of La at the starting point (no update).
            float[] gs, gd;
            double la0;
            using (var tape = new Tape(Host))
            {
                var loss = AdversarialLoss(trainer, tape, images);
                la0 = loss.ToHost<float>()[0];
                trainer.DiscriminatorOptimizer!.ZeroGrad();
                tape.Backward(loss);
                gs = Flatten(segmenter.Select(p => p.Grad!));
                gd = Flatten(discriminator.Select(p => p.Grad!));
            }
            var (s0, d0) = (Flatten(segmenter), Flatten(discriminator));

            var reported = trainer.AdversarialStep(images);
            Assert.That(reported, Is.EqualTo(la0).Within(1e-6), "the step reports La before its update");
            var (s1, d1) = (Flatten(segmenter), Flatten(discriminator));

            // RMSprop moves each value by −lr·scale·g/√(r+ε): along +g for θs (ascent), along −g for θd (descent).
            AssertMovesAlong(s1, s0, gs, +1, "θs");
            AssertMovesAlong(d1, d0, gd, -1, "θd");

            // And the loss itself: new θs with old θd raises La; old θs with new θd lowers it.
            Upload(discriminator, d0);
            var withNewSegmenter = AdversarialLoss(trainer, images);
            Upload(discriminator, d1);
            Upload(segmenter, s0);
            var withNewDiscriminator = AdversarialLoss(trainer, images);
            TestContext.Out.WriteLine($"La {la0}: new θs {withNewSegmenter}, new θd {withNewDiscriminator}");
            Assert.That(withNewSegmenter, Is.GreaterThan(la0), "θs must ascend La");
            Assert.That(withNewDiscriminator, Is.LessThan(la0), "θd must descend La");
        }
    }

    private static void AssertMovesAlong(float[] after, float[] before, float[] gradient, int sign, string what)
    {
        int moved = 0, wrong = 0;
        double dot = 0;
        for (var i = 0; i < after.Length; i++)
        {
            var delta = (double)after[i] - before[i];
            dot += delta * gradient[i];
            if (delta == 0 || gradient[i] == 0) continue;
            moved++;
            if (Math.Sign(delta) != sign * Math.Sign(gradient[i])) wrong++;
        }
        Assert.That(moved, Is.GreaterThan(after.Length / 2), $"{what}: most values should move");
        Assert.That(wrong, Is.Zero, $"{what}: every moved value should go {(sign > 0 ? "up" : "down")} the gradient");
        Assert.That(Math.Sign(dot), Is.EqualTo(sign), $"{what}: Δθ·∇La");
    }

    [Test]
    public void TheNonSaturatingOptionDescendsTheFlippedLabelInstead()
    {
        using var trainer = Tiny(new TrainingOptions { Adversarial = true, NonSaturating = true, DropoutP = 0, Seed = 6, Batch = 9 });
        Assert.That(trainer.AdversarialSegmenterGroup!.GradScale, Is.EqualTo(1));
        var segmenter = trainer.Segmenter.Parameters().ToArray();
        var (images, labels) = Batch(trainer, 8);
        using (images)
        using (labels)
        {
            var s0 = Flatten(segmenter);
            var la0 = AdversarialLoss(trainer, images);
            trainer.AdversarialStep(images);
            // Against the updated discriminator, the updated θs makes La (target "generated") rise: it fools it better.
            var after = AdversarialLoss(trainer, images);
            Upload(segmenter, s0);
            var oldSegmenter = AdversarialLoss(trainer, images);
            TestContext.Out.WriteLine($"La {la0}; new θd: old θs {oldSegmenter}, new θs {after}");
            Assert.That(after, Is.GreaterThan(oldSegmenter));
        }
    }

    [Test]
    public void TheLdStepTrainsOnlyTheDiscriminatorTowardsManual()
    {
        using var trainer = Tiny(new TrainingOptions { Adversarial = true, DropoutP = 0, Seed = 7, LearningRateDiscriminator = 1e-4, Batch = 9 });
        var segmenter = trainer.Segmenter.Parameters().ToArray();
        var discriminator = trainer.Discriminator!.Parameters().ToArray();
        var (images, labels) = Batch(trainer, 8);
        using (images)
        using (labels)
        {
            var (s0, d0) = (Flatten(segmenter), Flatten(discriminator));
            var msBefore = Flatten(trainer.DiscriminatorOptimizer!.NamedState().Where(s => s.Name.StartsWith("segmenter", StringComparison.Ordinal)).Select(s => s.Tensor));
            var ld0 = trainer.DiscriminatorStep(images, labels);
            var ld1 = trainer.DiscriminatorStep(images, labels);
            Assert.That(Flatten(segmenter), Is.EqualTo(s0), "Ld must not touch θs");
            Assert.That(Flatten(trainer.DiscriminatorOptimizer!.NamedState().Where(s => s.Name.StartsWith("segmenter", StringComparison.Ordinal)).Select(s => s.Tensor)),
                Is.EqualTo(msBefore), "nor θs's RMSprop state");
            Assert.That(Flatten(discriminator), Is.Not.EqualTo(d0));
            Assert.That(ld1, Is.LessThan(ld0));
        }
    }

    [Test]
    public void LdWithGeneratedShowsBothKinds()
    {
        using var trainer = Tiny(new TrainingOptions { Adversarial = true, DiscriminatorSeesGenerated = true, Seed = 8, Batch = 6 });
        var (images, labels) = Batch(trainer, 6);
        using (images)
        using (labels)
        {
            var ld = trainer.DiscriminatorStep(images, labels);
            Assert.That(ld, Is.GreaterThan(0.1).And.LessThan(5));
        }
        Assert.That(trainer.CheckpointMetadata()["ld_inputs"], Is.EqualTo("manual+generated"));
    }

    [Test]
    public void BadOptionsAreRefusedWithTheirName()
    {
        Assert.That(() => new TrainingOptions { Adversarial = true, Batch = 100 }.Validate(),
            Throws.TypeOf<BadInputException>().With.Message.Contains("--batch"));
        Assert.That(() => new TrainingOptions { LearningRateDiscriminator = -1 }.Validate(),
            Throws.TypeOf<BadInputException>().With.Message.Contains("--lr-disc"));
    }

    [Test]
    public void LossesReadAnIterationLateEqualThoseOfIterationsReadAtOnce()
    {
        var options = new TrainingOptions { Seed = 6, Batch = 9, PatchesPerClass = 6, Adversarial = true };
        using var atOnce = Tiny(options);
        using var late = Tiny(options);
        var batches = atOnce.EpochBatches(0).Where(b => b.Count == 9).Take(4).ToList();
        var expected = batches.Select(atOnce.Iterate).ToList();
        var read = new List<Losses>();
        Trainer.PendingLosses? pending = null;
        foreach (var b in batches)
        {
            var queued = late.Enqueue(b);
            if (pending is not null) read.Add(pending.Read());
            pending = queued;
        }
        read.Add(pending!.Read());
        Assert.That(read, Is.EqualTo(expected));
        Assert.That(expected.All(l => double.IsFinite(l.Segmentation) && double.IsFinite(l.Discriminator) && double.IsFinite(l.Adversarial)));
        Assert.That(Flatten(late.Segmenter.Parameters()), Is.EqualTo(Flatten(atOnce.Segmenter.Parameters())));

        // A pending read two iterations back would see another iteration's values: it must refuse.
        var old = late.Enqueue(batches[0]);
        late.Enqueue(batches[1]);
        late.Enqueue(batches[2]);
        Assert.That(() => old.Read(), Throws.InvalidOperationException);
    }
}
