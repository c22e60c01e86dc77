using System.Text;

namespace BrainSeg.Cuda;

/// <summary>What discovery found for one library: its path, or every place looked and why each failed.</summary>
public sealed record CudaLibraryStatus(
    string Name,
    string? Soname,
    string? Path,
    string? Version,
    IReadOnlyList<string> Looked,
    IReadOnlyList<string> Notes)
{
    public bool Found => Path is not null;
}

/// <summary>One CUDA device as the driver reports it.</summary>
public sealed record CudaDeviceInfo(int Ordinal, string Name, int Major, int Minor, int Multiprocessors, long TotalMemoryBytes);

/// <summary>The result of <see cref="CudaLibraries.Probe"/>: libraries, driver version, devices, and any driver error.</summary>
public sealed record CudaLibraryReport(
    IReadOnlyList<CudaLibraryStatus> Libraries,
    int DriverVersion,
    string? DriverError,
    IReadOnlyList<CudaDeviceInfo> Devices)
{
    public CudaLibraryStatus? Library(string name) => Libraries.FirstOrDefault(l => l.Name == name);

    /// <summary>True when libcuda was found and loaded.</summary>
    public bool DriverFound => Library("cuda")?.Found == true;

    /// <summary>Driver's CUDA version as "12.4" (empty when no driver).</summary>
    public string DriverVersionText => DriverVersion > 0 ? $"{DriverVersion / 1000}.{DriverVersion % 1000 / 10}" : "";

    /// <summary>Driver, every library and at least one device present: the CUDA backend can run.</summary>
    public bool Usable => Libraries.All(l => l.Found) && DriverError is null && Devices.Count > 0;

    /// <summary>A readable multi-line account, for `brainseg info` and for error messages.</summary>
    public string Describe()
    {
        var text = new StringBuilder();
        if (!DriverFound)
            text.AppendLine("No CUDA driver was found (libcuda.so.1 could not be loaded): this machine cannot use --device cuda.");
        else
            text.AppendLine($"CUDA driver: CUDA {DriverVersionText} ({Library("cuda")!.Path})");
        if (DriverError is not null) text.AppendLine($"Driver initialisation: {DriverError}");
        foreach (var device in Devices)
            text.AppendLine($"Device {device.Ordinal}: {device.Name}, compute capability {device.Major}.{device.Minor}, " +
                            $"{device.Multiprocessors} SMs, {device.TotalMemoryBytes / (1024.0 * 1024 * 1024):F1} GiB");
        if (DriverFound && DriverError is null && Devices.Count == 0) text.AppendLine("No CUDA device is visible.");
        foreach (var library in Libraries)
        {
            if (library.Found)
                text.AppendLine($"{library.Name}: {library.Soname} {library.Version} at {library.Path}");
            else
            {
                text.AppendLine($"{library.Name}: not found; looked in:");
                foreach (var place in library.Looked) text.AppendLine($"    {place}");
            }
            foreach (var note in library.Notes) text.AppendLine($"    note: {note}");
        }
        if (!Usable)
            text.AppendLine("To use the GPU: install the NVIDIA driver, put the CUDA libraries (NVRTC, cuBLAS, cuDNN 9) in one of the places above " +
                            "or name their folders in BRAINSEG_CUDA_LIBS (colon-separated); otherwise run with --device cpu.");
        return text.ToString().TrimEnd();
    }
}
