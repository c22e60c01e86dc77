using System.Buffers;
using System.Numerics.Tensors;

namespace BrainSeg.Engine.Cpu;

// Float32 convolution through DirectConv (the training hot path). Work is split over images when there are
// enough of them, else over tiles or filter blocks inside each image; both splits keep every output's
// summation order, so results are bit-identical whatever the thread count.
public sealed partial class CpuBackend
{
    /// <summary>Images whose filter gradients are summed into one partial before the fixed-order reduction.</summary>
    private const int FilterGroup = 4;

    /// <summary>Runs body(n, innerParallel) per image: images in parallel when there are enough, else threads inside.</summary>
    private void ForImages(int count, Action<int, bool> body)
    {
        if (Threads > 1 && count < Threads)
        {
            for (var n = 0; n < count; n++) body(n, true);
            return;
        }
        For(count, n => body(n, false));
    }

    /// <summary>body(start, end) over [0, count): cut across threads when <paramref name="parallel"/>, else whole.</summary>
    private void Split(bool parallel, int count, Action<int, int> body)
    {
        if (parallel) ForChunks(count, 1, (start, length) => body(start, start + length));
        else body(0, count);
    }

    /// <summary>
    /// Where a convolution reads one image's planes from: <see cref="Channels"/> planes of H×W placed at
    /// (Top, Left) in planes of Rows × RowStride floats, zeros around them (the convolution's padding).
    /// </summary>
    private readonly record struct SourcePlanes(int Channels, int H, int W, int Top, int Left, int Rows, int RowStride)
    {
        public int PlaneStride => Rows * RowStride;
        public DirectConv.Region Data => new(Top, Top + H, Left, Left + W);

        /// <summary>
        /// Image n of a batch of <paramref name="images"/> in <paramref name="tensor"/>, in this layout, with
        /// <paramref name="reach"/> floats readable from the start of its last plane: the tensor itself where it has that
        /// layout and room (reads past a plane's data only feed dropped outputs or zero weights, so they must stay
        /// inside the tensor), else a zero-padded copy (rented; hand it back to <see cref="ArrayPool{T}.Shared"/>).
        /// </summary>
        public (float[] Array, long Offset, float[]? Rented) Prepare(float[] tensor, int n, int images, long reach)
        {
            long image = (long)Channels * H * W, offset = n * image, last = (long)(Channels - 1) * PlaneStride;
            if (Top == 0 && Left == 0 && Rows == H && RowStride == W && offset + last + reach <= images * image)
                return (tensor, offset, null);
            var length = (int)(last + Math.Max(PlaneStride, reach));
            var copy = ArrayPool<float>.Shared.Rent(length);
            DirectConv.Embed(tensor.AsSpan((int)offset, (int)image), Channels, H, W, copy, PlaneStride, RowStride, Top, Left, length);
            return (copy, 0, copy);
        }
    }

    /// <summary>The input x of a convolution, zero-padded by the spec's padding.</summary>
    private static SourcePlanes InputPlanes(ConvGeometry g) =>
        new(g.C, g.H, g.W, g.Pad, g.Pad, g.H + 2 * g.Pad, g.W + 2 * g.Pad);

    private void ConvForwardFast(ConvGeometry g, float[] x, float[] w, float[] y, float[]? bias, bool relu)
    {
        if (!Sgemm.IsAccelerated)
        {
            ConvForwardDirect(g, x, w, y);
            BiasAndRelu(y, bias, g.N, g.K, g.Ho * g.Wo, relu);
            return;
        }
        CorrelateImages(g, InputPlanes(g), x, w, transposeAndFlip: false, g.Ho, g.Wo, g.K, y, new DirectConv.Epilogue(bias, relu));
    }

    private void ConvBackwardDataFast(ConvGeometry g, float[] dy, float[] w, float[] dx)
    {
        // dx is the correlation of dy, zero-padded by (R−1)·d − pad, with the flipped filter transposed.
        int top = (g.R - 1) * g.Dilation - g.Pad, left = (g.S - 1) * g.Dilation - g.Pad;
        if (!Sgemm.IsAccelerated || top < 0 || left < 0) { ConvBackwardDataDirect(g, dy, w, dx); return; }
        var source = new SourcePlanes(g.K, g.Ho, g.Wo, top, left, g.Ho + 2 * top, g.Wo + 2 * left);
        CorrelateImages(g, source, dy, w, transposeAndFlip: true, g.H, g.W, g.C, dx, default);
    }

    /// <summary>
    /// Each image of <paramref name="input"/>, read as <paramref name="source"/>, correlated with the filter w
    /// (as is, or transposed and flipped) into planes of outH × outW for <paramref name="outputs"/> channels, each
    /// tile finished by <paramref name="epilogue"/> before it is stored.
    /// </summary>
    private void CorrelateImages(ConvGeometry g, SourcePlanes source, float[] input, float[] w, bool transposeAndFlip,
        int outH, int outW, int outputs, float[] output, DirectConv.Epilogue epilogue)
    {
        var plan = DirectConv.TilePlan.For(outH, outW, source.RowStride, g.R, g.S, g.Dilation, source.Data);
        var packed = DirectConv.PackFilters(w, g.K, g.C, g.R * g.S, transposeAndFlip);
        ForImages(g.N, (n, inner) =>
        {
            var (src, offset, rented) = source.Prepare(input, n, g.N, plan.Reach);
            Split(inner, plan.Starts.Length, (t0, t1) =>
                DirectConv.Correlate(plan, src, offset, source.PlaneStride, source.Channels, packed, outputs, output, (long)n * outputs * outH * outW, t0, t1, epilogue));
            if (rented is not null) ArrayPool<float>.Shared.Return(rented);
        });
        ArrayPool<float>.Shared.Return(packed);
    }

    private void ConvBackwardFilterFast(ConvGeometry g, float[] x, float[] dy, float[] dw)
    {
        if (!Sgemm.IsAccelerated) { ConvBackwardFilterDirect(g, x, dy, dw); return; }
        var source = InputPlanes(g);
        var offsets = DirectConv.TilePlan.Offsets(g.R, g.S, g.Dilation, source.RowStride);
        // Each tap is one shifted dot product of dy with x, walked in rows of a multiple of 8 floats: either x's own
        // rows end to end (dy laid out with x's row stride, zeros past Wo; long loops, cut into equal pieces) or one
        // output row at a time (dy rows padded to a multiple of 8), when x's rows are much wider than the outputs.
        // dy is 32-byte aligned, so of each block's seven vector loads only the three shifted ones straddle cache lines.
        int paddedRow = (g.Wo + 7) / 8 * 8, flat = g.Ho * source.RowStride;
        int pieces = (flat + DirectConv.FilterChunk - 1) / DirectConv.FilterChunk, pieceLength = (flat / pieces + 8) / 8 * 8;
        var byRows = g.Ho * paddedRow < 0.9 * pieces * pieceLength;
        int rowLength = byRows ? paddedRow : pieceLength, rows = byRows ? g.Ho : pieces;
        int dPlane = rows * rowLength, srcRow = byRows ? source.RowStride : rowLength;
        var dLength = (g.K + DirectConv.MR - 1) / DirectConv.MR * DirectConv.MR * dPlane;
        var reach = (long)(rows - 1) * srcRow + rowLength + offsets.Max();
        int size = g.K * g.C * g.R * g.S, groups = (g.N + FilterGroup - 1) / FilterGroup, blocks = DirectConv.FilterBlocks(g.K, g.C, g.R * g.S);
        var partials = ArrayPool<float>.Shared.Rent(groups * size);
        // dw = Σ_n dw_n: fixed groups of images, each summed in order into its own partial.
        ForImages(groups, (group, inner) =>
        {
            partials.AsSpan(group * size, size).Clear();
            var d = ArrayPool<float>.Shared.Rent(dLength + 8);
            var dOff = DirectConv.AlignedStart(d);
            for (var n = group * FilterGroup; n < Math.Min(g.N, (group + 1) * FilterGroup); n++)
            {
                DirectConv.Embed(dy.AsSpan(n * g.K * g.Ho * g.Wo, g.K * g.Ho * g.Wo), g.K, g.Ho, g.Wo, d.AsSpan(dOff), dPlane, byRows ? rowLength : source.RowStride, 0, 0, dLength);
                var (src, offset, rented) = source.Prepare(x, n, g.N, reach);
                Split(inner, blocks, (b0, b1) =>
                    DirectConv.FilterAccumulate(d, dOff, dPlane, rowLength, rows, src, offset, source.PlaneStride, srcRow, g.K, g.C, offsets, partials, (long)group * size, b0, b1));
                if (rented is not null) ArrayPool<float>.Shared.Return(rented);
            }
            ArrayPool<float>.Shared.Return(d);
        });
        // Reduce the partials in group order: the same sum on any thread count.
        ForChunks(size, 4096, (start, length) =>
        {
            var dst = dw.AsSpan(start, length);
            partials.AsSpan(start, length).CopyTo(dst);
            for (var group = 1; group < groups; group++)
                TensorPrimitives.Add(dst, partials.AsSpan(group * size + start, length), dst);
        });
        ArrayPool<float>.Shared.Return(partials);
    }
}
