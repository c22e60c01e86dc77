using System.Text.Json;
using BrainSeg.Mri;
using BrainSeg.Mri.IO;
using NUnit.Framework;

namespace BrainSeg.Tests.Mri;

/// <summary>Every file of shared/data/nifti read exactly as nibabel reads it (expected.json).</summary>
public class NiftiExpectedTests
{
    private const string Absent = "(shared data absent)";

    public static IEnumerable<string> ExpectedFiles()
    {
        string json = Path.Combine(SharedData.NiftiFolder, "expected.json");
        if (SharedData.Folder is null || !File.Exists(json)) return [Absent];
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        return doc.RootElement.EnumerateObject().Select(p => p.Name).ToList();
    }

    private static JsonElement Expected(string name)
    {
        string json = SharedData.Require("nifti/expected.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        return doc.RootElement.GetProperty(name).Clone();
    }

    [TestCaseSource(nameof(ExpectedFiles))]
    public void ReadsLikeNibabel(string name)
    {
        if (name == Absent) SharedData.Require("nifti/expected.json");
        var expected = Expected(name);
        string path = SharedData.Require(Path.Combine("nifti", name));

        if (expected.TryGetProperty("error", out _))
        {
            var error = Assert.Throws<ImageFormatException>(() => ImageReader.Read(path));
            Assert.That(error!.Message, Does.Contain(name), "the message names the file");
            return;
        }

        var image = ImageReader.Read(path);
        var h = image.Header;
        Assert.That(image.Format.ToString(), Is.EqualTo(FormatName(expected)), "format");
        Assert.That(image.Shape, Is.EqualTo(Ints(expected.GetProperty("shape"))), "shape");
        Assert.That(h.DataType.OnDiskName(h.IsBigEndian), Is.EqualTo(expected.GetProperty("on_disk_dtype").GetString()), "on-disk dtype");
        Assert.That(h.Zooms, Is.EqualTo(Doubles(expected.GetProperty("zooms"))).Within(1e-6), "zooms");

        var affine = image.Affine;
        var rows = expected.GetProperty("affine").EnumerateArray().Select(Doubles).ToArray();
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                Assert.That(affine[r, c], Is.EqualTo(rows[r][c]).Within(2e-6), $"affine[{r},{c}] (expected.json rounds to 6 decimals)");

        Assert.That(h.SFormCode, Is.EqualTo(expected.GetProperty("sform_code").GetInt32()), "sform_code");
        Assert.That(h.QFormCode, Is.EqualTo(expected.GetProperty("qform_code").GetInt32()), "qform_code");
        // nibabel moves scl_slope/scl_inter into the data proxy on load and leaves NaN (null) in its header,
        // so null says nothing about the file; the scaled values below check the scaling itself.
        CheckScaling(expected.GetProperty("scl_slope"), h.SclSlope, "scl_slope");
        CheckScaling(expected.GetProperty("scl_inter"), h.SclInter, "scl_inter");

        var stats = image.Statistics();
        Assert.That(stats.Sum, Is.EqualTo(expected.GetProperty("scaled_sum").GetDouble()).Within(1e-9).Percent, "sum");
        Assert.That(stats.SumOfSquares, Is.EqualTo(expected.GetProperty("scaled_sumsq").GetDouble()).Within(1e-9).Percent, "sum of squares");
        Assert.That(stats.Min, Is.EqualTo(expected.GetProperty("scaled_min").GetDouble()).Within(1e-12).Percent, "min");
        Assert.That(stats.Max, Is.EqualTo(expected.GetProperty("scaled_max").GetDouble()).Within(1e-12).Percent, "max");

        var first = Doubles(expected.GetProperty("first_voxels_fortran_order"));
        var ours = new double[first.Length];
        image.CopyScaled(0, ours);
        Assert.That(ours, Is.EqualTo(first).Within(1e-12).Percent, "first voxels");
    }

    /// <summary>The JSON of `brainseg nifti-info --json` carries the same numbers under nibabel's names.</summary>
    [TestCaseSource(nameof(ExpectedFiles))]
    public void InfoJsonAgreesWithNibabel(string name)
    {
        if (name == Absent) SharedData.Require("nifti/expected.json");
        var expected = Expected(name);
        string path = SharedData.Require(Path.Combine("nifti", name));
        if (expected.TryGetProperty("error", out _))
        {
            Assert.Throws<ImageFormatException>(() => ImageInfo.Read(path));
            return;
        }
        using var doc = JsonDocument.Parse(ImageInfo.Read(path).ToJson());
        var info = doc.RootElement;
        Assert.That(Ints(info.GetProperty("shape")), Is.EqualTo(Ints(expected.GetProperty("shape"))));
        Assert.That(info.GetProperty("datatype").GetString(), Is.EqualTo(expected.GetProperty("on_disk_dtype").GetString()));
        Assert.That(Doubles(info.GetProperty("zooms")), Is.EqualTo(Doubles(expected.GetProperty("zooms"))).Within(1e-6));
        var ours = info.GetProperty("affine").EnumerateArray().SelectMany(Doubles).ToArray();
        var theirs = expected.GetProperty("affine").EnumerateArray().SelectMany(Doubles).ToArray();
        Assert.That(ours, Is.EqualTo(theirs).Within(2e-6));
        Assert.That(info.GetProperty("sform_code").GetInt32(), Is.EqualTo(expected.GetProperty("sform_code").GetInt32()));
        Assert.That(info.GetProperty("qform_code").GetInt32(), Is.EqualTo(expected.GetProperty("qform_code").GetInt32()));
        foreach (var (field, reference) in new[] { ("sum", "scaled_sum"), ("sumsq", "scaled_sumsq"), ("min", "scaled_min"), ("max", "scaled_max") })
            Assert.That(info.GetProperty(field).GetDouble(), Is.EqualTo(expected.GetProperty(reference).GetDouble()).Within(1e-9).Percent, field);
        Assert.That(info.TryGetProperty("scl_slope", out _) && info.TryGetProperty("scl_inter", out _), Is.True);
    }

    [Test]
    public void VolumesOfFourAndFiveDimensionalImagesCanBeSelected()
    {
        var functional = ImageReader.Read(SharedData.Require("nifti/functional.nii")); // 17x21x3x20, scaled
        Assert.That(functional.VolumeCount, Is.EqualTo(20));
        var volume = functional.GetVolume(5);
        Assert.That(volume.Shape, Is.EqualTo(new[] { 17, 21, 3 }));
        var expected = new double[volume.Count];
        functional.CopyScaled(5L * volume.Count, expected);
        Assert.That(volume.Voxels.Select(v => (double)v), Is.EqualTo(expected.Select(v => (double)(float)v)));
        Assert.That(volume.Affine, Is.EqualTo(functional.Affine));
        Assert.Throws<ArgumentOutOfRangeException>(() => functional.GetVolume(20));

        var fiveD = ImageReader.Read(SharedData.Require("nifti/5D_small.nii")); // 1x2x3x1x3
        Assert.That(fiveD.VolumeCount, Is.EqualTo(3));
        Assert.That(fiveD.GetVolume(2).Voxels[0], Is.EqualTo((float)(fiveD.Data[12] * fiveD.Header.SclSlope + fiveD.Header.SclInter)));
    }

    private static string FormatName(JsonElement expected) => expected.GetProperty("format").GetString() switch
    {
        "Nifti1Image" => nameof(ImageFormat.Nifti1),
        "Nifti1Pair" => nameof(ImageFormat.Nifti1Pair),
        "Nifti2Image" => nameof(ImageFormat.Nifti2),
        "Nifti2Pair" => nameof(ImageFormat.Nifti2Pair),
        var other => other ?? "",
    };

    private static void CheckScaling(JsonElement expected, double actual, string field)
    {
        if (expected.ValueKind == JsonValueKind.Null) return;
        Assert.That(actual, Is.EqualTo(expected.GetDouble()).Within(1e-7).Percent, field);
    }

    internal static int[] Ints(JsonElement a) => a.EnumerateArray().Select(e => e.GetInt32()).ToArray();
    internal static double[] Doubles(JsonElement a) => a.EnumerateArray().Select(e => e.GetDouble()).ToArray();
}
