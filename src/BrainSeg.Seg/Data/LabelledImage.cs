using BrainSeg.Mri;
using BrainSeg.Mri.IO;
using BrainSeg.Mri.Labels;

namespace BrainSeg.Seg.Data;

/// <summary>An image with its reference class map; <see cref="Slices"/> restricts evaluation to a slab (single-subject experiments).</summary>
public sealed record LabelledImage(string Id, Volume Image, byte[] Classes, (int First, int Last)? Slices = null)
{
    /// <summary>
    /// Reads an IMAGE:LABELS pair (NIfTI or MGZ on one grid) and maps the labels to classes through
    /// <paramref name="table"/>. The id is the image's folder and file name without extension.
    /// </summary>
    public static LabelledImage Load(string pair, LabelTable table)
    {
        int split = pair.LastIndexOf(':');
        if (split <= 0 || split == pair.Length - 1)
            throw new BadInputException($"\"{pair}\" is not IMAGE:LABELS; give the image and its label map joined by a colon, e.g. t1.nii.gz:aseg.nii.gz.");
        string imagePath = pair[..split], labelPath = pair[(split + 1)..];
        var image = ImageReader.ReadVolume(imagePath);
        InputWarnings.NonFinite(imagePath, image.Voxels);
        var labels = ImageReader.ReadVolume(labelPath);
        if (!image.SameGridAs(labels))
            throw new BadInputException($"{imagePath} and {labelPath} are on different grids; the label map must share the image's shape and affine.");
        string id = Path.GetFileName(imagePath);
        foreach (var ext in new[] { ".nii.gz", ".nii", ".mgz", ".mgh" })
            if (id.EndsWith(ext, StringComparison.OrdinalIgnoreCase)) { id = id[..^ext.Length]; break; }
        string folder = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(imagePath))) ?? "";
        return new LabelledImage(folder.Length > 0 ? $"{folder}-{id}" : id, image, table.Apply(labels.Voxels, labelPath));
    }
}
