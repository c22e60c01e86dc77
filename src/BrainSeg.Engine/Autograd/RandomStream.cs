namespace BrainSeg.Engine.Autograd;

/// <summary>
/// The one seeded generator of a run: a <see cref="Philox"/> stream (seed, offset) whose offset advances
/// by every draw. Weight initialisation and dropout masks both take their numbers from it, so a run with
/// the same seed repeats exactly, on the CPU and the GPU alike. Save <see cref="Offset"/> with a
/// checkpoint to resume the stream; set it back to replay the same dropout masks (gradient checks).
/// </summary>
public sealed class RandomStream(ulong seed, ulong offset = 0)
{
    public ulong Seed { get; } = seed;

    /// <summary>The counter of the next value the stream hands out.</summary>
    public ulong Offset { get; set; } = offset;

    /// <summary>Reserves <paramref name="count"/> values and returns the offset of the first (for backend draws such as dropout masks).</summary>
    public ulong Take(long count)
    {
        var start = Offset;
        Offset += Philox.CountersFor(count);
        return start;
    }

    /// <summary>Fills <paramref name="values"/> with uniform draws from [lo, hi).</summary>
    public void FillUniform(Span<double> values, double lo, double hi)
    {
        var start = Take(values.Length);
        for (var i = 0; i < values.Length; i++)
        {
            // (word + 0.5) / 2³² lies strictly inside (0, 1).
            var u = (Philox.Word(Seed, start + (ulong)i) + 0.5) / 4294967296.0;
            values[i] = lo + (hi - lo) * u;
        }
    }
}
