using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BrainSeg.Engine.Cpu;

/// <summary>
/// Direct single-precision convolution with no im2col matrix. A source is a stack of planes whose rows
/// are <c>rowStride</c> floats apart; an output position (i, j) and a filter tap (p, q) meet at source
/// offset (i + p·d)·rowStride + j + q·d, so along a row-major walk of positions every tap is a fixed
/// shift. A 4×24 register tile (4 output channels, 24 consecutive positions) therefore reads its
/// right-hand operand straight from the source rows, three vectors per input channel and tap, with no
/// packing: each source value is loaded once per tile instead of copied nine times into a column matrix.
/// The backward data pass is the same correlation of the zero-padded output gradient with the flipped,
/// transposed filter; the filter gradient is a dot product of output-gradient rows with shifted source rows.
/// Every loop here is compiled fully optimised at first call (a layer is called too rarely for tiering to reach it early).
/// </summary>
internal static unsafe class DirectConv
{
    public const int MR = 4, NR = 24;

    /// <summary>
    /// Floats of each row that one pass of the filter gradient covers (4 KiB: the pass's rows stay in L2): longer
    /// rows are cut into pieces of at most this, shorter ones taken several at a time.
    /// </summary>
    public const int FilterChunk = 1024;

    /// <summary>Rectangle [Top, Bottom) × [Left, Right) of a source plane that holds data; zeros lie around it.</summary>
    public readonly record struct Region(int Top, int Bottom, int Left, int Right);

    /// <summary>
    /// Filters laid out for <see cref="Correlate"/>: for each block of MR output channels, for each tap, for each
    /// input channel, MR weights (zero past the last output channel). <paramref name="transposeAndFlip"/> gives
    /// the backward-data filter: outputs are w's input channels, inputs its output channels, taps reversed.
    /// The array is rented: hand it back to <see cref="ArrayPool{T}.Shared"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float[] PackFilters(float[] w, int k, int c, int taps, bool transposeAndFlip)
    {
        int inputs = transposeAndFlip ? k : c, outputs = transposeAndFlip ? c : k;
        var length = (outputs + MR - 1) / MR * taps * inputs * MR;
        var packed = ArrayPool<float>.Shared.Rent(length);
        packed.AsSpan(0, length).Clear();
        for (var o = 0; o < outputs; o++)
            for (var tap = 0; tap < taps; tap++)
                for (var i = 0; i < inputs; i++)
                {
                    var source = transposeAndFlip ? (i * c + o) * taps + taps - 1 - tap : (o * c + i) * taps + tap;
                    packed[((o / MR * taps + tap) * inputs + i) * MR + o % MR] = w[source];
                }
        return packed;
    }

    /// <summary>
    /// Copies <paramref name="channels"/> contiguous h×w planes into planes of <paramref name="planeStride"/> floats whose
    /// rows are <paramref name="rowStride"/> apart, the data at (top, left) and zeros around it, then zeros up to
    /// <paramref name="length"/> floats in all.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Embed(ReadOnlySpan<float> src, int channels, int h, int w, Span<float> dst, int planeStride, int rowStride, int top, int left, int length)
    {
        for (var c = 0; c < channels; c++)
        {
            var plane = dst.Slice(c * planeStride, planeStride);
            plane[..(top * rowStride)].Clear();
            for (var i = 0; i < h; i++)
            {
                var row = plane.Slice((top + i) * rowStride, rowStride);
                row[..left].Clear();
                src.Slice((c * h + i) * w, w).CopyTo(row.Slice(left, w));
                row[(left + w)..].Clear();
            }
            plane[((top + h) * rowStride)..].Clear();
        }
        dst[(channels * planeStride)..length].Clear();
    }

    // ---- correlation: forward and backward data ----

    /// <summary>What a tile's sums go through before they are stored: + bias[o] when given, then ReLU when asked.</summary>
    public readonly record struct Epilogue(float[]? Bias, bool Relu)
    {
        public bool IsIdentity => Bias is null && !Relu;
    }

    /// <summary>
    /// output[o, i, j] = Σ_tap Σ_ci packed(o, tap, ci) · src[ci·planeStride + (i + p·d)·rowStride + j + q·d] for
    /// the tiles [tile0, tile1) of <paramref name="plan"/>, o over all outputs (written, not added), each value
    /// passed through <paramref name="epilogue"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Correlate(TilePlan plan, float[] src, long srcOffset, int planeStride, int inputs,
        float[] packed, int outputs, float[] output, long outputOffset, int tile0, int tile1, Epilogue epilogue)
    {
        var tile = stackalloc float[MR * NR];
        Span<Run> runs = stackalloc Run[NR];
        int blocks = (outputs + MR - 1) / MR, panel = plan.TapOffsets.Length * inputs * MR, planeSize = plan.Ho * plan.Wo;
        fixed (float* s = src, w = packed, y = output)
        fixed (int* offsets = plan.TapOffsets, taps = plan.TapList)
        {
            for (var t = tile0; t < tile1; t++)
            {
                var u0 = plan.Starts[t];
                var count = plan.Runs(u0, runs);
                int first = plan.TapFirst[t], tapCount = plan.TapFirst[t + 1] - first;
                for (var block = 0; block < blocks; block++)
                {
                    Tile(s + srcOffset + u0, planeStride, inputs, taps + first, tapCount, offsets, w + (long)block * panel, tile);
                    var rows = Math.Min(MR, outputs - block * MR);
                    if (!epilogue.IsIdentity) Finish(tile, rows, epilogue, block * MR);
                    var yBlock = y + outputOffset + (long)block * MR * planeSize;
                    for (var r = 0; r < count; r++)
                    {
                        var run = runs[r];
                        for (var o = 0; o < rows; o++)
                            new Span<float>(tile + o * NR + run.Element, run.Length)
                                .CopyTo(new Span<float>(yBlock + (long)o * planeSize + run.Output, run.Length));
                    }
                }
            }
        }
    }

    /// <summary>
    /// The epilogue on the first <paramref name="rows"/> rows of a tile, whose row o is output channel first + o: the
    /// same float additions as a separate bias pass, and ReLU with IEEE maximum's rules (NaN stays, −0 becomes +0).
    /// </summary>
    private static void Finish(float* tile, int rows, Epilogue epilogue, int first)
    {
        for (var o = 0; o < rows; o++)
        {
            var bias = Vector256.Create(epilogue.Bias is null ? 0f : epilogue.Bias[first + o]);
            for (var at = tile + o * NR; at < tile + (o + 1) * NR; at += Vector256<float>.Count)
            {
                var v = Avx.LoadVector256(at);
                if (epilogue.Bias is not null) v = Avx.Add(v, bias);
                if (epilogue.Relu)
                {
                    var keep = Vector256.GreaterThan(v, Vector256<float>.Zero) | ~Vector256.Equals(v, v);
                    v = Vector256.ConditionalSelect(keep, v, Vector256<float>.Zero);
                }
                Avx.Store(at, v);
            }
        }
    }

    /// <summary>One MR×NR tile: 12 AVX accumulators over the tile's taps and all input channels.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile(float* src, int planeStride, int inputs, int* taps, int tapCount, int* offsets, float* w, float* tile)
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
        Vector256<float> c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
        for (var t = 0; t < tapCount; t++)
        {
            var tap = taps[t];
            var b = src + offsets[tap];
            var a = w + tap * inputs * MR;
            for (var ci = 0; ci < inputs; ci++)
            {
                var b0 = Avx.LoadVector256(b);
                var b1 = Avx.LoadVector256(b + 8);
                var b2 = Avx.LoadVector256(b + 16);
                var a0 = Vector256.Create(a[0]);
                c00 = Fma.MultiplyAdd(a0, b0, c00);
                c01 = Fma.MultiplyAdd(a0, b1, c01);
                c02 = Fma.MultiplyAdd(a0, b2, c02);
                var a1 = Vector256.Create(a[1]);
                c10 = Fma.MultiplyAdd(a1, b0, c10);
                c11 = Fma.MultiplyAdd(a1, b1, c11);
                c12 = Fma.MultiplyAdd(a1, b2, c12);
                var a2 = Vector256.Create(a[2]);
                c20 = Fma.MultiplyAdd(a2, b0, c20);
                c21 = Fma.MultiplyAdd(a2, b1, c21);
                c22 = Fma.MultiplyAdd(a2, b2, c22);
                var a3 = Vector256.Create(a[3]);
                c30 = Fma.MultiplyAdd(a3, b0, c30);
                c31 = Fma.MultiplyAdd(a3, b1, c31);
                c32 = Fma.MultiplyAdd(a3, b2, c32);
                a += MR;
                b += planeStride;
            }
        }
        Avx.Store(tile, c00); Avx.Store(tile + 8, c01); Avx.Store(tile + 16, c02);
        Avx.Store(tile + NR, c10); Avx.Store(tile + NR + 8, c11); Avx.Store(tile + NR + 16, c12);
        Avx.Store(tile + 2 * NR, c20); Avx.Store(tile + 2 * NR + 8, c21); Avx.Store(tile + 2 * NR + 16, c22);
        Avx.Store(tile + 3 * NR, c30); Avx.Store(tile + 3 * NR + 8, c31); Avx.Store(tile + 3 * NR + 16, c32);
    }

    // ---- filter gradient ----

    /// <summary>
    /// The first index of <paramref name="array"/> on a 32-byte boundary (so aligned vector loads never straddle
    /// cache lines). Large arrays live on the large-object heap, which is not compacted, so the boundary holds;
    /// were an array moved, only the alignment would be lost, never the data.
    /// </summary>
    public static int AlignedStart(float[] array)
    {
        fixed (float* p = array) return (int)((32 - ((nint)p & 31)) & 31) / sizeof(float);
    }

    /// <summary>Blocks of <see cref="FilterAccumulate"/>: MR output channels by three (input channel, tap) rows.</summary>
    public static int FilterBlocks(int k, int c, int taps) => (k + MR - 1) / MR * ((c * taps + 2) / 3);

    /// <summary>
    /// dw[o, ci·taps + tap] += Σ_i Σ_j d[o·dPlane + i·dRow + j] · src[ci·planeStride + i·srcRow + j + tapOffsets[tap]]
    /// for output rows i &lt; rows and j &lt; dRow (a multiple of 8; d is zero past each row's outputs and past the last
    /// output channel, up to MR-rounded channels), over blocks [block0, block1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void FilterAccumulate(float[] d, long dOffset, int dPlane, int dRow, int rows, float[] src, long srcOffset,
        int planeStride, int srcRow, int k, int c, int[] tapOffsets, float[] dw, long dwOffset, int block0, int block1)
    {
        int taps = tapOffsets.Length, rowsB = c * taps, blocksB = (rowsB + 2) / 3, chunkRows = Math.Max(1, FilterChunk / dRow);
        var sums = stackalloc float[MR * 3];
        var rowB = stackalloc long[3];
        fixed (float* pd = d, s = src, pw = dw)
        {
            for (var row0 = 0; row0 < rows; row0 += chunkRows)
            {
                var count = Math.Min(chunkRows, rows - row0);
                for (var block = block0; block < block1; block++)
                {
                    int k0 = block / blocksB * MR, b0 = block % blocksB * 3;
                    for (var j = 0; j < 3; j++)
                    {
                        // Past the last row the block repeats it; those sums are dropped.
                        var b = Math.Min(b0 + j, rowsB - 1);
                        rowB[j] = srcOffset + (long)(b / taps) * planeStride + tapOffsets[b % taps] + (long)row0 * srcRow;
                    }
                    FilterBlock(pd + dOffset + (long)k0 * dPlane + (long)row0 * dRow, dPlane, dRow, s + rowB[0], s + rowB[1], s + rowB[2], srcRow, count, sums);
                    for (var r = 0; r < Math.Min(MR, k - k0); r++)
                        for (var j = 0; j < Math.Min(3, rowsB - b0); j++)
                            pw[dwOffset + (long)(k0 + r) * rowsB + b0 + j] += sums[r * 3 + j];
                }
            }
        }
    }

    /// <summary>The 12 dot products of MR d planes with three source rows, over <paramref name="rows"/> rows of dRow floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FilterBlock(float* d, int dPlane, int dRow, float* s0, float* s1, float* s2, int srcRow, int rows, float* sums)
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
        Vector256<float> c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
        for (var i = 0; i < rows; i++, d += dRow, s0 += srcRow, s1 += srcRow, s2 += srcRow)
        {
            float* d1 = d + dPlane, d2 = d1 + dPlane, d3 = d2 + dPlane;
            for (var u = 0; u < dRow; u += 8)
            {
                var v0 = Avx.LoadVector256(s0 + u);
                var v1 = Avx.LoadVector256(s1 + u);
                var v2 = Avx.LoadVector256(s2 + u);
                var a = Avx.LoadVector256(d + u);
                c00 = Fma.MultiplyAdd(a, v0, c00);
                c01 = Fma.MultiplyAdd(a, v1, c01);
                c02 = Fma.MultiplyAdd(a, v2, c02);
                a = Avx.LoadVector256(d1 + u);
                c10 = Fma.MultiplyAdd(a, v0, c10);
                c11 = Fma.MultiplyAdd(a, v1, c11);
                c12 = Fma.MultiplyAdd(a, v2, c12);
                a = Avx.LoadVector256(d2 + u);
                c20 = Fma.MultiplyAdd(a, v0, c20);
                c21 = Fma.MultiplyAdd(a, v1, c21);
                c22 = Fma.MultiplyAdd(a, v2, c22);
                a = Avx.LoadVector256(d3 + u);
                c30 = Fma.MultiplyAdd(a, v0, c30);
                c31 = Fma.MultiplyAdd(a, v1, c31);
                c32 = Fma.MultiplyAdd(a, v2, c32);
            }
        }
        sums[0] = Vector256.Sum(c00); sums[1] = Vector256.Sum(c01); sums[2] = Vector256.Sum(c02);
        sums[3] = Vector256.Sum(c10); sums[4] = Vector256.Sum(c11); sums[5] = Vector256.Sum(c12);
        sums[6] = Vector256.Sum(c20); sums[7] = Vector256.Sum(c21); sums[8] = Vector256.Sum(c22);
        sums[9] = Vector256.Sum(c30); sums[10] = Vector256.Sum(c31); sums[11] = Vector256.Sum(c32);
    }

    /// <summary>Positions e ∈ [Element, Element + Length) of a tile that are outputs, stored from output index Output on.</summary>
    public readonly record struct Run(int Row, int Column, int Element, int Length, int Output);

    /// <summary>
    /// How one Ho×Wo output plane is cut into tiles of NR positions of the source's row-major walk, and which taps
    /// each tile needs. Tiles either run straight across row ends (the columns past Wo are computed and dropped) or
    /// stay inside one output row; whichever does fewer tap passes is used. A tap whose reads for every output of a
    /// tile fall outside the source's data region only adds zeros, so the tile skips it.
    /// </summary>
    public sealed class TilePlan
    {
        public int Ho { get; }
        public int Wo { get; }
        public int RowStride { get; }
        public bool WithinRows { get; }
        public int[] Starts { get; }
        public int[] TapOffsets { get; }
        /// <summary>Tile t's taps are TapList[TapFirst[t] .. TapFirst[t + 1]).</summary>
        public int[] TapFirst { get; }
        public int[] TapList { get; }

        /// <summary>Floats read from the start of a source plane on (the last plane needs this much behind it).</summary>
        public long Reach { get; }

        private TilePlan(int ho, int wo, int rowStride, bool withinRows, int[] tapOffsets, int[] starts, int[] tapFirst, int[] tapList)
        {
            (Ho, Wo, RowStride, WithinRows, TapOffsets) = (ho, wo, rowStride, withinRows, tapOffsets);
            (Starts, TapFirst, TapList) = (starts, tapFirst, tapList);
            Reach = (starts.Length == 0 ? 0 : starts[^1]) + NR + tapOffsets.Max();
        }

        /// <summary>Source offset of each tap (p, q): p·d·rowStride + q·d.</summary>
        public static int[] Offsets(int r, int s, int dilation, int rowStride)
        {
            var offsets = new int[r * s];
            for (var tap = 0; tap < offsets.Length; tap++) offsets[tap] = tap / s * dilation * rowStride + tap % s * dilation;
            return offsets;
        }

        private static readonly ConcurrentDictionary<(int, int, int, int, int, int, Region), TilePlan> Plans = new();

        /// <summary>
        /// The cheaper tiling of an Ho×Wo output over a source with rows rowStride apart whose data lies in
        /// <paramref name="data"/>; plans are kept by geometry, since a network asks for the same few every step.
        /// </summary>
        public static TilePlan For(int ho, int wo, int rowStride, int r, int s, int dilation, Region data)
        {
            // Bounded: inference over many slice sizes must not grow the cache without end.
            if (Plans.Count > 256) Plans.Clear();
            return Plans.GetOrAdd((ho, wo, rowStride, r, s, dilation, data), key => Create(key.Item1, key.Item2, key.Item3, key.Item4, key.Item5, key.Item6, key.Item7));
        }

        private static TilePlan Create(int ho, int wo, int rowStride, int r, int s, int dilation, Region data)
        {
            var offsets = Offsets(r, s, dilation, rowStride);
            var across = Build(ho, wo, rowStride, false, offsets, s, dilation, data);
            var within = Build(ho, wo, rowStride, true, offsets, s, dilation, data);
            return within.TapList.Length < across.TapList.Length ? within : across;
        }

        private static TilePlan Build(int ho, int wo, int rowStride, bool withinRows, int[] offsets, int s, int dilation, Region data)
        {
            List<int> starts = [], first = [0], list = [];
            Span<Run> runs = stackalloc Run[NR];
            var candidates = withinRows
                ? Enumerable.Range(0, ho).SelectMany(i => Enumerable.Range(0, (wo + NR - 1) / NR).Select(j => i * rowStride + j * NR))
                : Enumerable.Range(0, ((ho - 1) * rowStride + wo + NR - 1) / NR).Select(t => t * NR);
            foreach (var u0 in candidates)
            {
                var count = RunsOf(ho, wo, rowStride, withinRows, u0, runs);
                if (count == 0) continue;
                for (var tap = 0; tap < offsets.Length; tap++)
                {
                    int dp = tap / s * dilation, dq = tap % s * dilation;
                    foreach (var run in runs[..count])
                    {
                        var row = run.Row + dp;
                        if (row < data.Top || row >= data.Bottom) continue;
                        if (run.Column + dq < data.Right && run.Column + run.Length + dq > data.Left) { list.Add(tap); break; }
                    }
                }
                starts.Add(u0);
                first.Add(list.Count);
            }
            return new TilePlan(ho, wo, rowStride, withinRows, offsets, starts.ToArray(), first.ToArray(), list.ToArray());
        }

        /// <summary>The stretches of outputs in the tile starting at u0 (at most NR).</summary>
        public int Runs(int u0, Span<Run> runs) => RunsOf(Ho, Wo, RowStride, WithinRows, u0, runs);

        private static int RunsOf(int ho, int wo, int rowStride, bool withinRows, int u0, Span<Run> runs)
        {
            int count = 0, lastRow = withinRows ? u0 / rowStride : Math.Min(ho - 1, (u0 + NR - 1) / rowStride);
            for (var i = u0 / rowStride; i <= lastRow; i++)
            {
                int j0 = Math.Max(0, u0 - i * rowStride), j1 = Math.Min(wo, u0 + NR - i * rowStride);
                if (j0 < j1) runs[count++] = new Run(i, j0, i * rowStride + j0 - u0, j1 - j0, i * wo + j0);
            }
            return count;
        }
    }
}
