using System.Globalization;
using System.Text;
using System.Text.Json;

namespace BrainSeg.Mri.IO;

/// <summary>
/// What `brainseg nifti-info` reports: shape, on-disk datatype (numpy's spelling), voxel sizes, the
/// affine nibabel would use, sform/qform codes, the scaling fields, and statistics of the scaled data.
/// </summary>
public sealed record ImageInfo(
    string Path, ImageFormat Format, int[] Shape, string DataType, double[] Zooms, double[,] Affine,
    int SFormCode, int QFormCode, double? SclSlope, double? SclInter, ImageStatistics Statistics)
{
    public static ImageInfo Of(MriImage image)
    {
        var h = image.Header;
        return new ImageInfo(image.Path, image.Format, image.Shape, h.DataType.OnDiskName(h.IsBigEndian), h.Zooms,
            image.Affine.ToArray(), h.SFormCode, h.QFormCode,
            // null when the file applies no scaling (slope 0 or not finite), as nibabel's get_slope_inter.
            h.HasScaling ? h.SclSlope : null, h.HasScaling ? h.SclInter : null, image.Statistics());
    }

    public static ImageInfo Read(string path) => Of(ImageReader.Read(path));

    /// <summary>JSON with the field names of nibabel-based tooling (shape, datatype, zooms, affine, ...).</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("path", Path);
            w.WriteString("format", Format.ToString());
            w.WriteStartArray("shape");
            foreach (int s in Shape) w.WriteNumberValue(s);
            w.WriteEndArray();
            w.WriteString("datatype", DataType);
            w.WriteStartArray("zooms");
            foreach (double z in Zooms) Number(w, z);
            w.WriteEndArray();
            w.WriteStartArray("affine");
            for (int r = 0; r < 4; r++)
            {
                w.WriteStartArray();
                for (int c = 0; c < 4; c++) Number(w, Affine[r, c]);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteNumber("sform_code", SFormCode);
            w.WriteNumber("qform_code", QFormCode);
            w.WritePropertyName("scl_slope");
            Number(w, SclSlope);
            w.WritePropertyName("scl_inter");
            Number(w, SclInter);
            w.WritePropertyName("sum");
            Number(w, Statistics.Sum);
            w.WritePropertyName("sumsq");
            Number(w, Statistics.SumOfSquares);
            w.WritePropertyName("min");
            Number(w, Statistics.Min);
            w.WritePropertyName("max");
            Number(w, Statistics.Max);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    // JSON has no NaN or infinity: those are written as null.
    private static void Number(Utf8JsonWriter w, double? value)
    {
        if (value is double v && double.IsFinite(v)) w.WriteNumberValue(v);
        else w.WriteNullValue();
    }

    public string ToText()
    {
        var c = CultureInfo.InvariantCulture;
        var s = new StringBuilder();
        s.AppendLine($"file        {Path} ({Format})");
        s.AppendLine($"shape       {string.Join(" x ", Shape)}");
        s.AppendLine($"datatype    {DataType}");
        s.AppendLine($"zooms       {string.Join(", ", Zooms.Select(z => z.ToString("G7", c)))}");
        s.AppendLine($"sform_code  {SFormCode}    qform_code {QFormCode}");
        s.AppendLine($"scl_slope   {(SclSlope is double a ? a.ToString("G9", c) : "none")}    scl_inter {(SclInter is double b ? b.ToString("G9", c) : "none")}");
        s.AppendLine("affine");
        for (int r = 0; r < 4; r++)
            s.AppendLine("  " + string.Join("  ", Enumerable.Range(0, 4).Select(col => Affine[r, col].ToString("F6", c).PadLeft(12))));
        s.AppendLine($"sum         {Statistics.Sum.ToString("G17", c)}");
        s.AppendLine($"sumsq       {Statistics.SumOfSquares.ToString("G17", c)}");
        s.AppendLine($"min         {Statistics.Min.ToString("G17", c)}");
        s.Append($"max         {Statistics.Max.ToString("G17", c)}");
        return s.ToString();
    }
}
