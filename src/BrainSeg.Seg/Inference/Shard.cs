using BrainSeg.Mri;
namespace BrainSeg.Seg.Inference;

/// <summary>
/// Share <see cref="Index"/> of <see cref="Count"/> (0-based, as Slurm array ids and Kubernetes completion
/// indexes are): the items at positions Index, Index + Count, ... of a sorted list. n processes with
/// shards 0/n … (n−1)/n take every item exactly once, and dealing round-robin keeps their shares within
/// one item of each other even when the list is ordered by subject or site.
/// </summary>
public readonly record struct Shard(int Index, int Count)
{
    public static readonly Shard All = new(0, 1);

    /// <summary>Reads "i/n" with 0 ≤ i &lt; n.</summary>
    public static Shard Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], out int index) || !int.TryParse(parts[1], out int count) || count < 1 || index < 0 || index >= count)
            throw new BadInputException($"--shard takes i/n with 0 <= i < n (e.g. 0/4 for the first of four shards), got \"{text}\".");
        return new Shard(index, count);
    }

    public IEnumerable<T> Take<T>(IEnumerable<T> sorted)
    {
        var (index, count) = (Index, Count);
        return sorted.Where((_, position) => position % count == index);
    }

    public override string ToString() => $"{Index}/{Count}";
}
