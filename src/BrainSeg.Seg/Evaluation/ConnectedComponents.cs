using BrainSeg.Mri;

namespace BrainSeg.Seg.Evaluation;

/// <summary>
/// Counts 3-D connected components of a label volume, per label value. One raster pass with
/// union-find over provisional labels: only two planes of provisional labels are held (the current
/// and the previous one), so memory grows with the number of provisional labels, not the volume.
/// No recursion, so a 256³ volume neither overflows the stack nor allocates a per-voxel queue.
/// </summary>
public static class ConnectedComponents
{
    /// <summary>
    /// Number of components of each value 0..<paramref name="classCount"/>-1 in <paramref name="labels"/>
    /// (Fortran order, x fastest). <paramref name="connectivity"/>: 6 (faces), 18 (faces and edges) or
    /// 26 (faces, edges and corners). Values at or above <paramref name="classCount"/> are an error.
    /// </summary>
    public static int[] CountPerClass(ReadOnlySpan<byte> labels, int sizeX, int sizeY, int sizeZ, int classCount, int connectivity = 6)
    {
        if (sizeX < 1 || sizeY < 1 || sizeZ < 1)
            throw new ArgumentException($"Volume sizes must be positive, got {sizeX}x{sizeY}x{sizeZ}.");
        if ((long)sizeX * sizeY * sizeZ != labels.Length)
            throw new ArgumentException($"{labels.Length} labels do not fill a {sizeX}x{sizeY}x{sizeZ} volume.");
        if (classCount is < 1 or > 256)
            throw new ArgumentOutOfRangeException(nameof(classCount), $"classCount must be in 1..256, got {classCount}.");
        var offsets = BackwardOffsets(connectivity);

        int plane = sizeX * sizeY;
        var previous = new int[plane];  // provisional label of each voxel of plane z-1
        var current = new int[plane];
        var forest = new UnionFind();
        var classOfLabel = new List<byte>();

        // Linear offsets of the backward neighbours in the volume and in the provisional planes.
        var volumeOffset = new int[offsets.Length];
        var planeOffset = new int[offsets.Length];
        var inPreviousPlane = new bool[offsets.Length];
        for (int k = 0; k < offsets.Length; k++)
        {
            var (dx, dy, dz) = offsets[k];
            planeOffset[k] = dy * sizeX + dx;
            volumeOffset[k] = dz * plane + planeOffset[k];
            inPreviousPlane[k] = dz < 0;
        }

        for (int z = 0; z < sizeZ; z++)
        {
            int planeStart = z * plane;
            for (int y = 0; y < sizeY; y++)
                for (int x = 0; x < sizeX; x++)
                {
                    int p = y * sizeX + x, i = planeStart + p;
                    byte value = labels[i];
                    if (value >= classCount)
                        throw new BadInputException($"Label {value} at voxel ({x}, {y}, {z}) is not below the class count {classCount}.");
                    bool interior = x > 0 && x < sizeX - 1 && y > 0 && y < sizeY - 1 && z > 0;
                    int label = -1;
                    for (int k = 0; k < offsets.Length; k++)
                    {
                        if (!interior)
                        {
                            var (dx, dy, dz) = offsets[k];
                            if ((uint)(x + dx) >= (uint)sizeX || (uint)(y + dy) >= (uint)sizeY || z + dz < 0) continue;
                        }
                        if (labels[i + volumeOffset[k]] != value) continue;
                        int neighbour = (inPreviousPlane[k] ? previous : current)[p + planeOffset[k]];
                        if (label < 0) label = neighbour;
                        else if (neighbour != label) label = forest.Union(label, neighbour);
                    }
                    if (label < 0)
                    {
                        label = forest.Add();
                        classOfLabel.Add(value);
                    }
                    current[p] = label;
                }
            (previous, current) = (current, previous);
        }

        var counts = new int[classCount];
        for (int label = 0; label < forest.Count; label++)
            if (forest.Find(label) == label)
                counts[classOfLabel[label]]++;
        return counts;
    }

    /// <summary>The already-visited neighbours of a voxel in raster order (z slowest, x fastest).</summary>
    static (int Dx, int Dy, int Dz)[] BackwardOffsets(int connectivity)
    {
        int maxNonZero = connectivity switch
        {
            6 => 1,
            18 => 2,
            26 => 3,
            _ => throw new BadInputException($"Connectivity must be 6 (faces), 18 (faces and edges) or 26 (faces, edges and corners), got {connectivity}."),
        };
        var offsets = new List<(int, int, int)>();
        for (int dz = -1; dz <= 0; dz++)
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                {
                    bool before = dz < 0 || (dz == 0 && (dy < 0 || (dy == 0 && dx < 0)));
                    int nonZero = (dx != 0 ? 1 : 0) + (dy != 0 ? 1 : 0) + (dz != 0 ? 1 : 0);
                    if (before && nonZero <= maxNonZero)
                        offsets.Add((dx, dy, dz));
                }
        return offsets.ToArray();
    }

    /// <summary>Disjoint sets over 0..Count-1; the smaller index becomes the root, paths are halved.</summary>
    sealed class UnionFind
    {
        int[] _parent = new int[1024];
        public int Count { get; private set; }

        public int Add()
        {
            if (Count == _parent.Length) Array.Resize(ref _parent, _parent.Length * 2);
            _parent[Count] = Count;
            return Count++;
        }

        public int Find(int a)
        {
            while (_parent[a] != a)
            {
                _parent[a] = _parent[_parent[a]];
                a = _parent[a];
            }
            return a;
        }

        public int Union(int a, int b)
        {
            a = Find(a);
            b = Find(b);
            if (a == b) return a;
            if (a > b) (a, b) = (b, a);
            _parent[b] = a;
            return a;
        }
    }
}
