using BrainSeg.Mri;
using BrainSeg.Mri.Geometry;

namespace BrainSeg.Seg.Data;

/// <summary>
/// Slabs of slices for single-subject experiments: held out of training (test and validation), cut into
/// parts that stand in for images, and cropped out of a class map.
/// </summary>
public static class Slabs
{
    /// <summary>
    /// The image without the slices <paramref name="first"/>..<paramref name="last"/> of <paramref name="plane"/>, as
    /// the one or two blocks on either side (training never sees the slab), and the whole image with evaluation
    /// restricted to the slab.
    /// </summary>
    public static (List<LabelledImage> Training, LabelledImage Test) HoldOut(LabelledImage subject, Plane plane, int first, int last)
    {
        var (training, heldOut) = HoldOut(subject, plane, [(first, last)]);
        return (training, heldOut[0]);
    }

    /// <summary>
    /// The image without several disjoint slabs (a test slab and a validation slab, say): the training blocks
    /// between them, and for each slab the whole image with evaluation restricted to it, in the order given.
    /// </summary>
    public static (List<LabelledImage> Training, List<LabelledImage> HeldOut) HoldOut(LabelledImage subject, Plane plane, IReadOnlyList<(int First, int Last)> slabs)
    {
        var image = subject.Image;
        int axis = Orientation.SliceAxis(image.Affine, plane), count = image.Size(axis);
        foreach (var (first, last) in slabs)
            if (first < 0 || last >= count || first > last)
                throw new BadInputException($"Slices {first}:{last} are outside the {count} {plane.ToString().ToLowerInvariant()} slices of {subject.Id} (0..{count - 1}).");
        var sorted = slabs.OrderBy(s => s.First).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].First <= sorted[i - 1].Last)
                throw new BadInputException($"The held-out slabs {sorted[i - 1].First}:{sorted[i - 1].Last} and {sorted[i].First}:{sorted[i].Last} overlap; validation and test slices must be disjoint.");
        var blocks = new List<LabelledImage>();
        int next = 0;
        foreach (var (first, last) in sorted.Append((count, count)))
        {
            if (first > next) blocks.Add(Block(subject, axis, next, first - 1, $"slices{next}-{first - 1}"));
            next = last + 1;
        }
        if (blocks.Count == 0)
            throw new BadInputException($"The held-out slices cover every slice of {subject.Id}; leave some for training.");
        return (blocks, slabs.Select(s => subject with { Slices = s }).ToList());
    }

    /// <summary>A slab cut into up to <paramref name="parts"/> contiguous parts, each evaluated as an image.</summary>
    public static List<LabelledImage> Split(LabelledImage subject, int parts, Plane plane)
    {
        var (first, last) = subject.Slices ?? (0, subject.Image.SliceCount(plane) - 1);
        int count = last - first + 1;
        parts = Math.Min(parts, count);
        var result = new List<LabelledImage>();
        for (int k = 0; k < parts; k++)
        {
            int a = first + k * count / parts, b = first + (k + 1) * count / parts - 1;
            result.Add(subject with { Id = $"{subject.Id}-slices{a}-{b}", Slices = (a, b) });
        }
        return result;
    }

    /// <summary>The extent (first, last slice) of the labelled, non-background voxels along <paramref name="plane"/>'s slice axis.</summary>
    public static (int First, int Last) LabelledExtent(LabelledImage image, Plane plane)
    {
        var volume = image.Image;
        int axis = Orientation.SliceAxis(volume.Affine, plane);
        int low = int.MaxValue, high = -1;
        for (int z = 0; z < volume.SizeZ; z++)
            for (int y = 0; y < volume.SizeY; y++)
                for (int x = 0; x < volume.SizeX; x++)
                    if (image.Classes[volume.IndexOf(x, y, z)] != 0)
                    {
                        int at = axis == 0 ? x : axis == 1 ? y : z;
                        low = Math.Min(low, at);
                        high = Math.Max(high, at);
                    }
        if (high < 0) throw new BadInputException($"{image.Id} has no labelled voxels under the label map; check --label-map.");
        return (low, high);
    }

    /// <summary><paramref name="count"/> slices centred on <paramref name="around"/> (clipped to it when it is thinner).</summary>
    public static (int First, int Last) Centred((int First, int Last) around, int count)
    {
        int length = Math.Min(count, around.Last - around.First + 1);
        int first = (around.First + around.Last + 1 - length) / 2;
        return (first, first + length - 1);
    }

    /// <summary>Voxels with index <paramref name="first"/>..<paramref name="last"/> along <paramref name="axis"/>, in Fortran order.</summary>
    public static (byte[] Values, (int X, int Y, int Z) Sizes) Crop(byte[] values, Volume grid, int axis, int first, int last)
    {
        int[] size = grid.Shape;
        int[] from = [0, 0, 0];
        from[axis] = first;
        size[axis] = last - first + 1;
        var result = new byte[size[0] * size[1] * size[2]];
        int i = 0;
        for (int z = 0; z < size[2]; z++)
            for (int y = 0; y < size[1]; y++)
                for (int x = 0; x < size[0]; x++)
                    result[i++] = values[grid.IndexOf(x + from[0], y + from[1], z + from[2])];
        return (result, (size[0], size[1], size[2]));
    }

    static LabelledImage Block(LabelledImage subject, int axis, int first, int last, string name)
    {
        var image = subject.Image;
        var (classes, sizes) = Crop(subject.Classes, image, axis, first, last);
        var voxels = new float[classes.Length];
        int[] from = [0, 0, 0];
        from[axis] = first;
        int i = 0;
        for (int z = 0; z < sizes.Z; z++)
            for (int y = 0; y < sizes.Y; y++)
                for (int x = 0; x < sizes.X; x++)
                    voxels[i++] = image[x + from[0], y + from[1], z + from[2]];
        var (ox, oy, oz) = image.Affine.Apply(from[0], from[1], from[2]);
        var a = image.Affine;
        var affine = Affine.FromRows([a[0, 0], a[0, 1], a[0, 2], ox], [a[1, 0], a[1, 1], a[1, 2], oy], [a[2, 0], a[2, 1], a[2, 2], oz]);
        return new LabelledImage($"{subject.Id}-{name}", new Volume(voxels, sizes.X, sizes.Y, sizes.Z, affine), classes);
    }
}
