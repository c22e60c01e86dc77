using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;

namespace BrainSeg.Seg.Training;

/// <summary>
/// The 2-D plane patches are cut in, by voxel axes: axial patches lie in (x, y) at fixed z, coronal in
/// (x, z) at fixed y, sagittal in (y, z) at fixed x. Within a patch, columns follow the first in-plane
/// axis and rows the second.
/// </summary>
public enum Plane { Axial, Coronal, Sagittal }

/// <summary>The centre voxel of one training patch in image <see cref="Image"/>.</summary>
public readonly record struct PatchCentre(int Image, int X, int Y, int Z);

/// <summary>
/// What the trainer needs from the data: the class-balanced list of patch centres of one epoch and
/// the patches themselves. The trainer never sees files, label maps or normalisation.
/// </summary>
public interface IPatchSource
{
    /// <summary>Number of classes, background (0) included.</summary>
    int Classes { get; }

    int ImageCount { get; }

    /// <summary>
    /// The centres of one epoch, in training order: <paramref name="patchesPerClass"/> per class present in
    /// each image (the class of a patch is the label of its centre voxel), shuffled. The same generator state
    /// gives the same list.
    /// </summary>
    PatchCentre[] EpochCentres(int patchesPerClass, RandomStream random);

    /// <summary>
    /// Cuts patches around <paramref name="centres"/>: images [n,1,inputSize,inputSize] (zero outside the
    /// volume) and the class labels of the central outputSize×outputSize voxels, [n,outputSize,outputSize].
    /// </summary>
    void Extract(ReadOnlySpan<PatchCentre> centres, int inputSize, int outputSize, Span<float> images, Span<int> labels);
}

/// <summary>A normalised image and its class map (values in [0, classes)) on one voxel grid, x fastest.</summary>
public sealed record LabelledVolume(string Name, float[] Image, int[] Classes, int SizeX, int SizeY, int SizeZ)
{
    public int Index(int x, int y, int z) => x + SizeX * (y + SizeY * z);
}

/// <summary>Class-balanced patch sampling from volumes held in memory, in one plane.</summary>
public sealed class VolumePatchSource : IPatchSource
{
    private readonly LabelledVolume[] _volumes;
    // Per image and class, the flat indices of the voxels of that class (the pools patches are drawn from).
    private readonly int[][][] _voxelsByClass;

    public VolumePatchSource(IReadOnlyList<LabelledVolume> volumes, int classes, Plane plane)
    {
        if (volumes.Count == 0) throw new ArgumentException("Training needs at least one labelled image.");
        if (classes < 2) throw new ArgumentException($"Training needs at least 2 classes, got {classes}.");
        (_volumes, Classes, Plane) = (volumes.ToArray(), classes, plane);
        _voxelsByClass = new int[_volumes.Length][][];
        for (var i = 0; i < _volumes.Length; i++)
        {
            var v = _volumes[i];
            var count = (long)v.SizeX * v.SizeY * v.SizeZ;
            if (v.Image.LongLength != count || v.Classes.LongLength != count)
                throw new ArgumentException($"{v.Name}: image ({v.Image.Length}) and labels ({v.Classes.Length}) must both hold {v.SizeX}×{v.SizeY}×{v.SizeZ} voxels.");
            var pools = Enumerable.Range(0, classes).Select(_ => new List<int>()).ToArray();
            for (var j = 0; j < v.Classes.Length; j++)
            {
                var c = v.Classes[j];
                if ((uint)c >= (uint)classes)
                    throw new ArgumentException($"{v.Name}: voxel {j} has class {c}, outside [0, {classes}); map the labels with a label map first.");
                pools[c].Add(j);
            }
            _voxelsByClass[i] = pools.Select(p => p.ToArray()).ToArray();
        }
    }

    public int Classes { get; }
    public int ImageCount => _volumes.Length;
    public Plane Plane { get; }

    /// <summary>Voxels of class <paramref name="c"/> in image <paramref name="image"/>.</summary>
    public int ClassCount(int image, int c) => _voxelsByClass[image][c].Length;

    public PatchCentre[] EpochCentres(int patchesPerClass, RandomStream random)
    {
        if (patchesPerClass < 1) throw new ArgumentException($"Patches per class must be at least 1, got {patchesPerClass}.");
        var centres = new List<PatchCentre>();
        for (var i = 0; i < _volumes.Length; i++)
        {
            var v = _volumes[i];
            foreach (var pool in _voxelsByClass[i])
            {
                if (pool.Length == 0) continue; // a class absent from this image
                for (var k = 0; k < patchesPerClass; k++)
                {
                    var flat = pool[Draw(random, pool.Length)];
                    var x = flat % v.SizeX;
                    var y = flat / v.SizeX % v.SizeY;
                    centres.Add(new PatchCentre(i, x, y, flat / (v.SizeX * v.SizeY)));
                }
            }
        }
        // Fisher–Yates, so that every minibatch mixes classes and images.
        var array = centres.ToArray();
        for (var k = array.Length - 1; k > 0; k--)
        {
            var j = Draw(random, k + 1);
            (array[k], array[j]) = (array[j], array[k]);
        }
        return array;
    }

    /// <summary>A uniform integer in [0, n) from one 32-bit Philox word (the bias for n ≪ 2³² is negligible).</summary>
    private static int Draw(RandomStream random, int n)
    {
        var index = random.Take(1);
        return (int)((ulong)Engine.Philox.Word(random.Seed, index) * (ulong)n >> 32);
    }

    public void Extract(ReadOnlySpan<PatchCentre> centres, int inputSize, int outputSize, Span<float> images, Span<int> labels)
    {
        var inArea = inputSize * inputSize;
        var outArea = outputSize * outputSize;
        if (images.Length != centres.Length * inArea || labels.Length != centres.Length * outArea)
            throw new ArgumentException($"Extract needs {centres.Length * inArea} image and {centres.Length * outArea} label values for {centres.Length} patches.");
        for (var n = 0; n < centres.Length; n++)
        {
            var c = centres[n];
            var v = _volumes[c.Image];
            Cut(v, v.Image, c, inputSize, images.Slice(n * inArea, inArea), 0f);
            Cut(v, v.Classes, c, outputSize, labels.Slice(n * outArea, outArea), 0);
        }
    }

    // A size×size window centred on the voxel (offset −size/2 … size−1−size/2), fill outside the volume.
    private void Cut<T>(LabelledVolume v, T[] source, PatchCentre c, int size, Span<T> dest, T fill)
    {
        var half = size / 2;
        for (var row = 0; row < size; row++)
            for (var col = 0; col < size; col++)
            {
                int du = col - half, dv = row - half;
                var (x, y, z) = Plane switch
                {
                    Plane.Axial => (c.X + du, c.Y + dv, c.Z),
                    Plane.Coronal => (c.X + du, c.Y, c.Z + dv),
                    _ => (c.X, c.Y + du, c.Z + dv),
                };
                var inside = (uint)x < (uint)v.SizeX && (uint)y < (uint)v.SizeY && (uint)z < (uint)v.SizeZ;
                dest[row * size + col] = inside ? source[v.Index(x, y, z)] : fill;
            }
    }
}
