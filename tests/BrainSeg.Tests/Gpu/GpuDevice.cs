using BrainSeg.Cuda;
using BrainSeg.Engine;
using NUnit.Framework;

namespace BrainSeg.Tests.Gpu;

/// <summary>
/// Opens ONE CUDA backend per tensor layout for the whole test run (starting a device, loading cuDNN and
/// compiling kernels is slow) and disposes them when every Gpu test is done. Where there is no driver, device
/// or library, tests are ignored with the reason the runtime gave.
/// </summary>
[SetUpFixture]
public sealed class GpuDevice
{
    private static readonly Lazy<(CudaBackend? Backend, string? Reason)> Device = new(() => Open(TensorLayout.Nhwc), LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Lazy<(CudaBackend? Backend, string? Reason)> NchwDevice = new(() => Open(TensorLayout.Nchw), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// The shared backend of <paramref name="layout"/> (the default, channels-last, unless asked); ignores the calling
    /// test when no CUDA device is usable here.
    /// </summary>
    public static CudaBackend Require(TensorLayout layout = TensorLayout.Nhwc)
    {
        var (backend, reason) = (layout == TensorLayout.Nhwc ? Device : NchwDevice).Value;
        if (backend is null) Assert.Ignore($"no CUDA device: {reason}");
        return backend!;
    }

    private static (CudaBackend?, string?) Open(TensorLayout layout)
    {
        try
        {
            var backend = CudaBackend.Create(options: new CudaBackendOptions { Layout = layout });
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
        if (NchwDevice.IsValueCreated) NchwDevice.Value.Backend?.Dispose();
    }
}
