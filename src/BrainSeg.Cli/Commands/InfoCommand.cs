using System.CommandLine;
using System.Text.Json;
using BrainSeg.Cuda;

namespace BrainSeg.Cli.Commands;

/// <summary>`brainseg info`: the CUDA driver, devices and NVIDIA libraries this machine offers, and where each was found or looked for.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print the report as JSON." };
        var fusion = new Option<bool>("--fusion")
        {
            Description = "Also ask CUDA device 0's cuDNN which fused convolution patterns (batch norm and ReLU around the FCN's 32→32 3×3 layer) it can plan, in float and half inputs.",
        };
        var command = new Command("info", "Show the CUDA driver, GPUs and NVIDIA libraries found, with their versions and paths (or where they were looked for).");
        command.Options.Add(json);
        command.Options.Add(fusion);
        command.SetAction(parseResult =>
        {
            var report = CudaLibraries.Probe();
            Console.Out.WriteLine(parseResult.GetValue(json) ? ToJson(report) : report.Describe() + Environment.NewLine + Caches());
            if (parseResult.GetValue(fusion)) Console.Out.WriteLine(FusionSupport());
            // Exit 0 even without a GPU: the report itself is the answer, and the CPU backend still works.
            return 0;
        });
        return command;
    }

    /// <summary>The fused patterns cuDNN can plan on device 0 (a missing device is the usual one-line error, exit 2).</summary>
    private static string FusionSupport()
    {
        using var backend = CudaBackend.Create(0);
        var rows = FusionProbe.Run(backend);
        return $"Fused convolution patterns on {backend.Name} (cuDNN runtime fusion; engines proposed by the heuristics that build a plan):" +
               Environment.NewLine + string.Join(Environment.NewLine, rows.Select(r => "  " + r));
    }

    /// <summary>Where compiled kernels and the timed convolution engines are kept, and how much is there.</summary>
    internal static string Caches()
    {
        var folder = new DirectoryInfo(KernelCache.CacheFolder());
        var kernels = folder.Exists ? folder.GetFiles().Where(f => f.Name != EngineCache.FileName && !f.Name.EndsWith(".tmp", StringComparison.Ordinal)).ToArray() : [];
        var (entries, bytes) = EngineCache.Size();
        return $"Kernel cache: {folder.FullName} ({kernels.Length} compiled modules, {kernels.Sum(f => f.Length) / 1024.0:F0} KiB; set {KernelCache.CacheVariable} to move it)" +
               Environment.NewLine + $"Convolution engines: {EngineCache.FilePath} ({entries} timed choices, {bytes / 1024.0:F1} KiB)";
    }

    // Written by hand with Utf8JsonWriter: no reflection, so NativeAOT stays warning-free.
    internal static string ToJson(CudaLibraryReport report)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteBoolean("driverFound", report.DriverFound);
            writer.WriteString("driverVersion", report.DriverVersionText);
            writer.WriteString("driverError", report.DriverError);
            writer.WriteBoolean("usable", report.Usable);
            writer.WriteStartArray("devices");
            foreach (var device in report.Devices)
            {
                writer.WriteStartObject();
                writer.WriteNumber("ordinal", device.Ordinal);
                writer.WriteString("name", device.Name);
                writer.WriteString("computeCapability", $"{device.Major}.{device.Minor}");
                writer.WriteNumber("multiprocessors", device.Multiprocessors);
                writer.WriteNumber("totalMemoryBytes", device.TotalMemoryBytes);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteStartArray("libraries");
            foreach (var library in report.Libraries)
            {
                writer.WriteStartObject();
                writer.WriteString("name", library.Name);
                writer.WriteBoolean("found", library.Found);
                writer.WriteString("soname", library.Soname);
                writer.WriteString("path", library.Path);
                writer.WriteString("version", library.Version);
                writer.WriteStartArray("looked");
                foreach (var place in library.Looked) writer.WriteStringValue(place);
                writer.WriteEndArray();
                writer.WriteStartArray("notes");
                foreach (var note in library.Notes) writer.WriteStringValue(note);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            var (entries, bytes) = EngineCache.Size();
            writer.WriteString("kernelCache", KernelCache.CacheFolder());
            writer.WriteString("engineCache", EngineCache.FilePath);
            writer.WriteNumber("engineCacheEntries", entries);
            writer.WriteNumber("engineCacheBytes", bytes);
            writer.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
