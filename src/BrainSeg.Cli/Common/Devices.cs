using BrainSeg.Cuda;
using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;

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
        DeviceSpec spec = DeviceSpec.Parse(device);
        math ??= GpuMath.Exact;
        switch (spec.Kind)
        {
            case DeviceKind.Cpu:
                return CpuBackend.Instance;
            case DeviceKind.Cuda:
                return CudaBackend.Create(spec.Ordinal, cc => math.Options(cc.Major));
            default:
                try
                {
                    return CudaBackend.Create(0, cc => math.Options(cc.Major));
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Console.Error.WriteLine($"brainseg: note: no usable CUDA device ({FirstLine(e.Message)}); using the CPU.");
                    return CpuBackend.Instance;
                }
        }
    }

    static string FirstLine(string message)
    {
        int end = message.IndexOf('\n');
        return (end < 0 ? message : message[..end]).Trim();
    }
}
