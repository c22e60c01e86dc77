namespace BrainSeg.Mri.IO;

/// <summary>Reads any supported image file: NIfTI-1/2 (.nii, .nii.gz, .hdr/.img[.gz]) or FreeSurfer .mgh/.mgz.</summary>
public static class ImageReader
{
    public static MriImage Read(string path)
    {
        string lower = path.ToLowerInvariant();
        if (lower.EndsWith(".mgz") || lower.EndsWith(".mgh") || lower.EndsWith(".mgh.gz"))
            return MghReader.Read(path);
        return NiftiReader.Read(path);
    }

    /// <summary>Reads one 3-D volume (the first, or <paramref name="volumeIndex"/> of a 4-D/5-D image) as float32.</summary>
    public static Volume ReadVolume(string path, int volumeIndex = 0) => Read(path).GetVolume(volumeIndex);
}
