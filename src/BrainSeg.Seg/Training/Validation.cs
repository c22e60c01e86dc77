using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Seg.Data;
using BrainSeg.Seg.Evaluation;
using BrainSeg.Seg.Inference;
using BrainSeg.Seg.Networks;

namespace BrainSeg.Seg.Training;

/// <summary>A validation pass: mean Dice over the tissue classes and the 3-D connected components of the prediction (all classes).</summary>
public readonly record struct ValidationScore(double MeanDice, int Components);

/// <summary>
/// Segments a labelled image during training to tell whether the network is getting better at segmenting:
/// whole slices through folded inference with the batch-norm running statistics of the moment, over a
/// contiguous block of at most <see cref="MaxSlices"/> slices in the middle of the image's slab (or of its
/// labelled extent), so each pass costs a bounded time. It neither draws random numbers nor changes the
/// network, so a run trains the same bits with and without it.
/// </summary>
public sealed class Validation
{
    public const int DefaultMaxSlices = 16;

    /// <summary>Validations per run when <see cref="Every"/> is 0: about this many, evenly spaced, the last at the end.</summary>
    public const int DefaultPassesPerRun = 10;

    public Validation(LabelledImage image, IReadOnlyList<string> classNames, IntensityNormalisation normalisation, Plane plane,
        int every = 0, int maxSlices = DefaultMaxSlices, int connectivity = 6)
    {
        if (every < 0) throw new ArgumentException($"--val-every must be 0 (about {DefaultPassesPerRun} per run) or positive, got {every}.");
        if (maxSlices < 1) throw new ArgumentException($"--val-slices must be at least 1, got {maxSlices}.");
        (Image, ClassNames, Normalisation, Plane, Every, Connectivity) = (image, classNames, normalisation, plane, every, connectivity);
        Slices = Slabs.Centred(image.Slices ?? Slabs.LabelledExtent(image, plane), maxSlices);
        MaxSlices = maxSlices;
    }

    public LabelledImage Image { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public IntensityNormalisation Normalisation { get; }
    public Plane Plane { get; }
    public int Connectivity { get; }
    public int MaxSlices { get; }

    /// <summary>Validate every this many iterations; 0 spreads <see cref="DefaultPassesPerRun"/> over the run.</summary>
    public int Every { get; }

    /// <summary>The slices segmented and scored (inclusive).</summary>
    public (int First, int Last) Slices { get; }

    public int IntervalFor(long totalIterations) => Every > 0 ? Every : (int)Math.Max(1, totalIterations / DefaultPassesPerRun);

    public string Describe() =>
        $"{Image.Id}, {Plane.ToString().ToLowerInvariant()} slices {Slices.First}..{Slices.Last} (whole slices, folded inference, batch-norm running statistics)";

    /// <summary>Scores <paramref name="network"/> as it stands; it is back in training mode afterwards.</summary>
    public ValidationScore Score(SegmentationNetwork network)
    {
        if (network.Classes != ClassNames.Count)
            throw new ArgumentException($"The validation image has {ClassNames.Count} classes but the network segments {network.Classes}.");
        var wasTraining = network.IsTraining;
        try
        {
            // The model wraps the network without owning it: it is not disposed here.
            var model = new SegmentationModel(network, ClassNames, Normalisation, Plane, "validation");
            var slices = Enumerable.Range(Slices.First, Slices.Last - Slices.First + 1).ToHashSet();
            var predicted = VolumeSegmenter.Segment(model, Image.Image, onlySlices: slices).Classes;
            int axis = Orientation.SliceAxis(Image.Image.Affine, Plane);
            var (p, sizes) = Slabs.Crop(predicted, Image.Image, axis, Slices.First, Slices.Last);
            var (r, _) = Slabs.Crop(Image.Classes, Image.Image, axis, Slices.First, Slices.Last);
            var result = SegmentationEvaluation.Evaluate(p, r, sizes, SegmentationEvaluation.VoxelVolumeMl(Image.Image.Affine), ClassNames, Connectivity);
            return new ValidationScore(result.MeanDice, result.PredictedComponentsTotal);
        }
        finally
        {
            network.Train(wasTraining);
        }
    }
}
