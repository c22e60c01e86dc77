using BrainSeg.Cli.Commands;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Mri.Phantom;
using BrainSeg.Seg.Data;
using BrainSeg.Seg.Experiments;
using BrainSeg.Seg.Training;
using NUnit.Framework;
using static BrainSeg.Tests.Training.TrainingFixtures;

namespace BrainSeg.Tests.Training;

/// <summary>The paper's defaults in one place, the control arm, and validation during training.</summary>
public class ArmsAndValidationTests
{
    [Test]
    public void TheDefaultsAreThePapers()
    {
        var paper = TrainingOptions.Paper;
        Assert.That((paper.Epochs, paper.PatchesPerClass, paper.Batch), Is.EqualTo((5, 50_000, 300)));
        Assert.That((paper.LearningRateSegmentation, paper.LearningRateDiscriminator), Is.EqualTo((1e-3, 1e-5)));
        Assert.That(paper.ForArm(Arm.Adversarial).SegmentationBatch, Is.EqualTo(100), "300 = 3 × 100 in adversarial training");
        Assert.That(paper.ForArm(Arm.Adversarial).AdversarialSegmentationRate, Is.EqualTo(1e-5));
        Assert.That(new ExperimentOptions().Training, Is.EqualTo(paper));
        Assert.That(new ExperimentOptions().Arms, Is.EqualTo(new[] { Arm.Baseline, Arm.Control, Arm.Adversarial }));
    }

    [Test]
    public void ExperimentAndTrainParseToThePapersProtocol()
    {
        var shared = SharedOptions.Create(TrainingOptions.Paper, "the paper's");
        var experiment = ExperimentCommand.Create(shared);
        var parsed = experiment.Parse(["--train", "a.nii:b.nii", "--label-map", "m.tsv", "--out", "x"]);
        Assert.That(parsed.Errors, Is.Empty);
        Assert.That(experiment.Options.Select(o => o.Name), Is.SupersetOf(new[] { "--arms", "--val", "--val-slices", "--threads", "--quick" }));
        Assert.That(shared.Read(parsed).Training, Is.EqualTo(TrainingOptions.Paper));
        var quick = shared.Read(experiment.Parse(["--train", "a.nii:b.nii", "--label-map", "m.tsv", "--out", "x", "--quick"])).Training;
        Assert.That(quick, Is.EqualTo(ExperimentOptions.Quick));
        Assert.That(quick.Epochs * quick.PatchesPerClass, Is.LessThan(TrainingOptions.Paper.Epochs * TrainingOptions.Paper.PatchesPerClass));
        Assert.That(experiment.Description, Does.Contain("patches/s"), "--help states what the protocol costs");

        var train = TrainCommand.Create();
        int Default(string name) => train.Parse(["--data", "phantom", "--out", "x"]).GetValue<int>(name);
        Assert.That((Default("--epochs"), Default("--batch")), Is.EqualTo((TrainingOptions.Paper.Epochs, TrainingOptions.Paper.Batch)));
    }

    [Test]
    public void ArmsParseAndRoundTrip()
    {
        Assert.That(TrainingOptions.Paper.ForArm(Arm.Baseline).Arm, Is.EqualTo(Arm.Baseline));
        Assert.That(TrainingOptions.Paper.ForArm(Arm.Control).Arm, Is.EqualTo(Arm.Control));
        Assert.That(TrainingOptions.Paper.ForArm(Arm.Control).ForArm(Arm.Adversarial).Arm, Is.EqualTo(Arm.Adversarial));
        Assert.That(TrainingOptions.ParseArm(" Control"), Is.EqualTo(Arm.Control));
        Assert.That(() => TrainingOptions.ParseArm("ablation"), Throws.TypeOf<BrainSeg.Mri.BadInputException>().With.Message.Contains("--arms"));
        // The checkpoint metadata carries the control arm as θs's La rate 0, and reads it back.
        using var control = Tiny(new TrainingOptions { Seed = 21, Batch = 12, PatchesPerClass = 12 }.ForArm(Arm.Control));
        Assert.That(BrainSeg.Seg.Checkpoints.CheckpointMetadata.Read(control.CheckpointMetadata(), "m").Options.Arm, Is.EqualTo(Arm.Control));
    }

    [Test]
    public void TheControlArmRunsTheAdversarialScheduleWithoutMovingThetaSInLa()
    {
        var options = new TrainingOptions { Seed = 21, Batch = 12, PatchesPerClass = 12 };
        using var adversarial = Tiny(options.ForArm(Arm.Adversarial));
        using var control = Tiny(options.ForArm(Arm.Control));
        Assert.That(control.AdversarialSegmenterGroup!.LearningRate, Is.EqualTo(0));
        Assert.That(control.Discriminator, Is.Not.Null);
        var batch = adversarial.EpochBatches(0).First();
        Assert.That(control.EpochBatches(0).First().Images, Is.EqualTo(batch.Images), "the same minibatches");

        // Ls and Ld of the first iteration: the same state in, the same bits out.
        int third = batch.Count / 3;
        foreach (var trainer in new[] { adversarial, control })
        {
            var (images, labels) = trainer.UploadPatches(batch, 0, third);
            using (images) using (labels) trainer.SegmentationStep(images, labels);
            (images, labels) = trainer.UploadPatches(batch, third, third);
            using (images) using (labels) trainer.DiscriminatorStep(images, labels);
        }
        Assert.That(Flatten(control.Segmenter.Parameters()), Is.EqualTo(Flatten(adversarial.Segmenter.Parameters())));
        var segmenterBefore = Flatten(control.Segmenter.Parameters());

        // La: the discriminator learns identically, the random stream advances identically, only θs differs.
        double laAdversarial, laControl;
        var (a, _) = adversarial.UploadPatches(batch, 2 * third, third);
        using (a) laAdversarial = adversarial.AdversarialStep(a);
        var (c, _) = control.UploadPatches(batch, 2 * third, third);
        using (c) laControl = control.AdversarialStep(c);
        Assert.That(laControl, Is.EqualTo(laAdversarial));
        Assert.That(Flatten(control.Discriminator!.Parameters()), Is.EqualTo(Flatten(adversarial.Discriminator!.Parameters())), "θd trained the same");
        Assert.That(Flatten(control.Segmenter.NamedBuffers().Select(b => b.Tensor)), Is.EqualTo(Flatten(adversarial.Segmenter.NamedBuffers().Select(b => b.Tensor))), "the same training-mode passes (batch-norm statistics)");
        Assert.That(control.Random.Offset, Is.EqualTo(adversarial.Random.Offset), "the same dropout draws");
        Assert.That(Flatten(control.Segmenter.Parameters()), Is.EqualTo(segmenterBefore), "the control's La step leaves θs as it was");
        Assert.That(Flatten(adversarial.Segmenter.Parameters()), Is.Not.EqualTo(segmenterBefore), "the adversarial La step moves θs");
    }

    [Test]
    public void ValidationAddsLogRowsWithoutChangingTheTrainedBits()
    {
        var options = new TrainingOptions { Seed = 23, Batch = 12, PatchesPerClass = 12, Epochs = 1, LogEvery = 3, Adversarial = true };
        var phantom = SyntheticPhantom.Generate(24, 7);
        var validation = new Validation(new LabelledImage("val", phantom.Image, phantom.Classes), phantom.ClassNames, IntensityNormalisation.Default, Plane.Axial, every: 2, maxSlices: 4);
        Assert.That(validation.Slices.Last - validation.Slices.First + 1, Is.EqualTo(4));
        using var plainFolder = new RunFolder();
        using var validatedFolder = new RunFolder();
        byte[] plain, validated;
        using (var trainer = Tiny(options))
        {
            trainer.Run(plainFolder.Path);
            plain = File.ReadAllBytes(plainFolder.File(Trainer.ModelFile));
        }
        long iterations;
        using (var trainer = Tiny(options))
        {
            trainer.Run(validatedFolder.Path, validation: validation);
            validated = File.ReadAllBytes(validatedFolder.File(Trainer.ModelFile));
            iterations = trainer.GlobalIteration;
        }
        Assert.That(validated.Length, Is.EqualTo(plain.Length));
        Assert.That(TensorBytes(validated), Is.EqualTo(TensorBytes(plain)), "validation changes nothing that is trained");

        Assert.That(File.ReadLines(validatedFolder.File(Trainer.LogFile)).First(), Is.EqualTo("epoch,iteration,patches,seconds,ls,ld,la,val_dice,val_components,precision"));
        var rows = TrainingLog.Read(validatedFolder.File(Trainer.LogFile));
        var scored = rows.Where(r => double.IsFinite(r.ValidationDice)).Select(r => r.Iteration).ToList();
        var expected = Enumerable.Range(1, (int)iterations).Where(i => i % 2 == 0 || i == iterations).Select(i => (long)i).ToList();
        Assert.That(scored, Is.EqualTo(expected), "a validation row every 2 iterations and at the end");
        Assert.That(rows.Where(r => double.IsFinite(r.ValidationDice)), Has.All.Matches<LogRow>(r => r.ValidationDice is >= 0 and <= 1 && r.Components >= 1));
        Assert.That(TrainingLog.Read(plainFolder.File(Trainer.LogFile)).All(r => double.IsNaN(r.ValidationDice)));
    }

    /// <summary>The safetensors payload after its JSON header (the header holds the run's elapsed seconds).</summary>
    static byte[] TensorBytes(byte[] file) => file[(8 + (int)BitConverter.ToUInt64(file, 0))..];

    [Test]
    public void ValidationScoresCentralSlicesOfTheSlabAtItsInterval()
    {
        var phantom = SyntheticPhantom.Generate(24, 3);
        var image = new LabelledImage("p", phantom.Image, phantom.Classes, (5, 12));
        var v = new Validation(image, phantom.ClassNames, IntensityNormalisation.Default, Plane.Axial, maxSlices: 4);
        Assert.That(v.Slices, Is.EqualTo((7, 10)), "four central slices of the slab");
        Assert.That(v.IntervalFor(95), Is.EqualTo(9));
        Assert.That(new Validation(image, phantom.ClassNames, IntensityNormalisation.Default, Plane.Axial, every: 4).IntervalFor(95), Is.EqualTo(4));
        Assert.That(() => new Validation(image, phantom.ClassNames, IntensityNormalisation.Default, Plane.Axial, every: -1), Throws.ArgumentException);
    }
}
