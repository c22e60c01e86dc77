using System.Collections.Concurrent;
using BrainSeg.Mri.Geometry;

namespace BrainSeg.Mri.Sampling;

/// <summary>
/// Patch sizes of the paper: the network input (51x51 for the fully convolutional network, 87x87 for
/// the dilated one), the 21x21 output target, and the 25x25 image crop the discriminator sees.
/// </summary>
public sealed record PatchGeometry(int InputSize, int TargetSize = 21, int DiscriminatorSize = 25)
{
    public static PatchGeometry Fcn { get; } = new(51);
    public static PatchGeometry Dilated { get; } = new(87);
}

/// <summary>A normalised image and its class map (class numbers, same grid).</summary>
public sealed record TrainingImage(Volume Image, byte[] Classes)
{
    public TrainingImage Validate(int classCount, string name)
    {
        if (Classes.Length != Image.Count)
            throw new BadInputException($"{name}: {Classes.Length} labels for {Image.Count} voxels; the label map must share the image grid.");
        foreach (byte c in Classes)
            if (c >= classCount) throw new BadInputException($"{name}: class {c} is not below the class count {classCount}.");
        return this;
    }
}

/// <summary>
/// A minibatch of patches, all centred on the same voxels: network inputs [Count, 1, In, In],
/// targets [Count, T, T] (class numbers) and discriminator image crops [Count, 1, D, D], row-major.
/// </summary>
public sealed class Minibatch(int capacity, PatchGeometry geometry)
{
    public PatchGeometry Geometry { get; } = geometry;
    public int Count { get; internal set; }
    public float[] Inputs { get; } = new float[capacity * geometry.InputSize * geometry.InputSize];
    public byte[] Targets { get; } = new byte[capacity * geometry.TargetSize * geometry.TargetSize];
    public float[] DiscriminatorImages { get; } = new float[capacity * geometry.DiscriminatorSize * geometry.DiscriminatorSize];
    /// <summary>The class of each centre voxel, the class it was drawn for.</summary>
    public byte[] CentreClasses { get; } = new byte[capacity];
    /// <summary>Which image and voxel each patch is centred on.</summary>
    public (int Image, int X, int Y, int Z)[] Centres { get; } = new (int, int, int, int)[capacity];
}

/// <summary>
/// Class-balanced patch sampling as in the paper: each epoch draws, for every image and class,
/// <c>samplesPerClass</c> centre voxels uniformly among the voxels of that class (the class of the
/// centre voxel), in a random order over the whole epoch, and cuts 2-D patches in the chosen plane
/// around them, zero outside the volume. Memory does not grow with the number of samples: the epoch
/// order is drawn batch by batch (sequential sampling without replacement over the image-class
/// counts), and frequent classes are drawn by rejection instead of index lists. The same seed gives
/// the same patches, with or without the background producer.
/// </summary>
public sealed class PatchSampler
{
    // Classes covering more than this fraction of an image are drawn by rejection (a few tries on
    // average) rather than from a list of their voxel indices, which would be most of the image.
    private const double RejectionFraction = 0.1;

    private readonly TrainingImage[] _images;
    private readonly int[]?[,] _classVoxels; // [image, class] indices, or null when drawn by rejection
    private readonly long[,] _classCounts;
    private readonly (int Slice, int Column, int Row)[] _axes;
    private readonly ulong _seed;

    public PatchSampler(IReadOnlyList<TrainingImage> images, int classCount, Plane plane, PatchGeometry geometry, int samplesPerClass, ulong seed)
    {
        if (images.Count == 0) throw new ArgumentException("Patch sampling needs at least one image.");
        if (samplesPerClass < 1) throw new ArgumentOutOfRangeException(nameof(samplesPerClass), "Draw at least one sample per class.");
        if (geometry.InputSize % 2 == 0 || geometry.TargetSize % 2 == 0 || geometry.DiscriminatorSize % 2 == 0)
            throw new ArgumentException("Patch sizes must be odd so that a patch has a centre voxel.");
        _images = images.Select((image, i) => image.Validate(classCount, $"training image {i}")).ToArray();
        ClassCount = classCount;
        Plane = plane;
        Geometry = geometry;
        SamplesPerClass = samplesPerClass;
        _seed = seed;
        _axes = _images.Select(i => Orientation.PlaneAxes(i.Image.Affine, plane)).ToArray();

        _classCounts = new long[_images.Length, classCount];
        _classVoxels = new int[]?[_images.Length, classCount];
        for (int i = 0; i < _images.Length; i++)
        {
            var classes = _images[i].Classes;
            foreach (byte c in classes) _classCounts[i, c]++;
            var fill = new int[classCount];
            for (int c = 0; c < classCount; c++)
                if (_classCounts[i, c] > 0 && _classCounts[i, c] <= RejectionFraction * classes.Length)
                    _classVoxels[i, c] = new int[_classCounts[i, c]];
            for (int v = 0; v < classes.Length; v++)
                if (_classVoxels[i, classes[v]] is { } list) list[fill[classes[v]]++] = v;
        }
    }

    public int ClassCount { get; }
    public Plane Plane { get; }
    public PatchGeometry Geometry { get; }
    public int SamplesPerClass { get; }

    /// <summary>Patches per epoch: samples per class times the (image, class) pairs that occur.</summary>
    public long SamplesPerEpoch
    {
        get
        {
            long n = 0;
            foreach (long count in _classCounts) if (count > 0) n += SamplesPerClass;
            return n;
        }
    }

    /// <summary>The epoch's minibatches, produced on the calling thread.</summary>
    public IEnumerable<Minibatch> Epoch(int epoch, int batchSize)
    {
        var plan = new EpochPlan(this, epoch);
        while (true)
        {
            var batch = new Minibatch(batchSize, Geometry);
            if (!plan.Next(batch)) yield break;
            for (int s = 0; s < batch.Count; s++) Extract(batch, s);
            yield return batch;
        }
    }

    /// <summary>
    /// The epoch's minibatches, produced ahead on background threads (patches of a batch cut in
    /// parallel) and handed over through a queue of <paramref name="prefetch"/> batches; the batches
    /// are identical to <see cref="Epoch"/>'s.
    /// </summary>
    public IEnumerable<Minibatch> Stream(int epoch, int batchSize, int prefetch = 4, CancellationToken cancellation = default)
    {
        using var queue = new BlockingCollection<Minibatch>(prefetch);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var producer = Task.Run(() =>
        {
            try
            {
                var plan = new EpochPlan(this, epoch);
                while (!stop.IsCancellationRequested)
                {
                    var batch = new Minibatch(batchSize, Geometry);
                    if (!plan.Next(batch)) break;
                    Parallel.For(0, batch.Count, new ParallelOptions { CancellationToken = stop.Token }, s => Extract(batch, s));
                    queue.Add(batch, stop.Token);
                }
            }
            catch (OperationCanceledException) { }
            finally { queue.CompleteAdding(); }
        });
        try
        {
            foreach (var batch in queue.GetConsumingEnumerable(cancellation)) yield return batch;
            producer.GetAwaiter().GetResult(); // surface a producer failure
        }
        finally
        {
            stop.Cancel();
            try { producer.Wait(); } catch (AggregateException) { }
        }
    }

    /// <summary>Cuts the three patches of sample <paramref name="s"/> around its centre.</summary>
    private void Extract(Minibatch batch, int s)
    {
        var (imageIndex, x, y, z) = batch.Centres[s];
        var image = _images[imageIndex];
        var g = Geometry;
        Cut(image.Image.Voxels, image.Image, imageIndex, x, y, z, g.InputSize, batch.Inputs.AsSpan(s * g.InputSize * g.InputSize, g.InputSize * g.InputSize));
        Cut(image.Classes, image.Image, imageIndex, x, y, z, g.TargetSize, batch.Targets.AsSpan(s * g.TargetSize * g.TargetSize, g.TargetSize * g.TargetSize));
        Cut(image.Image.Voxels, image.Image, imageIndex, x, y, z, g.DiscriminatorSize, batch.DiscriminatorImages.AsSpan(s * g.DiscriminatorSize * g.DiscriminatorSize, g.DiscriminatorSize * g.DiscriminatorSize));
    }

    /// <summary>A size x size patch in the sampler's plane centred on (x, y, z), zero outside the volume.</summary>
    private void Cut<T>(T[] source, Volume grid, int imageIndex, int x, int y, int z, int size, Span<T> patch) where T : unmanaged
    {
        var (_, columnAxis, rowAxis) = _axes[imageIndex];
        Span<int> centre = [x, y, z];
        Span<int> stride = [1, grid.SizeX, grid.SizeX * grid.SizeY];
        int half = size / 2;
        int columns = grid.Size(columnAxis), rows = grid.Size(rowAxis);
        int c0 = centre[columnAxis] - half, r0 = centre[rowAxis] - half;
        int firstColumn = Math.Max(0, -c0), lastColumn = Math.Min(size, columns - c0); // valid [first, last)
        int baseIndex = x + grid.SizeX * (y + grid.SizeY * z) - centre[columnAxis] * stride[columnAxis] - centre[rowAxis] * stride[rowAxis];
        int columnStride = stride[columnAxis];
        patch.Clear();
        for (int r = 0; r < size; r++)
        {
            int row = r0 + r;
            if ((uint)row >= (uint)rows || firstColumn >= lastColumn) continue;
            var destination = patch.Slice(r * size, size);
            int index = baseIndex + row * stride[rowAxis] + (c0 + firstColumn) * columnStride;
            if (columnStride == 1)
            {
                source.AsSpan(index, lastColumn - firstColumn).CopyTo(destination[firstColumn..]);
            }
            else
            {
                for (int c = firstColumn; c < lastColumn; c++, index += columnStride) destination[c] = source[index];
            }
        }
    }

    /// <summary>
    /// The order of one epoch, drawn a batch at a time: each step picks an (image, class) pair with
    /// probability proportional to its remaining samples, so every pair gets exactly samplesPerClass
    /// samples in a uniformly random order, with memory independent of the number of samples.
    /// </summary>
    private sealed class EpochPlan
    {
        private readonly PatchSampler _sampler;
        private readonly long[] _remaining; // per (image, class) pair
        private long _total;
        private SeededRandom _random;

        public EpochPlan(PatchSampler sampler, int epoch)
        {
            _sampler = sampler;
            _random = SeededRandom.For(sampler._seed, (ulong)epoch);
            int pairs = sampler._images.Length * sampler.ClassCount;
            _remaining = new long[pairs];
            for (int p = 0; p < pairs; p++)
                if (sampler._classCounts[p / sampler.ClassCount, p % sampler.ClassCount] > 0)
                {
                    _remaining[p] = sampler.SamplesPerClass;
                    _total += sampler.SamplesPerClass;
                }
        }

        public bool Next(Minibatch batch)
        {
            int n = 0;
            while (n < batch.Centres.Length && _total > 0)
            {
                long pick = _random.NextInt64(_total);
                int pair = 0;
                while (pick >= _remaining[pair]) pick -= _remaining[pair++];
                _remaining[pair]--;
                _total--;
                int image = pair / _sampler.ClassCount, cls = pair % _sampler.ClassCount;
                int voxel = DrawVoxel(image, cls);
                var grid = _sampler._images[image].Image;
                int x = voxel % grid.SizeX, y = voxel / grid.SizeX % grid.SizeY, z = voxel / (grid.SizeX * grid.SizeY);
                batch.Centres[n] = (image, x, y, z);
                batch.CentreClasses[n] = (byte)cls;
                n++;
            }
            batch.Count = n;
            return n > 0;
        }

        private int DrawVoxel(int image, int cls)
        {
            if (_sampler._classVoxels[image, cls] is { } list) return list[_random.NextInt(list.Length)];
            var classes = _sampler._images[image].Classes;
            while (true)
            {
                int v = _random.NextInt(classes.Length);
                if (classes[v] == cls) return v;
            }
        }
    }
}
