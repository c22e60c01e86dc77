namespace BrainSeg.Engine;

/// <summary>
/// How a 4-D tensor's elements lie in memory. The shape is always (N, C, H, W); the layout says which index runs
/// fastest: NCHW (row-major, the CPU backend's and every host array's order) or channels-last NHWC (C fastest; for
/// filters [K, C, R, S] that is KRSC), which GPU convolution engines prefer. Other ranks have one order.
/// </summary>
public enum TensorLayout { Nchw, Nhwc }

/// <summary>Conversions between host NCHW arrays and channels-last memory.</summary>
public static class Layouts
{
    /// <summary>
    /// True when both layouts put every element at the same offset: not 4-D, one channel, or one pixel per image.
    /// Such tensors mix freely with either layout.
    /// </summary>
    public static bool IsTrivial(Shape shape) => shape.Rank != 4 || shape[1] == 1 || (long)shape[2] * shape[3] == 1;

    /// <summary>nhwc[n, h, w, c] = nchw[n, c, h, w] for a 4-D <paramref name="shape"/>.</summary>
    public static void ToChannelsLast<T>(ReadOnlySpan<T> nchw, Span<T> nhwc, Shape shape) => Transpose(nchw, nhwc, shape, toChannelsLast: true);

    /// <summary>nchw[n, c, h, w] = nhwc[n, h, w, c] for a 4-D <paramref name="shape"/>.</summary>
    public static void FromChannelsLast<T>(ReadOnlySpan<T> nhwc, Span<T> nchw, Shape shape) => Transpose(nhwc, nchw, shape, toChannelsLast: false);

    private static void Transpose<T>(ReadOnlySpan<T> from, Span<T> to, Shape shape, bool toChannelsLast)
    {
        var (n, c, pixels) = Dims(shape, from.Length, to.Length);
        for (var b = 0; b < n; b++)
            for (var ch = 0; ch < c; ch++)
                for (int p = 0, planar = (b * c + ch) * pixels, interleaved = b * c * pixels + ch; p < pixels; p++, planar++, interleaved += c)
                    if (toChannelsLast) to[interleaved] = from[planar];
                    else to[planar] = from[interleaved];
    }

    private static (int N, int C, int Pixels) Dims(Shape shape, int source, int destination)
    {
        if (shape.Rank != 4) throw new ArgumentException($"Only 4-D tensors have a channels-last layout, got {shape}.");
        if (source != shape.Numel || destination != shape.Numel)
            throw new ArgumentException($"{shape} has {shape.Numel} elements; the spans hold {source} and {destination}.");
        return (shape.N, shape.C, shape.H * shape.W);
    }
}
