using BrainSeg.Cuda;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// Opens ONE CUDA backend for the whole test run (starting a device, loading cuDNN and compiling kernels
/// is slow) and disposes it when every Gpu test is done. Where there is no driver, device or library,
/// tests are ignored with the reason the runtime gave.
/// </summary>
[SetUpFixture]
public sealed class GpuDevice
{
    private static readonly Lazy<(CudaBackend? Backend, string? Reason)> Device = new(Open, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The shared backend; ignores the calling test when no CUDA device is usable here.</summary>
    public static CudaBackend Require()
    {
        var (backend, reason) = Device.Value;
        if (backend is null) Assert.Ignore($"no CUDA device: {reason}");
        return backend!;
    }

    private static (CudaBackend?, string?) Open()
    {
        try
        {
            var backend = CudaBackend.Create();
            TestContext.Progress.WriteLine($"Gpu tests run on {backend.Name}");
            return (backend, null);
        }
        catch (CudaUnavailableException e)
        {
            return (null, e.Message);
        }
    }

    [OneTimeTearDown]
    public void DisposeDevice()
    {
        if (Device.IsValueCreated) Device.Value.Backend?.Dispose();
    }
}
