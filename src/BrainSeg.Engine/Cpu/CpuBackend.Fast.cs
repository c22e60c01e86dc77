using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BrainSeg.Engine.Cpu;

// Float32 convolution as im2col + SGEMM (the training hot path). Work is split over images when there
// are enough of them, else inside each GEMM; both splits keep every output's summation order, so results
// are bit-identical whatever the thread count.
public sealed partial class CpuBackend
{
    /// <summary>Images whose filter gradients are summed into one partial before the fixed-order reduction.</summary>
    private const int FilterGroup = 4;

    internal void ForEach(int count, Action<int> body) => For(count, body);

    /// <summary>c[cOff..] += alpha·A·B with strided operands, cut across threads when <paramref name="parallel"/>.</summary>
    internal unsafe void GemmAccumulate<TB>(bool parallel, int m, int n, int k, float alpha,
        float[] a, long aOff, int rsA, int csA, TB b, float[] c, long cOff, int ldc) where TB : struct, IPanelSource
    {
        if (m == 0 || n == 0 || k == 0 || alpha == 0) return;
        var (tasks, byColumns) = parallel ? Sgemm.Split(Threads, m, n, k) : (1, true);
        For(tasks, t =>
        {
            int i0 = 0, i1 = m, j0 = 0, j1 = n;
            if (byColumns) (j0, j1) = Sgemm.Range(n, Sgemm.NR, tasks, t);
            else (i0, i1) = Sgemm.Range(m, Sgemm.MR, tasks, t);
            if (i1 <= i0 || j1 <= j0) return;
            fixed (float* pa = a, pc = c)
                Sgemm.Accumulate(i1 - i0, j1 - j0, k, alpha, pa + aOff + (long)i0 * rsA, rsA, csA, b, j0,
                    pc + cOff + (long)i0 * ldc + j0, ldc);
        });
    }

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

    private static bool ColumnIsInput(ConvGeometry g) => g.R == 1 && g.S == 1 && g.Pad == 0;

    private void ConvForwardFast(ConvGeometry g, float[] x, float[] w, float[] y)
    {
        if (!Sgemm.IsAccelerated) { ConvForwardDirect(g, x, w, y); return; }
        int crs = g.C * g.R * g.S, hw = g.Ho * g.Wo;
        ForImages(g.N, (n, inner) =>
        {
            // y_n[K, HoWo] = w[K, CRS] · col_n[CRS, HoWo], the columns packed straight from x.
            var yOff = (long)n * g.K * hw;
            y.AsSpan((int)yOff, g.K * hw).Clear();
            GemmAccumulate(inner, g.K, hw, crs, 1f, w, 0, crs, 1, new Im2ColSource(g, x, n, Transposed: false), y, yOff, hw);
        });
    }

    private void ConvBackwardDataFast(ConvGeometry g, float[] dy, float[] w, float[] dx)
    {
        if (!Sgemm.IsAccelerated) { ConvBackwardDataDirect(g, dy, w, dx); return; }
        int crs = g.C * g.R * g.S, hw = g.Ho * g.Wo;
        ForImages(g.N, (n, inner) =>
        {
            var dyOff = (long)n * g.K * hw;
            if (ColumnIsInput(g))
            {
                var dxOff = (long)n * g.C * g.H * g.W;
                dx.AsSpan((int)dxOff, g.C * hw).Clear();
                GemmAccumulate(inner, crs, hw, g.K, 1f, w, 0, 1, crs, new StridedSource(dy, dyOff, hw, 1), dx, dxOff, hw);
                return;
            }
            // dcol[CRS, HoWo] = wᵀ[CRS, K] · dy_n[K, HoWo], a band of columns at a time so the band stays in
            // cache while it is added back onto the input plane (col2im).
            var dxPlane = dx.AsSpan(n * g.C * g.H * g.W, g.C * g.H * g.W);
            dxPlane.Clear();
            var band = ArrayPool<float>.Shared.Rent(crs * Col2ImBand);
            for (var start = 0; start < hw; start += Col2ImBand)
            {
                var width = Math.Min(Col2ImBand, hw - start);
                band.AsSpan(0, crs * width).Clear();
                GemmAccumulate(inner, crs, width, g.K, 1f, w, 0, 1, crs, new StridedSource(dy, dyOff + start, hw, 1), band, 0, width);
                for (var row = 0; row < crs; row++)
                    Col2ImRow(g, band.AsSpan(row * width, width), row, start, dxPlane);
            }
            ArrayPool<float>.Shared.Return(band);
        });
    }

    private void ConvBackwardFilterFast(ConvGeometry g, float[] x, float[] dy, float[] dw)
    {
        if (!Sgemm.IsAccelerated) { ConvBackwardFilterDirect(g, x, dy, dw); return; }
        int crs = g.C * g.R * g.S, hw = g.Ho * g.Wo, size = g.K * crs;
        var groups = (g.N + FilterGroup - 1) / FilterGroup;
        var partials = ArrayPool<float>.Shared.Rent(groups * size);
        // dw = Σ_n dy_n[K, HoWo] · col_nᵀ: fixed groups of images, each summed in order into its own partial.
        ForImages(groups, (group, inner) =>
        {
            var partial = partials.AsSpan(group * size, size);
            partial.Clear();
            for (var n = group * FilterGroup; n < Math.Min(g.N, (group + 1) * FilterGroup); n++)
                GemmAccumulate(inner, g.K, crs, hw, 1f, dy, (long)n * g.K * hw, hw, 1, new Im2ColSource(g, x, n, Transposed: true),
                    partials, (long)group * size, crs);
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

    /// <summary>
    /// The im2col matrix of image n, col[(c·R+p)·S+q, i·Wo+j] = x[n, c, i+p·d−pad, j+q·d−pad] (zero outside),
    /// packed straight into GEMM panels so it is never stored whole: as B = col (forward) or B = colᵀ (filter gradient).
    /// </summary>
    private readonly struct Im2ColSource(ConvGeometry g, float[] x, int n, bool Transposed) : IPanelSource
    {
        public unsafe void Pack(int pc, int kc, int jc, int nc, float* dst)
        {
            const int nr = Sgemm.NR;
            var row = stackalloc float[Math.Max(kc, nc) + nr];
            if (!Transposed)
            {
                // B rows are col rows: gather one, deal it out NR floats per micro-panel.
                for (var p = 0; p < kc; p++)
                {
                    Gather(pc + p, jc, nc, row);
                    new Span<float>(row + nc, nr).Clear();
                    for (var jr = 0; jr < nc; jr += nr)
                        new Span<float>(row + jr, nr).CopyTo(new Span<float>(dst + jr * kc + p * nr, nr));
                }
                return;
            }
            // B columns are col rows: gather eight at a time and write them down the panel through 8×8
            // register transposes (element-wise strided stores cost as much as the multiply itself).
            var stride = kc + 8;
            var rows = stackalloc float[8 * stride];
            for (var jr = 0; jr < nc; jr += nr)
                for (var j8 = 0; j8 < nr; j8 += 8)
                {
                    for (var r = 0; r < 8; r++)
                    {
                        if (jr + j8 + r < nc) Gather(jc + jr + j8 + r, pc, kc, rows + r * stride);
                        else new Span<float>(rows + r * stride, kc).Clear();
                    }
                    var panel = dst + jr * kc + j8;
                    var p = 0;
                    for (; p + 8 <= kc; p += 8) Transpose8x8(rows + p, stride, panel + p * nr, nr);
                    for (; p < kc; p++)
                        for (var r = 0; r < 8; r++) panel[p * nr + r] = rows[r * stride + p];
                }
        }

        /// <summary>dst[i·dstStride + r] = src[r·srcStride + i] for an 8×8 block.</summary>
        private static unsafe void Transpose8x8(float* src, int srcStride, float* dst, int dstStride)
        {
            var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + srcStride);
            var r2 = Avx.LoadVector256(src + 2 * srcStride); var r3 = Avx.LoadVector256(src + 3 * srcStride);
            var r4 = Avx.LoadVector256(src + 4 * srcStride); var r5 = Avx.LoadVector256(src + 5 * srcStride);
            var r6 = Avx.LoadVector256(src + 6 * srcStride); var r7 = Avx.LoadVector256(src + 7 * srcStride);
            // Pairs of rows interleaved, then pairs of pairs, then the 128-bit halves swapped into place.
            Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
            Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5), t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
            Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
            Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE), u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
            Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
            Avx.Store(dst + dstStride, Avx.Permute2x128(u1, u5, 0x20));
            Avx.Store(dst + 2 * dstStride, Avx.Permute2x128(u2, u6, 0x20));
            Avx.Store(dst + 3 * dstStride, Avx.Permute2x128(u3, u7, 0x20));
            Avx.Store(dst + 4 * dstStride, Avx.Permute2x128(u0, u4, 0x31));
            Avx.Store(dst + 5 * dstStride, Avx.Permute2x128(u1, u5, 0x31));
            Avx.Store(dst + 6 * dstStride, Avx.Permute2x128(u2, u6, 0x31));
            Avx.Store(dst + 7 * dstStride, Avx.Permute2x128(u3, u7, 0x31));
        }

        /// <summary>out[0..length) = col[colRow, start..start+length), copied segment by segment from x.</summary>
        private unsafe void Gather(int colRow, int start, int length, float* output)
        {
            int c = colRow / (g.R * g.S), r = colRow / g.S % g.R, s = colRow % g.S;
            var (valid0, valid1, shift) = g.Columns(s);
            int i = start / g.Wo, j = start % g.Wo;
            fixed (float* px = x)
            {
                var plane = px + (long)(n * g.C + c) * g.H * g.W;
                for (var done = 0; done < length; i++, j = 0)
                {
                    var piece = Math.Min(g.Wo - j, length - done);
                    var o = output + done;
                    var xi = i + r * g.Dilation - g.Pad;
                    int a = Math.Max(j, valid0), b = Math.Min(j + piece, valid1);
                    if ((uint)xi >= (uint)g.H || a >= b) new Span<float>(o, piece).Clear();
                    else
                    {
                        new Span<float>(o, a - j).Clear();
                        new Span<float>(plane + xi * g.W + a + shift, b - a).CopyTo(new Span<float>(o + a - j, b - a));
                        new Span<float>(o + b - j, j + piece - b).Clear();
                    }
                    done += piece;
                }
            }
        }
    }

    /// <summary>Columns of the im2col matrix handled per col2im band (a multiple of the GEMM's NR).</summary>
    private const int Col2ImBand = 240;

    /// <summary>
    /// The adjoint of <see cref="Im2ColSource"/> for one stretch of one column-matrix row:
    /// dxPlane[c, i+p·d−pad, j+q·d−pad] += values[t] for spatial positions start+t = i·Wo+j.
    /// </summary>
    private static void Col2ImRow(ConvGeometry g, ReadOnlySpan<float> values, int colRow, int start, Span<float> dxPlane)
    {
        int c = colRow / (g.R * g.S), r = colRow / g.S % g.R, s = colRow % g.S;
        var (valid0, valid1, shift) = g.Columns(s);
        int i = start / g.Wo, j = start % g.Wo;
        for (var done = 0; done < values.Length; i++, j = 0)
        {
            var piece = Math.Min(g.Wo - j, values.Length - done);
            var xi = i + r * g.Dilation - g.Pad;
            int a = Math.Max(j, valid0), b = Math.Min(j + piece, valid1);
            if ((uint)xi < (uint)g.H && a < b)
            {
                var dst = dxPlane.Slice((c * g.H + xi) * g.W + a + shift, b - a);
                TensorPrimitives.Add(dst, values.Slice(done + a - j, b - a), dst);
            }
            done += piece;
        }
    }
}
