namespace BrainSeg.Mri.Geometry;

/// <summary>
/// A 4x4 voxel-to-world (RAS+, millimetres) matrix in double precision; the last row is 0 0 0 1.
/// Voxel indices are (i, j, k) along the first three array axes.
/// </summary>
public sealed class Affine : IEquatable<Affine>
{
    private readonly double[] _m; // row-major 4x4

    public Affine(double[,] matrix)
    {
        if (matrix.GetLength(0) != 4 || matrix.GetLength(1) != 4)
            throw new ArgumentException("An affine is a 4x4 matrix.", nameof(matrix));
        _m = new double[16];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                _m[r * 4 + c] = matrix[r, c];
    }

    private Affine(double[] rowMajor) => _m = rowMajor;

    public static Affine Identity => Diagonal(1, 1, 1);

    public static Affine Diagonal(double x, double y, double z) =>
        FromRows([x, 0, 0, 0], [0, y, 0, 0], [0, 0, z, 0]);

    /// <summary>Builds an affine from its first three rows (the fourth is 0 0 0 1).</summary>
    public static Affine FromRows(ReadOnlySpan<double> row0, ReadOnlySpan<double> row1, ReadOnlySpan<double> row2)
    {
        if (row0.Length != 4 || row1.Length != 4 || row2.Length != 4)
            throw new ArgumentException("Each affine row has four values.");
        var m = new double[16];
        row0.CopyTo(m);
        row1.CopyTo(m.AsSpan(4));
        row2.CopyTo(m.AsSpan(8));
        m[15] = 1;
        return new Affine(m);
    }

    /// <summary>From a 3x3 linear part (row-major) and a translation.</summary>
    public static Affine FromLinear(ReadOnlySpan<double> linear3x3, double tx, double ty, double tz) =>
        FromRows([linear3x3[0], linear3x3[1], linear3x3[2], tx],
                 [linear3x3[3], linear3x3[4], linear3x3[5], ty],
                 [linear3x3[6], linear3x3[7], linear3x3[8], tz]);

    public double this[int row, int column] => _m[row * 4 + column];

    public double[,] ToArray()
    {
        var a = new double[4, 4];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                a[r, c] = _m[r * 4 + c];
        return a;
    }

    /// <summary>World coordinates of voxel (i, j, k).</summary>
    public (double X, double Y, double Z) Apply(double i, double j, double k) =>
        (_m[0] * i + _m[1] * j + _m[2] * k + _m[3],
         _m[4] * i + _m[5] * j + _m[6] * k + _m[7],
         _m[8] * i + _m[9] * j + _m[10] * k + _m[11]);

    public Affine Multiply(Affine right)
    {
        var m = new double[16];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
            {
                double s = 0;
                for (int k = 0; k < 4; k++) s += _m[r * 4 + k] * right._m[k * 4 + c];
                m[r * 4 + c] = s;
            }
        return new Affine(m);
    }

    /// <summary>Length of each voxel axis in world units (the column norms of the linear part).</summary>
    public (double X, double Y, double Z) VoxelSizes()
    {
        double Norm(int c) => Math.Sqrt(_m[c] * _m[c] + _m[4 + c] * _m[4 + c] + _m[8 + c] * _m[8 + c]);
        return (Norm(0), Norm(1), Norm(2));
    }

    public bool ApproximatelyEquals(Affine other, double tolerance)
    {
        for (int i = 0; i < 16; i++)
            if (!(Math.Abs(_m[i] - other._m[i]) <= tolerance)) return false;
        return true;
    }

    public bool Equals(Affine? other) => other is not null && _m.AsSpan().SequenceEqual(other._m);
    public override bool Equals(object? obj) => Equals(obj as Affine);
    public override int GetHashCode() => HashCode.Combine(_m[0], _m[5], _m[10], _m[3], _m[7], _m[11]);

    public override string ToString()
    {
        var rows = new string[4];
        for (int r = 0; r < 4; r++)
            rows[r] = string.Join(' ', Enumerable.Range(0, 4).Select(c => _m[r * 4 + c].ToString("G6", System.Globalization.CultureInfo.InvariantCulture)));
        return "[" + string.Join("; ", rows) + "]";
    }
}
