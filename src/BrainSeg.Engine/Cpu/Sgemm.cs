using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BrainSeg.Engine.Cpu;

/// <summary>
/// Single-precision GEMM in the Goto/BLIS style: C += alpha·A·B with A and B given by element strides
/// (so transposes cost nothing), cut into KC×NC panels of B and MC×KC blocks of A that are packed into
/// contiguous micro-panels, and a 4×24 register-blocked micro-kernel (12 AVX accumulators; 4 rows divide the usual channel counts).
/// Every element of C sums its k terms in the same order whatever the blocking of m and n, so a
/// result does not depend on how the work is split across threads.
/// </summary>
internal static unsafe class Sgemm
{
    public const int MR = 4, NR = 24;
    private const int KC = 256, MC = 128, NC = 2040;

    /// <summary>Whether the vectorised kernel runs on this machine (otherwise callers use the portable loops).</summary>
    public static bool IsAccelerated => Avx.IsSupported && Fma.IsSupported;

    [ThreadStatic] private static float[]? t_packA;
    [ThreadStatic] private static float[]? t_packB;

    /// <summary>The IBackend GEMM: c = alpha·op(a)·op(b) + beta·c on row-major arrays, split over threads by columns or rows.</summary>
    public static void Multiply(CpuBackend backend, bool ta, bool tb, int m, int n, int k, float alpha, float[] a, float[] b, float beta, float[] c)
    {
        if (!IsAccelerated)
        {
            backend.GemmSimpleFloat(ta, tb, m, n, k, alpha, a, b, beta, c);
            return;
        }
        // op(a)(i,p) = a[i·rsA + p·csA], op(b)(p,j) = b[p·rsB + j·csB].
        int rsA = ta ? 1 : k, csA = ta ? m : 1, rsB = tb ? 1 : n, csB = tb ? k : 1;
        var rows = c.AsSpan(0, m * n);
        if (beta == 0) rows.Clear();
        else if (beta != 1) System.Numerics.Tensors.TensorPrimitives.Multiply(rows, beta, rows);
        backend.GemmAccumulate(true, m, n, k, alpha, a, 0, rsA, csA, new StridedSource(b, 0, rsB, csB), c, 0, n);
    }

    /// <summary>How many tasks, and whether to cut C into column strips (else row strips).</summary>
    internal static (int Tasks, bool ByColumns) Split(int threads, int m, int n, int k)
    {
        if (threads <= 1 || (long)m * n * k < 1 << 18) return (1, true);
        if (n >= m) return (Math.Max(1, Math.Min(threads, n / (4 * NR))), true);
        return (Math.Max(1, Math.Min(threads, m / (4 * MR))), false);
    }

    /// <summary>Part t of [0, total) cut into `parts` pieces on multiples of `align`.</summary>
    internal static (int Start, int End) Range(int total, int align, int parts, int t)
    {
        var units = (total + align - 1) / align;
        int u0 = (int)((long)units * t / parts), u1 = (int)((long)units * (t + 1) / parts);
        return (Math.Min(total, u0 * align), Math.Min(total, u1 * align));
    }

    /// <summary>
    /// C += alpha·A·B for A m×k given by strides, B k×n given by a panel source (whose columns start at
    /// <paramref name="bColumn0"/>), C row-major with leading dimension ldc. Single-threaded.
    /// </summary>
    public static void Accumulate<TB>(int m, int n, int k, float alpha, float* a, int rsA, int csA, TB b, int bColumn0, float* c, int ldc)
        where TB : struct, IPanelSource
    {
        // Equal k blocks (e.g. 144 + 144 rather than 256 + 32) keep every kernel call long.
        var kBlock = (k + (k + KC - 1) / KC - 1) / ((k + KC - 1) / KC);
        var packA = t_packA ??= GC.AllocateUninitializedArray<float>(MC * KC, pinned: true);
        var packB = t_packB ??= GC.AllocateUninitializedArray<float>(KC * (NC + NR), pinned: true);
        var pA = (float*)Unsafe.AsPointer(ref packA[0]);
        var pB = (float*)Unsafe.AsPointer(ref packB[0]);
        var tile = stackalloc float[MR * NR];

        for (var jc = 0; jc < n; jc += NC)
        {
            var nc = Math.Min(NC, n - jc);
            for (var pc = 0; pc < k; pc += kBlock)
            {
                var kc = Math.Min(kBlock, k - pc);
                b.Pack(pc, kc, bColumn0 + jc, nc, pB);
                for (var ic = 0; ic < m; ic += MC)
                {
                    var mc = Math.Min(MC, m - ic);
                    PackA(mc, kc, a + (long)ic * rsA + (long)pc * csA, rsA, csA, pA);
                    for (var jr = 0; jr < nc; jr += NR)
                    {
                        var nr = Math.Min(NR, nc - jr);
                        for (var ir = 0; ir < mc; ir += MR)
                        {
                            var mr = Math.Min(MR, mc - ir);
                            var cTile = c + (long)(ic + ir) * ldc + jc + jr;
                            if (mr == MR && nr == NR)
                                Kernel(kc, pA + ir * kc, pB + jr * kc, cTile, ldc, alpha);
                            else
                            {
                                // Edge tile: compute a full tile from the zero-padded panels, add the valid part.
                                new Span<float>(tile, MR * NR).Clear();
                                Kernel(kc, pA + ir * kc, pB + jr * kc, tile, NR, alpha);
                                for (var r = 0; r < mr; r++)
                                    for (var j = 0; j < nr; j++)
                                        cTile[(long)r * ldc + j] += tile[r * NR + j];
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>Packs an mc×kc block of A into micro-panels of MR rows: panel[p·MR + r], zero-padded.</summary>
    private static void PackA(int mc, int kc, float* a, int rsA, int csA, float* dst)
    {
        for (var ir = 0; ir < mc; ir += MR)
        {
            var mr = Math.Min(MR, mc - ir);
            var panel = dst + ir * kc;
            for (var r = 0; r < MR; r++)
            {
                if (r >= mr)
                {
                    for (var p = 0; p < kc; p++) panel[p * MR + r] = 0;
                    continue;
                }
                var src = a + (long)(ir + r) * rsA;
                for (var p = 0; p < kc; p++) panel[p * MR + r] = src[(long)p * csA];
            }
        }
    }

    /// <summary>Packs a kc×nc panel of B into micro-panels of NR columns: panel[p·NR + j], zero-padded.</summary>
    internal static void PackB(int kc, int nc, float* b, int rsB, int csB, float* dst)
    {
        for (var jr = 0; jr < nc; jr += NR)
        {
            var nr = Math.Min(NR, nc - jr);
            var panel = dst + jr * kc;
            if (csB == 1)
            {
                // Rows of B are contiguous: copy NR floats per k.
                for (var p = 0; p < kc; p++)
                {
                    var src = b + (long)p * rsB + jr;
                    var row = panel + p * NR;
                    if (nr == NR)
                    {
                        Avx.Store(row, Avx.LoadVector256(src));
                        Avx.Store(row + 8, Avx.LoadVector256(src + 8));
                        Avx.Store(row + 16, Avx.LoadVector256(src + 16));
                    }
                    else
                        for (var j = 0; j < NR; j++) row[j] = j < nr ? src[j] : 0;
                }
            }
            else
            {
                // Columns of B are contiguous (a transposed operand): walk each column along k.
                for (var j = 0; j < NR; j++)
                {
                    if (j >= nr)
                    {
                        for (var p = 0; p < kc; p++) panel[p * NR + j] = 0;
                        continue;
                    }
                    var src = b + (long)(jr + j) * csB;
                    for (var p = 0; p < kc; p++) panel[p * NR + j] = src[(long)p * rsB];
                }
            }
        }
    }

    /// <summary>C[4×24] += alpha · Apanel[4×kc] · Bpanel[kc×24], accumulators in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel(int kc, float* a, float* b, float* c, int ldc, float alpha)
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
        Vector256<float> c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
        for (var p = 0; p < kc; p++)
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
            b += NR;
        }
        var va = Vector256.Create(alpha);
        Store(c, c00, c01, c02, va);
        Store(c + ldc, c10, c11, c12, va);
        Store(c + 2 * ldc, c20, c21, c22, va);
        Store(c + 3 * ldc, c30, c31, c32, va);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, Vector256<float> alpha)
    {
        // Not fused, so full and edge tiles round alike: c + (alpha·acc).
        Avx.Store(c, Avx.Add(Avx.LoadVector256(c), Avx.Multiply(v0, alpha)));
        Avx.Store(c + 8, Avx.Add(Avx.LoadVector256(c + 8), Avx.Multiply(v1, alpha)));
        Avx.Store(c + 16, Avx.Add(Avx.LoadVector256(c + 16), Avx.Multiply(v2, alpha)));
    }
}

/// <summary>Where the B operand of <see cref="Sgemm.Accumulate{TB}"/> comes from: it packs rows pc.., columns jc.. into NR-wide micro-panels.</summary>
internal interface IPanelSource
{
    unsafe void Pack(int pc, int kc, int jc, int nc, float* dst);
}

/// <summary>B(p, j) = b[offset + p·rsB + j·csB]: a plain (possibly transposed) matrix.</summary>
internal readonly struct StridedSource(float[] b, long offset, int rsB, int csB) : IPanelSource
{
    public unsafe void Pack(int pc, int kc, int jc, int nc, float* dst)
    {
        fixed (float* pb = b) Sgemm.PackB(kc, nc, pb + offset + (long)pc * rsB + (long)jc * csB, rsB, csB, dst);
    }
}
