using System.Collections;

namespace BrainSeg.Engine;

/// <summary>
/// An immutable list of dimensions. Tensors are row-major and contiguous, so the shape alone fixes the
/// layout; image tensors are NCHW.
/// </summary>
public sealed class Shape : IEquatable<Shape>, IReadOnlyList<int>
{
    private readonly int[] _dims;

    public Shape(params int[] dims)
    {
        foreach (var d in dims)
            if (d < 0) throw new ArgumentException($"Shape {Format(dims)} has a negative dimension.", nameof(dims));
        _dims = (int[])dims.Clone();
        long n = 1;
        foreach (var d in _dims) n = checked(n * d);
        Numel = n;
    }

    public int Rank => _dims.Length;
    public long Numel { get; }
    public int this[int axis] => _dims[axis < 0 ? _dims.Length + axis : axis];
    public int Count => _dims.Length;

    // NCHW accessors for 4-D image tensors.
    public int N => Require4D()[0];
    public int C => Require4D()[1];
    public int H => Require4D()[2];
    public int W => Require4D()[3];

    public int[] ToArray() => (int[])_dims.Clone();

    private int[] Require4D() =>
        _dims.Length == 4 ? _dims : throw new InvalidOperationException($"Expected an NCHW shape, got {this}.");

    public bool Equals(Shape? other) => other is not null && _dims.AsSpan().SequenceEqual(other._dims);
    public override bool Equals(object? obj) => obj is Shape s && Equals(s);
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in _dims) h.Add(d);
        return h.ToHashCode();
    }

    public static bool operator ==(Shape? a, Shape? b) => a is null ? b is null : a.Equals(b);
    public static bool operator !=(Shape? a, Shape? b) => !(a == b);

    public override string ToString() => Format(_dims);
    private static string Format(int[] dims) => "[" + string.Join(", ", dims) + "]";

    public IEnumerator<int> GetEnumerator() => ((IEnumerable<int>)_dims).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => _dims.GetEnumerator();
}
