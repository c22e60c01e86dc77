namespace BrainSeg.Mri;

/// <summary>
/// SplitMix64: a small, fast generator whose sequence is fixed by its seed on every platform and .NET
/// version (System.Random promises no such thing), so sampling and phantoms are reproducible.
/// </summary>
public struct SeededRandom(ulong seed)
{
    private ulong _state = seed;

    /// <summary>A generator for one stream of a run: the seed mixed with stream numbers (epoch, image...).</summary>
    public static SeededRandom For(ulong seed, params ReadOnlySpan<ulong> streams)
    {
        var r = new SeededRandom(seed);
        foreach (ulong s in streams) r = new SeededRandom(r.NextUInt64() ^ (s * 0x9E3779B97F4A7C15UL));
        return r;
    }

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, n), without modulo bias (Lemire's method).</summary>
    public long NextInt64(long n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n));
        ulong range = (ulong)n;
        UInt128 m = (UInt128)NextUInt64() * range;
        if ((ulong)m < range)
        {
            ulong threshold = (0 - range) % range;
            while ((ulong)m < threshold) m = (UInt128)NextUInt64() * range;
        }
        return (long)(ulong)(m >> 64);
    }

    public int NextInt(int n) => (int)NextInt64(n);

    /// <summary>Standard normal (Box-Muller).</summary>
    public double NextGaussian()
    {
        double u = 1 - NextDouble(), v = NextDouble();
        return Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * v);
    }
}
