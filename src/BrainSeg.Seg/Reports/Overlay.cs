using BrainSeg.Mri;
using BrainSeg.Mri.Geometry;

namespace BrainSeg.Seg.Reports;

/// <summary>
/// Figure-2-like overlays: one slice of the image in grey with each class painted in the paper's colours
/// (WM blue, cGM yellow, BGT green, CB brown, BS purple, lvCSF orange, pCSF red), panels side by side
/// (e.g. image, reference, without and with adversarial training).
/// </summary>
public static class Overlay
{
    /// <summary>The paper's colour of a class name, or a fallback colour for other names.</summary>
    public static (byte R, byte G, byte B) ColourOf(string className, int classIndex) => className switch
    {
        "WM" => (40, 90, 230),
        "cGM" => (240, 220, 40),
        "BGT" => (40, 180, 60),
        "CB" => (140, 90, 40),
        "BS" => (150, 60, 190),
        "lvCSF" => (255, 140, 0),
        "pCSF" => (220, 30, 30),
        _ => Fallback[classIndex % Fallback.Length],
    };

    static readonly (byte, byte, byte)[] Fallback = [(0, 200, 200), (200, 0, 200), (120, 120, 255), (255, 120, 120), (120, 255, 120)];

    /// <summary>
    /// Draws slice <paramref name="slice"/> of <paramref name="plane"/>: the first panel the image alone, then
    /// one panel per label map (class numbers on the image grid), blended at <paramref name="opacity"/>,
    /// each pixel repeated <paramref name="scale"/> times. Rows run top to bottom as the slice's rows reversed
    /// (superior / anterior up for an RAS image).
    /// </summary>
    public static byte[] RenderPng(Volume image, IReadOnlyList<byte[]> labelMaps, IReadOnlyList<string> classNames,
        Plane plane, int slice, int scale = 3, double opacity = 0.6)
    {
        int rowsColumns = image.Count; // upper bound for a slice buffer
        var sliceValues = new float[rowsColumns];
        var (rows, columns) = image.CopySlice(plane, slice, sliceValues);
        float max = 0;
        for (int i = 0; i < rows * columns; i++) max = Math.Max(max, sliceValues[i]);
        if (max <= 0) max = 1;

        var sliceLabels = new List<float[]>();
        foreach (var map in labelMaps)
        {
            var values = new float[rowsColumns];
            image.WithVoxels(map.Select(b => (float)b).ToArray()).CopySlice(plane, slice, values);
            sliceLabels.Add(values);
        }

        int panels = 1 + labelMaps.Count, gap = 4;
        int width = panels * columns * scale + (panels - 1) * gap, height = rows * scale;
        var rgb = new byte[width * height * 3];
        rgb.AsSpan().Fill(255);
        for (int panel = 0; panel < panels; panel++)
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < columns; c++)
                {
                    double g = Math.Clamp(sliceValues[r * columns + c] / max, 0, 1) * 255;
                    double red = g, green = g, blue = g;
                    if (panel > 0)
                    {
                        int cls = (int)sliceLabels[panel - 1][r * columns + c];
                        if (cls > 0)
                        {
                            var colour = ColourOf(cls < classNames.Count ? classNames[cls] : "", cls);
                            red = (1 - opacity) * g + opacity * colour.R;
                            green = (1 - opacity) * g + opacity * colour.G;
                            blue = (1 - opacity) * g + opacity * colour.B;
                        }
                    }
                    for (int dy = 0; dy < scale; dy++)
                        for (int dx = 0; dx < scale; dx++)
                        {
                            int y = (rows - 1 - r) * scale + dy, x = panel * (columns * scale + gap) + c * scale + dx;
                            int o = (y * width + x) * 3;
                            rgb[o] = (byte)red;
                            rgb[o + 1] = (byte)green;
                            rgb[o + 2] = (byte)blue;
                        }
                }
        return Png.EncodeRgb(rgb, width, height);
    }
}
