using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BrainSeg.Engine;

/// <summary>
/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the
/// counter-based generator that makes dropout masks identical on the CPU and the GPU: random value q
/// of a stream is a pure function of (seed, q), so any thread can draw any value in any order.
/// <para>
/// Value q: block = q / 4, lane = q % 4; the block's counter is (lo32(block), hi32(block), 0, 0) and the
/// key is (lo32(seed), hi32(seed)); the value is word <c>lane</c> of the 10-round output. kernels/philox.cuh
/// is the same function in CUDA C; the parity tests hold the two together.
/// </para>
/// </summary>
public static class Philox
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57;
    private const uint W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>Counters a draw of <paramref name="count"/> values consumes: advance the stream offset by this.</summary>
    public static ulong CountersFor(long count) => (ulong)count;

    /// <summary>The 4 words of block <paramref name="block"/> for key <paramref name="seed"/>.</summary>
    public static (uint, uint, uint, uint) Block(ulong seed, ulong block)
    {
        uint c0 = (uint)block, c1 = (uint)(block >> 32), c2 = 0, c3 = 0;
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        for (var round = 0; round < 10; round++)
        {
            if (round > 0) { k0 += W0; k1 += W1; }
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0, hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>
    /// Blocks <paramref name="firstBlock"/> … +7 at once, one per AVX2 lane: word w of block firstBlock + L is lane L
    /// of the w-th vector. The same rounds as <see cref="Block"/>, eight at a time.
    /// </summary>
    public static (Vector256<uint> W0, Vector256<uint> W1, Vector256<uint> W2, Vector256<uint> W3) Blocks8(ulong seed, ulong firstBlock)
    {
        var b = firstBlock;
        var c0 = Vector256.Create((uint)b, (uint)(b + 1), (uint)(b + 2), (uint)(b + 3), (uint)(b + 4), (uint)(b + 5), (uint)(b + 6), (uint)(b + 7));
        var c1 = Vector256.Create((uint)(b >> 32), (uint)((b + 1) >> 32), (uint)((b + 2) >> 32), (uint)((b + 3) >> 32),
            (uint)((b + 4) >> 32), (uint)((b + 5) >> 32), (uint)((b + 6) >> 32), (uint)((b + 7) >> 32));
        Vector256<uint> c2 = Vector256<uint>.Zero, c3 = Vector256<uint>.Zero;
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        for (var round = 0; round < 10; round++)
        {
            if (round > 0) { k0 += W0; k1 += W1; }
            var (hi0, lo0) = MultiplyWide(c0, M0);
            var (hi1, lo1) = MultiplyWide(c2, M1);
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ Vector256.Create(k0), lo1, hi0 ^ c3 ^ Vector256.Create(k1), lo0);
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>The high and low halves of m·c for each 32-bit lane: even and odd lanes multiplied apart, then merged.</summary>
    private static (Vector256<uint> Hi, Vector256<uint> Lo) MultiplyWide(Vector256<uint> c, uint m)
    {
        var mv = Vector256.Create(m);
        var even = Avx2.Multiply(c, mv);
        var odd = Avx2.Multiply(Avx2.ShiftRightLogical(c.AsUInt64(), 32).AsUInt32(), mv);
        var lo = Avx2.Blend(even.AsUInt32(), Avx2.ShiftLeftLogical(odd, 32).AsUInt32(), 0b10101010);
        var hi = Avx2.Blend(Avx2.ShiftRightLogical(even, 32).AsUInt32(), odd.AsUInt32(), 0b10101010);
        return (hi, lo);
    }

    /// <summary>Random 32-bit word number <paramref name="index"/> of the stream keyed by <paramref name="seed"/>.</summary>
    public static uint Word(ulong seed, ulong index)
    {
        var (a, b, c, d) = Block(seed, index >> 2);
        return (index & 3) switch { 0 => a, 1 => b, 2 => c, _ => d };
    }

    /// <summary>
    /// Dropout keeps element q when (Word(seed, q) &gt;&gt; 8) ≥ this threshold, i.e. when a uniform 24-bit draw
    /// u ∈ [0, 1) satisfies u ≥ p. Integer comparison keeps CPU and GPU decisions identical.
    /// </summary>
    public static uint DropThreshold(double p)
    {
        if (!(p >= 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1).");
        return (uint)Math.Ceiling(p * (1 << 24));
    }
}
