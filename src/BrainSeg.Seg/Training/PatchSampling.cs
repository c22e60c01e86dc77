using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.Sampling;
using BrainSeg.Mri;

namespace BrainSeg.Seg.Training;

/// <summary>What the trainer asks of the data for one epoch; the trainer's options decide every field.</summary>
public readonly record struct PatchRequest(Plane Plane, int InputSize, int OutputSize, int PatchesPerClass, int BatchSize, ulong Seed);

/// <summary>
/// A minibatch on the host: images [Count,1,S,S] (S = the request's input size) and the class labels of the
/// central output window, [Count,O,O].
/// </summary>
public sealed record PatchBatch(int Count, float[] Images, byte[] Labels);

/// <summary>
/// What the trainer needs from the data: class-balanced minibatches of an epoch, the same ones for the same
/// request and epoch (so a resumed run sees the patches an uninterrupted one would). The trainer never sees
/// files, label maps or normalisation.
/// </summary>
public interface IPatchSource
{
    /// <summary>Number of classes, background (0) included.</summary>
    int Classes { get; }

    int ImageCount { get; }

    /// <summary>Patches in one epoch: patches per class times the (image, class) pairs that occur.</summary>
    long PatchesPerEpoch(PatchRequest request);

    /// <summary>The epoch's minibatches in training order (the last may be short).</summary>
    IEnumerable<PatchBatch> Epoch(PatchRequest request, int epoch);
}

/// <summary>
/// <see cref="IPatchSource"/> over normalised images held in memory, cut by the data layer's
/// <see cref="PatchSampler"/> (class-balanced, plane from each image's orientation, zero outside the volume).
/// </summary>
public sealed class SampledPatchSource : IPatchSource
{
    private readonly IReadOnlyList<TrainingImage> _images;
    private (PatchRequest Request, PatchSampler Sampler)? _cached;

    public SampledPatchSource(IReadOnlyList<TrainingImage> images, int classes)
    {
        if (images.Count == 0) throw new BadInputException("Training needs at least one labelled image.");
        if (classes < 2) throw new BadInputException($"Training needs at least 2 classes, got {classes}.");
        (_images, Classes) = (images, classes);
    }

    public int Classes { get; }
    public int ImageCount => _images.Count;

    public long PatchesPerEpoch(PatchRequest request) => Sampler(request).SamplesPerEpoch;

    /// <summary>Cut ahead on background threads while the network trains on the previous batch; the same batches as the sampler's Epoch.</summary>
    public IEnumerable<PatchBatch> Epoch(PatchRequest request, int epoch)
    {
        foreach (var b in Sampler(request).Stream(epoch, request.BatchSize, prefetch: 2))
            yield return new PatchBatch(b.Count, b.Inputs, b.Targets);
    }

    private PatchSampler Sampler(PatchRequest request)
    {
        // The sampler's setup indexes every class's voxels: build it once per request.
        var key = request with { BatchSize = 0 };
        if (_cached is { } c && c.Request == key) return c.Sampler;
        var sampler = new PatchSampler(_images, Classes, request.Plane,
            new PatchGeometry(request.InputSize, request.OutputSize), request.PatchesPerClass, request.Seed);
        _cached = (key, sampler);
        return sampler;
    }
}
