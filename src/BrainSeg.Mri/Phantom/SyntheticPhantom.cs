using BrainSeg.Mri.Geometry;

namespace BrainSeg.Mri.Phantom;

/// <summary>A generated T1-like image, its label map (class numbers) and the class names.</summary>
public sealed record PhantomSubject(Volume Image, byte[] Classes, IReadOnlyList<string> ClassNames)
{
    /// <summary>The label map as a volume of class numbers on the image grid.</summary>
    public Volume LabelVolume => Image.WithVoxels(Classes.Select(c => (float)c).ToArray());
}

/// <summary>
/// A brain-like 3-D phantom with the paper's six adult classes (numbered as freesurfer-to-adult6:
/// 1 WM, 2 cGM, 3 BGT, 4 CB, 5 BS, 6 lvCSF; 0 background): a cerebrum with a folded cortical ribbon
/// around white matter, butterfly-shaped lateral ventricles, deep grey nuclei beside them, a cerebellum
/// and a brain stem below, all with seeded irregular boundaries. Intensities follow T1 contrast
/// (CSF &lt; cGM &lt; CB &lt; BGT &lt; BS &lt; WM), spaced so that neighbouring classes stay apart under the
/// noise and bias field, with Gaussian noise and a smooth multiplicative bias field; the background is
/// exactly 0, as in a skull-stripped scan. The deep grey nuclei and the brain stem are a few voxels
/// wider than anatomy would make them at this size, so that a network with 21×21 outputs sees them whole
/// in a patch and can learn them in a short run. The same seed gives the same phantom.
/// </summary>
public static class SyntheticPhantom
{
    public static IReadOnlyList<string> ClassNames { get; } = ["background", "WM", "cGM", "BGT", "CB", "BS", "lvCSF"];

    private static readonly float[] Intensity = [0f, 1.0f, 0.5f, 0.74f, 0.62f, 0.87f, 0.18f];

    public static PhantomSubject Generate(int size = 64, ulong seed = 1, double noise = 0.03, double biasAmplitude = 0.08, double voxelSize = 1.0)
    {
        if (size < 16) throw new ArgumentOutOfRangeException(nameof(size), "The phantom needs at least 16 voxels per side.");
        var random = SeededRandom.For(seed, 0x9a4);
        // Low-frequency boundary perturbations: a few random harmonics of the direction.
        var harmonics = new (double A, double Fx, double Fy, double Fz, double Phase)[6];
        for (int i = 0; i < harmonics.Length; i++)
            harmonics[i] = (0.012 + 0.02 * random.NextDouble(), random.NextInt(4) + 1, random.NextInt(4) + 1, random.NextInt(3) + 1, 2 * Math.PI * random.NextDouble());
        double gyri = 5 + random.NextInt(4), gyriPhase = 2 * Math.PI * random.NextDouble();
        var bias = (Phase1: 2 * Math.PI * random.NextDouble(), Phase2: 2 * Math.PI * random.NextDouble(), Phase3: 2 * Math.PI * random.NextDouble());

        var classes = new byte[size * size * size];
        var image = new float[classes.Length];
        double half = (size - 1) / 2.0;
        for (int z = 0; z < size; z++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                {
                    // Unit coordinates: x left-right, y posterior-anterior, z inferior-superior.
                    double u = (x - half) / half, v = (y - half) / half, w = (z - half) / half;
                    double wobble = 0;
                    foreach (var h in harmonics) wobble += h.A * Math.Sin(h.Fx * u * Math.PI + h.Fy * v * Math.PI + h.Fz * w * Math.PI + h.Phase);
                    byte c = Classify(u, v, w, wobble, gyri, gyriPhase);
                    int index = x + size * (y + size * z);
                    classes[index] = c;
                    if (c == 0) continue;
                    double field = 1 + biasAmplitude * Math.Sin(0.9 * u + bias.Phase1) * Math.Cos(0.7 * v + bias.Phase2) * Math.Sin(0.8 * w + bias.Phase3 + 1);
                    image[index] = (float)Math.Max(0.01, Intensity[c] * field + noise * random.NextGaussian());
                }
        double shift = -half * voxelSize;
        var affine = Affine.FromRows([voxelSize, 0, 0, shift], [0, voxelSize, 0, shift], [0, 0, voxelSize, shift]);
        return new PhantomSubject(new Volume(image, size, size, size, affine), classes, ClassNames);
    }

    private static byte Classify(double u, double v, double w, double wobble, double gyri, double gyriPhase)
    {
        static double Ellipsoid(double u, double v, double w, double cu, double cv, double cw, double ru, double rv, double rw)
        {
            double a = (u - cu) / ru, b = (v - cv) / rv, c = (w - cw) / rw;
            return Math.Sqrt(a * a + b * b + c * c);
        }

        // Brain stem: a slightly tilted column below the cerebrum's centre.
        double stemV = v + 0.12 + 0.15 * w;
        if (w < -0.05 && w > -0.95 && (u * u + stemV * stemV) < Math.Pow(0.19 + wobble * 0.3, 2)) return 5;

        double cerebrum = Ellipsoid(u, v, w, 0, 0.05, 0.15, 0.78, 0.9, 0.68) - wobble;
        if (cerebrum < 1)
        {
            // Lateral ventricles: two thin curved lobes either side of the midline.
            double lobe = Math.Min(Ellipsoid(u, v, w, 0.11, 0.05 + 0.1 * w, 0.2, 0.07, 0.32, 0.11), Ellipsoid(u, v, w, -0.11, 0.05 + 0.1 * w, 0.2, 0.07, 0.32, 0.11));
            if (lobe - wobble < 1) return 6;
            double nuclei = Math.Min(Ellipsoid(u, v, w, 0.3, 0.02, 0.08, 0.16, 0.25, 0.17), Ellipsoid(u, v, w, -0.3, 0.02, 0.08, 0.16, 0.25, 0.17));
            if (nuclei - wobble < 1) return 3;
            // Cortical ribbon: the outer shell, its thickness folded by gyri.
            double theta = Math.Atan2(v, u), phi = Math.Atan2(w, Math.Sqrt(u * u + v * v));
            double ribbon = 0.83 + 0.05 * Math.Sin(gyri * theta + gyriPhase) * Math.Cos(gyri * phi);
            return cerebrum > ribbon ? (byte)2 : (byte)1;
        }
        double cerebellum = Ellipsoid(u, v, w, 0, -0.5, -0.55, 0.55, 0.32, 0.27) - wobble;
        if (cerebellum < 1) return 4;
        return 0;
    }
}
