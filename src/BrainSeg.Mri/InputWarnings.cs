namespace BrainSeg.Mri;

/// <summary>Things in an input that brainseg handles by a stated rule, said on stderr so they are not silent.</summary>
public static class InputWarnings
{
    /// <summary>
    /// NaN and infinite intensities are read as 0, outside the brain mask, as the intensity normalisation treats
    /// them; the warning names how many there are. Returns that count.
    /// </summary>
    public static long NonFinite(string path, ReadOnlySpan<float> voxels, TextWriter? stderr = null)
    {
        long count = 0;
        foreach (float v in voxels)
            if (!float.IsFinite(v)) count++;
        if (count > 0)
            (stderr ?? Console.Error).WriteLine($"brainseg: warning: {path} holds {count} NaN or infinite voxel{(count == 1 ? "" : "s")} of {voxels.Length}; they are read as 0 (outside the brain). Fix the image if they should hold tissue.");
        return count;
    }
}
