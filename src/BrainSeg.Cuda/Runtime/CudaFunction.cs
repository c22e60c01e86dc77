using BrainSeg.Engine;

namespace BrainSeg.Cuda;

/// <summary>A kernel entry point of a loaded module.</summary>
public readonly unsafe struct CudaFunction
{
    private readonly nint handle;
    private readonly uint maxGrid;
    private readonly WorkCounters? counters;

    internal CudaFunction(string name, nint handle, uint maxGrid, WorkCounters? counters = null)
    {
        Name = name;
        this.handle = handle;
        this.maxGrid = maxGrid;
        this.counters = counters;
    }

    public string Name { get; }

    /// <summary>Launches with explicit dimensions; <paramref name="args"/> points to each argument's value, exactly as cuLaunchKernel's kernelParams.</summary>
    public void Launch(uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ, uint sharedBytes, nint stream, void** args)
    {
        if (handle == 0) throw new InvalidOperationException("This CudaFunction is empty: get kernels from CudaContext.Kernels.Get(module, name).");
        counters?.Launch();
        int status = Driver.cuLaunchKernel(handle, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, stream, args, null);
        if (status != 0) throw Check.CuError(status, $"cuLaunchKernel({Name}, grid {gridX}x{gridY}x{gridZ}, block {blockX}x{blockY}x{blockZ}, shared {sharedBytes})");
    }

    /// <summary>
    /// One thread per element in blocks of <paramref name="block"/>; the grid is capped at a few waves of the device,
    /// so kernels must use grid-stride loops. Nothing is launched for zero elements.
    /// </summary>
    public void Launch1D(long elements, nint stream, void** args, uint block = 256)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(elements);
        if (elements == 0) return;
        if (block == 0 || block > 1024) throw new ArgumentOutOfRangeException(nameof(block), block, "A block has 1 to 1024 threads.");
        long blocks = (elements + block - 1) / block;
        uint grid = (uint)Math.Min(blocks, maxGrid == 0 ? 65535u : maxGrid);
        Launch(grid, 1, 1, block, 1, 1, 0, stream, args);
    }
}
