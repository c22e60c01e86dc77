using System.Globalization;
using BrainSeg.Seg.Training;
using NUnit.Framework;
using static BrainSeg.Tests.Training.TrainingFixtures;

namespace BrainSeg.Tests.Training;

/// <summary>
/// A few CPU iterations of each scheme, compared with recorded bits: the losses and a checksum of every
/// parameter, batch-norm statistic and optimiser state. The trainer was split into its updates and loop
/// against these bits; they were recorded again, unchanged trainer, when the phantom's shapes and contrasts changed,
/// and when batch norm began to normalise with its statistics as saved in float (so that its backward can recompute
/// the fused ReLU's mask exactly): the first losses kept every bit, later ones moved in the seventh digit.
/// </summary>
public class TrainerRecordTests
{
    static IEnumerable<TestCaseData> Schemes()
    {
        yield return new TestCaseData(new TrainingOptions { Seed = 11, Batch = 12, PatchesPerClass = 12 },
            "(2.22159481048584,NaN,NaN) (1.673141360282898,NaN,NaN) (1.3586547374725342,NaN,NaN)", 0x4EFE2907C6E65CDDUL).SetArgDisplayNames("baseline");
        yield return new TestCaseData(new TrainingOptions { Seed = 12, Batch = 12, PatchesPerClass = 12, Adversarial = true },
            "(2.679696798324585,1.0142192840576172,1.0646607875823975) (2.2650094032287598,0.5660654306411743,1.2314865589141846) (2.508514404296875,1.1180086135864258,0.8909276127815247)",
            0x0AAF0D347382220AUL).SetArgDisplayNames("adversarial");
        yield return new TestCaseData(new TrainingOptions { Seed = 13, Batch = 12, PatchesPerClass = 12, Adversarial = true, NonSaturating = true, DiscriminatorSeesGenerated = true },
            "(2.7282886505126953,1.5233368873596191,0.3190692663192749) (2.2070207595825195,1.1429996490478516,0.1856711357831955) (1.8369330167770386,1.5065921545028687,0.780523955821991)",
            0x29EFAA08098CB9F1UL).SetArgDisplayNames("non-saturating, Ld with generated");
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
