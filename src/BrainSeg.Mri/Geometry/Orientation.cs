namespace BrainSeg.Mri.Geometry;

/// <summary>Anatomical planes: axial slices are perpendicular to inferior-superior, coronal to posterior-anterior, sagittal to left-right.</summary>
public enum Plane { Axial, Coronal, Sagittal }

/// <summary>How the array axes of a volume lie in the world (RAS+), whatever the file's storage order.</summary>
public static class Orientation
{
    /// <summary>
    /// For each array axis, the world axis it runs closest to (0 = x/left-right, 1 = y/posterior-anterior,
    /// 2 = z/inferior-superior) and whether it runs towards +world. Each world axis is used once:
    /// the largest remaining |component| wins, as in nibabel's io_orientation for non-oblique data.
    /// </summary>
    public static (int WorldAxis, bool Positive)[] ArrayAxes(Affine affine)
    {
        var result = new (int, bool)[3];
        var arrayUsed = new bool[3];
        var worldUsed = new bool[3];
        for (int step = 0; step < 3; step++)
        {
            double best = -1;
            int bestArray = 0, bestWorld = 0;
            for (int a = 0; a < 3; a++)
            {
                if (arrayUsed[a]) continue;
                for (int w = 0; w < 3; w++)
                {
                    if (worldUsed[w]) continue;
                    double v = Math.Abs(affine[w, a]);
                    if (v > best) { best = v; bestArray = a; bestWorld = w; }
                }
            }
            arrayUsed[bestArray] = worldUsed[bestWorld] = true;
            result[bestArray] = (bestWorld, affine[bestWorld, bestArray] >= 0);
        }
        return result;
    }

    /// <summary>Axis codes as nibabel's aff2axcodes: the direction each array axis points to, e.g. "RAS" or "LIA".</summary>
    public static string AxisCodes(Affine affine)
    {
        const string positive = "RAS", negative = "LPI";
        return new string(ArrayAxes(affine).Select(a => a.Positive ? positive[a.WorldAxis] : negative[a.WorldAxis]).ToArray());
    }

    /// <summary>The array axis to step along to move from one slice of <paramref name="plane"/> to the next.</summary>
    public static int SliceAxis(Affine affine, Plane plane)
    {
        int world = plane switch { Plane.Sagittal => 0, Plane.Coronal => 1, _ => 2 };
        var axes = ArrayAxes(affine);
        return Array.FindIndex(axes, a => a.WorldAxis == world);
    }

    /// <summary>The slice axis and the two in-plane array axes (in storage order: the faster-varying one first).</summary>
    public static (int Slice, int Column, int Row) PlaneAxes(Affine affine, Plane plane)
    {
        int slice = SliceAxis(affine, plane);
        int column = slice == 0 ? 1 : 0;
        int row = slice == 2 ? 1 : 2;
        return (slice, column, row);
    }

    public static Plane ParsePlane(string name) => name.Trim().ToLowerInvariant() switch
    {
        "axial" => Plane.Axial,
        "coronal" => Plane.Coronal,
        "sagittal" => Plane.Sagittal,
        _ => throw new BadInputException($"Unknown plane \"{name}\": use axial, coronal or sagittal."),
    };
}
