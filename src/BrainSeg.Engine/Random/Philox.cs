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
