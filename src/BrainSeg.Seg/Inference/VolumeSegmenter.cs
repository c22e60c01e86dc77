using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Nn;
using BrainSeg.Mri;
using BrainSeg.Mri.Geometry;

namespace BrainSeg.Seg.Inference;

/// <summary>The classes of every voxel and, when asked, the class probabilities (class-major: [C][voxel], Fortran order within a class).</summary>
public sealed record VolumeSegmentation(byte[] Classes, float[]? Probabilities, int ClassCount);

/// <summary>
/// Whole-volume inference: slice by slice in the model's plane, each whole slice zero-padded by the
/// receptive-field radius and run through the fully convolutional network, so the output has the slice's
/// size and every output voxel sees exactly the context a training patch gave it (zeros outside the
/// volume, as the patch sampler pads). The network runs with its batch norms folded into the convolutions
/// (<see cref="Folding.ForInference"/>). Memory is bounded by one batch of slices; a full-volume
/// probability buffer exists only when probabilities are asked for.
/// </summary>
public static class VolumeSegmenter
{
    /// <param name="image">The raw image; the model's normalisation is applied here.</param>
    /// <param name="batchSlices">Slices per forward pass.</param>
    /// <param name="progress">Called with (slices done, slices in all) after each batch.</param>
    /// <param name="folded">The model's network already folded (<see cref="Folding.ForInference"/>), so that many volumes fold it once; null folds it here.</param>
    public static VolumeSegmentation Segment(SegmentationModel model, Volume image, int batchSlices = 8, bool probabilities = false,
        Action<int, int>? progress = null, IReadOnlySet<int>? onlySlices = null, Sequential? folded = null)
    {
        if (batchSlices < 1) throw new ArgumentOutOfRangeException(nameof(batchSlices), $"--batch-slices must be at least 1, got {batchSlices}.");
        var network = model.Network;
        var backend = network.Parameters().First().Backend;
        int classes = network.Classes, radius = model.PaddingRadius;
        Volume normalised = model.Normalisation.Apply(image);
        var (sliceAxis, columnAxis, rowAxis) = Orientation.PlaneAxes(image.Affine, model.Plane);
        int sliceCount = image.Size(sliceAxis), rows = image.Size(rowAxis), columns = image.Size(columnAxis);
        int[] stride = [1, image.SizeX, image.SizeX * image.SizeY];
        int paddedRows = rows + 2 * radius, paddedColumns = columns + 2 * radius, sliceArea = rows * columns;

        var result = new byte[image.Count];
        float[]? probabilityVolume = probabilities ? new float[(long)classes * image.Count] : null;
        var slice = new float[sliceArea];
        int[] wanted = Enumerable.Range(0, sliceCount).Where(s => onlySlices is null || onlySlices.Contains(s)).ToArray();
        int batchCapacity = Math.Min(batchSlices, Math.Max(1, wanted.Length));
        var input = new float[batchCapacity * paddedRows * paddedColumns];
        // Batch norm folded into the convolutions: one pass per layer instead of two.
        using var foldedHere = folded is null ? Folding.ForInference(network) : null;
        var layers = folded ?? foldedHere!;

        for (int start = 0; start < wanted.Length; start += batchCapacity)
        {
            int count = Math.Min(batchCapacity, wanted.Length - start);
            Array.Clear(input);
            for (int b = 0; b < count; b++)
            {
                normalised.CopySlice(model.Plane, wanted[start + b], slice);
                var destination = input.AsSpan(b * paddedRows * paddedColumns);
                for (int r = 0; r < rows; r++)
                    slice.AsSpan(r * columns, columns).CopyTo(destination.Slice((r + radius) * paddedColumns + radius, columns));
            }

            using var tape = Tape.NoGrad(backend);
            var x = tape.Own(Tensor.FromHost(backend, input.AsSpan(0, count * paddedRows * paddedColumns), count, 1, paddedRows, paddedColumns));
            var logits = layers.Forward(tape, x);
            if (logits.Shape.H != rows || logits.Shape.W != columns)
                throw new InvalidOperationException($"The network returned {logits.Shape.H}x{logits.Shape.W} for a {rows}x{columns} slice padded by {radius}.");
            var labels = tape.Own(backend.Empty(new Shape(count, rows, columns), DType.Int32));
            backend.ArgmaxChannels(logits, labels);
            int[] hostLabels = labels.ToHost<int>();
            float[]? hostProbabilities = null;
            if (probabilityVolume is not null)
            {
                var p = tape.Own(backend.Empty(logits.Shape, logits.DType));
                backend.SoftmaxForward(logits, p);
                hostProbabilities = p.ToHost<float>();
            }

            for (int b = 0; b < count; b++)
            {
                int sliceStart = wanted[start + b] * stride[sliceAxis];
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < columns; c++)
                    {
                        int voxel = sliceStart + r * stride[rowAxis] + c * stride[columnAxis];
                        int pixel = r * columns + c;
                        result[voxel] = (byte)hostLabels[b * sliceArea + pixel];
                        if (hostProbabilities is not null)
                            for (int k = 0; k < classes; k++)
                                probabilityVolume![(long)k * image.Count + voxel] = hostProbabilities[(b * classes + k) * sliceArea + pixel];
                    }
            }
            progress?.Invoke(start + count, wanted.Length);
        }
        return new VolumeSegmentation(result, probabilityVolume, classes);
    }
}
