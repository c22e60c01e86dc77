using System.Globalization;
using BrainSeg.Seg.Training;
using NUnit.Framework;
using static BrainSeg.Tests.Training.TrainingFixtures;

namespace BrainSeg.Tests.Training;

/// <summary>
/// A few CPU iterations of each scheme, compared with the bits recorded before the trainer was split into its
/// updates and loop: the losses and a checksum of every parameter, batch-norm statistic and optimiser state.
/// </summary>
public class TrainerRecordTests
{
    static IEnumerable<TestCaseData> Schemes()
    {
        yield return new TestCaseData(new TrainingOptions { Seed = 11, Batch = 12, PatchesPerClass = 12 },
            "(2.2025060653686523,NaN,NaN) (1.653468370437622,NaN,NaN) (1.3803553581237793,NaN,NaN)", 0x1FF246E701A56177UL).SetArgDisplayNames("baseline");
        yield return new TestCaseData(new TrainingOptions { Seed = 12, Batch = 12, PatchesPerClass = 12, Adversarial = true },
            "(2.671006202697754,0.4052664637565613,1.1099796295166016) (2.2349929809570312,0.7195481061935425,1.9555599689483643) (2.3763208389282227,1.6939797401428223,1.1878894567489624)",
            0x6BDDD0490E3698FAUL).SetArgDisplayNames("adversarial");
        yield return new TestCaseData(new TrainingOptions { Seed = 13, Batch = 12, PatchesPerClass = 12, Adversarial = true, NonSaturating = true, DiscriminatorSeesGenerated = true },
            "(2.768808364868164,1.3516188859939575,0.7275664806365967) (2.255039930343628,1.1288073062896729,0.14066267013549805) (1.8456050157546997,1.4775830507278442,0.6244349479675293)",
            0xE7FD6F0B4187B2F1UL).SetArgDisplayNames("non-saturating, Ld with generated");
    }

    [TestCaseSource(nameof(Schemes))]
    public void ThreeIterationsMatchTheRecordedBits(TrainingOptions options, string expectedLosses, ulong expectedHash)
    {
        using var trainer = Tiny(options);
        var losses = trainer.EpochBatches(0).Take(3).Select(trainer.Iterate).ToList();
        var state = trainer.CheckpointTensors();
        ulong hash = 14695981039346656037UL;
        foreach (var t in state)
            foreach (var b in t.Data) hash = (hash ^ b) * 1099511628211UL;
        var text = string.Join(" ", losses.Select(l => string.Create(CultureInfo.InvariantCulture, $"({l.Segmentation:R},{l.Discriminator:R},{l.Adversarial:R})")));
        TestContext.Out.WriteLine($"{text} hash {hash:X16}");
        Assert.That(text, Is.EqualTo(expectedLosses));
        Assert.That(hash, Is.EqualTo(expectedHash), "parameters, statistics or optimiser state differ from the recorded run");
    }
}
