using BrainSeg.Seg.Inference;
using BrainSeg.Seg.Training;
using NUnit.Framework;
using static BrainSeg.Tests.Training.TrainingFixtures;

namespace BrainSeg.Tests.Training;

public class BatchNormCalibrationTests
{
    [Test]
    public void RecalibrationForgetsTheStatisticsItStartedFrom()
    {
        // The same weights, once with fresh running statistics and once with stale ones far off: the
        // recalibrated statistics must be the same, since every pass is weighted equally and the first replaces.
        using var trainer = Tiny(new TrainingOptions { Seed = 31, Batch = 12, PatchesPerClass = 12 });
        trainer.Iterate(trainer.EpochBatches(0).First());
        var buffers = trainer.Segmenter.NamedBuffers().Select(b => b.Tensor).ToList();
        var request = trainer.Request with { Seed = 99 };

        BatchNormCalibration.Recalibrate(trainer.Segmenter, Phantom(), request, 5);
        var fromCurrent = Flatten(buffers);
        Upload(buffers, fromCurrent.Select(_ => 1e4f).ToArray());
        BatchNormCalibration.Recalibrate(trainer.Segmenter, Phantom(), request, 5);
        Assert.That(Flatten(buffers), Is.EqualTo(fromCurrent).Within(1e-3f), "stale running statistics leak into the calibrated ones");
        Assert.That(trainer.Segmenter.IsTraining, Is.True, "the network is back in the mode it was in");
    }
}
