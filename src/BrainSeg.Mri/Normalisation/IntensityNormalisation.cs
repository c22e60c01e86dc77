using System.Globalization;

namespace BrainSeg.Mri.Normalisation;

public enum NormalisationMethod
{
    /// <summary>Map the lower and upper percentiles of the brain (non-zero) voxels to 0 and 1.</summary>
    Percentile,
    /// <summary>Subtract the mean and divide by the standard deviation of the brain (non-zero) voxels.</summary>
    ZScore,
}

/// <summary>
/// How intensities are normalised, computed per image within the brain mask (the non-zero voxels;
/// the paper's images are skull-stripped). Voxels outside the mask stay 0, which matches the zero
/// padding used outside the volume. The default is <see cref="Default"/>: percentile rescaling from
/// the 1st to the 99th percentile, robust to a few bright outliers. The same options must be used at
/// training and inference; <see cref="ToString"/> and <see cref="Parse"/> give the form stored with a model.
/// </summary>
public sealed record IntensityNormalisation(NormalisationMethod Method, double LowerPercentile = 1, double UpperPercentile = 99)
{
    public static IntensityNormalisation Default { get; } = new(NormalisationMethod.Percentile);

    public override string ToString() => Method == NormalisationMethod.ZScore
        ? "zscore"
        : string.Create(CultureInfo.InvariantCulture, $"percentile:{LowerPercentile}:{UpperPercentile}");

    /// <summary>Parses "zscore", "percentile" or "percentile:LOW:HIGH".</summary>
    public static IntensityNormalisation Parse(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split(':');
        if (parts is ["zscore"]) return new(NormalisationMethod.ZScore);
        if (parts is ["percentile"]) return Default;
        if (parts.Length == 3 && parts[0] == "percentile" &&
            double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double low) &&
            double.TryParse(parts[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double high) &&
            low >= 0 && high <= 100 && low < high)
            return new(NormalisationMethod.Percentile, low, high);
        throw new BadInputException($"Unknown normalisation \"{text}\": use zscore, percentile or percentile:LOW:HIGH (0 <= LOW < HIGH <= 100).");
    }

    /// <summary>A normalised copy of <paramref name="voxels"/>.</summary>
    public float[] Apply(ReadOnlySpan<float> voxels)
    {
        var brain = new List<float>();
        foreach (float v in voxels)
            if (v != 0 && float.IsFinite(v)) brain.Add(v);
        var output = new float[voxels.Length];
        if (brain.Count == 0) return output;
        double offset, scale;
        if (Method == NormalisationMethod.ZScore)
        {
            double sum = 0, sumsq = 0;
            foreach (float v in brain) { sum += v; sumsq += (double)v * v; }
            double mean = sum / brain.Count;
            double sd = Math.Sqrt(Math.Max(0, sumsq / brain.Count - mean * mean));
            offset = mean;
            scale = sd > 0 ? 1 / sd : 1;
        }
        else
        {
            var sorted = brain.ToArray();
            Array.Sort(sorted);
            double low = Percentile(sorted, LowerPercentile), high = Percentile(sorted, UpperPercentile);
            offset = low;
            scale = high > low ? 1 / (high - low) : 1;
        }
        for (int i = 0; i < voxels.Length; i++)
        {
            float v = voxels[i];
            output[i] = v != 0 && float.IsFinite(v) ? (float)((v - offset) * scale) : 0;
        }
        return output;
    }

    public Volume Apply(Volume volume) => volume.WithVoxels(Apply(volume.Voxels));

    /// <summary>The percentile with linear interpolation between order statistics (numpy's default).</summary>
    public static double Percentile(ReadOnlySpan<float> sorted, double percent)
    {
        double position = percent / 100 * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        double fraction = position - below;
        return sorted[below] + (sorted[above] - (double)sorted[below]) * fraction;
    }
}
