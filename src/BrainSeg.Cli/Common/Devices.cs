using System.CommandLine;
using BrainSeg.Cuda;
using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;
using BrainSeg.Mri;

namespace BrainSeg.Cli.Common;

public static class Devices
{
    /// <summary>
    /// Opens the backend that <paramref name="device"/> names ("cpu" | "cuda" | "cuda:N" | "auto") with the GPU math
    /// asked for (default <see cref="GpuMath.Exact"/>: fp32, deterministic engines).
    /// "auto" tries CUDA device 0 and falls back to the CPU with a one-line note on stderr; an explicit
    /// "cuda" that fails throws, so the user sees why (missing driver, library, or device).
    /// The caller disposes the result (disposing the shared CPU backend does nothing).
    /// </summary>
    public static IBackend Open(string device, GpuMath? math = null)
    {
        math ??= GpuMath.Exact;
        return Open(device, cc => math.Options(cc.Major));
    }

    /// <summary>As <see cref="Open(string, GpuMath?)"/>, with CUDA backend options chosen for the device's compute capability.</summary>
    public static IBackend Open(string device, Func<(int Major, int Minor), CudaBackendOptions> options)
    {
        DeviceSpec spec = DeviceSpec.Parse(device);
        switch (spec.Kind)
        {
            case DeviceKind.Cpu:
                return CpuBackend.Instance;
            case DeviceKind.Cuda:
                return CudaBackend.Create(spec.Ordinal, options);
            default:
                try
                {
                    return CudaBackend.Create(0, options);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Console.Error.WriteLine($"brainseg: note: no usable CUDA device ({FirstLine(e.Message)}); using the CPU.");
                    return CpuBackend.Instance;
                }
        }
    }

    /// <summary>The most CPU worker threads <c>--threads</c> accepts.</summary>
    public const int MaxThreads = 256;

    /// <summary>The shared <c>--threads</c> option: CPU workers, 0 for one per core.</summary>
    public static Option<int> ThreadsOption() =>
        Opt.Int("--threads", "CPU worker threads, 0 for one per core; with --device cpu, or auto when it falls back to the CPU", 0, MaxThreads, 0);

    /// <summary>
    /// As <see cref="Open(string, GpuMath?)"/>, with <paramref name="threads"/> CPU workers (0: one per core) when the
    /// backend is the CPU; a thread count for a GPU is refused rather than ignored.
    /// </summary>
    public static IBackend Open(string device, int threads, GpuMath? math = null)
    {
        if (threads == 0) return Open(device, math);
        CheckThreads(device, threads);
        IBackend backend = Open(device, math);
        if (backend is CpuBackend) return new CpuBackend(threads);
        backend.Dispose();
        throw new BadInputException($"--threads {threads} sets CPU workers but --device {device} found a GPU; drop --threads or use --device cpu.");
    }

    /// <summary>Refuses CPU threads for an explicit GPU before any work starts.</summary>
    public static void CheckThreads(string device, int threads)
    {
        if (threads > 0 && DeviceSpec.Parse(device).Kind == DeviceKind.Cuda)
            throw new BadInputException($"--threads {threads} sets CPU workers but --device {device} computes on the GPU; drop --threads or use --device cpu.");
    }

    static string FirstLine(string message)
    {
        int end = message.IndexOf('\n');
        return (end < 0 ? message : message[..end]).Trim();
    }
}
