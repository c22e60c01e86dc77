using BrainSeg.Engine;

namespace BrainSeg.Seg.Training;

/// <summary>
/// A small labelled volume for smoke runs and tests, made without any file: nested ellipses (class 0 outside,
/// class c in the c-th ring inwards), each class with its own mean intensity plus seeded Philox noise, and
/// the ellipses drifting from slice to slice. The image is already normalised (zero mean, unit spread).
/// </summary>
public static class TrainingPhantom
{
    public static LabelledVolume Create(int size = 64, int slices = 4, int classes = 4, ulong seed = 1, double noise = 0.15)
    {
        if (size < 8 || slices < 1 || classes < 2)
            throw new ArgumentException($"A phantom needs size ≥ 8, slices ≥ 1 and classes ≥ 2, got {size}, {slices}, {classes}.");
        var count = size * size * slices;
        var image = new float[count];
        var labels = new int[count];
        var centre = (size - 1) / 2.0;
        for (var z = 0; z < slices; z++)
            for (var y = 0; y < size; y++)
                for (var x = 0; x < size; x++)
                {
                    var i = x + size * (y + size * z);
                    // Elliptic radius in [0, 1] at the outer edge of the head, varying with z.
                    var rx = (x - centre) / (0.45 * size);
                    var ry = (y - centre - 0.03 * size * z) / (0.38 * size);
                    var r = Math.Sqrt(rx * rx + ry * ry);
                    var c = r >= 1 ? 0 : Math.Min(classes - 1, 1 + (int)((1 - r) * (classes - 1) * 1.2));
                    labels[i] = c;
                    var mean = c == 0 ? -1.5 : -1.0 + 2.5 * c / (classes - 1);
                    var u = (Philox.Word(seed, (ulong)i) + 0.5) / 4294967296.0;
                    image[i] = (float)(mean + noise * (2 * u - 1) * Math.Sqrt(3));
                }
        return new LabelledVolume("phantom", image, labels, size, size, slices);
    }
}
