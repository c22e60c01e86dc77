using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace BrainSeg.Cuda;

/// <summary>
/// Compiles the embedded kernels ("kernels/&lt;module&gt;.cu", with every "kernels/*.cuh" available to #include by bare name)
/// with NVRTC for the device's architecture, caches the binary on disk ($BRAINSEG_KERNEL_CACHE or
/// ~/.cache/brainseg/kernels) under the SHA-256 of sources, options, architecture and NVRTC version, and loads each
/// module once per process. Thread-safe.
/// </summary>
public sealed unsafe class KernelCache
{
    public const string CacheVariable = "BRAINSEG_KERNEL_CACHE";
    private const string ResourcePrefix = "kernels/";

    // No --use_fast_math: results must match the CPU backend.
    internal static readonly string[] BaseOptions = ["-default-device", "-std=c++17"];

    private readonly CudaContext context;
    private readonly Lock gate = new();
    private readonly Dictionary<string, nint> modules = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Module, string Kernel), CudaFunction> functions = [];
    private Target? target;

    internal KernelCache(CudaContext context) => this.context = context;

    /// <summary>How many modules this process compiled with NVRTC (0 when everything came from the disk cache).</summary>
    public int CompilationsThisProcess { get; private set; }

    /// <summary>The kernel <paramref name="kernelName"/> of module <paramref name="module"/>, compiling and loading the module on first use.</summary>
    public CudaFunction Get(string module, string kernelName) => Get(module, kernelName, source: null);

    /// <summary>As <see cref="Get(string, string)"/>, but compiles <paramref name="source"/> instead of the embedded kernels/&lt;module&gt;.cu (tests, experiments).</summary>
    internal CudaFunction Get(string module, string kernelName, string? source)
    {
        lock (gate)
        {
            if (functions.TryGetValue((module, kernelName), out var function)) return function;
            context.MakeCurrent();
            if (!modules.TryGetValue(module, out nint handle))
            {
                context.RefuseWhileCapturing($"loading the kernel module {module}");
                handle = LoadModule(module, source);
                modules[module] = handle;
            }
            nint f = 0;
            int status = Driver.cuModuleGetFunction(&f, handle, kernelName);
            if (status != 0)
                throw Check.CuError(status, $"cuModuleGetFunction({module}/{kernelName}): is the kernel declared extern \"C\" __global__ in kernels/{module}.cu?");
            function = new CudaFunction(kernelName, f, (uint)Math.Max(1, context.MultiprocessorCount) * 32, context.Counters);
            functions[(module, kernelName)] = function;
            return function;
        }
    }

    /// <summary>Unloads every module (CudaContext.Dispose calls this with the context current).</summary>
    internal void Unload()
    {
        lock (gate)
        {
            foreach (var handle in modules.Values) Check.Cu(Driver.cuModuleUnload(handle), "cuModuleUnload");
            modules.Clear();
            functions.Clear();
        }
    }

    // ---- compile or load ----------------------------------------------------------------------------------

    /// <summary>What NVRTC is asked to produce: real SASS for the device (CUBIN), or PTX the driver JITs when NVRTC is older than the device.</summary>
    internal sealed record Target(string ArchOption, bool Cubin, string NvrtcVersion);

    private nint LoadModule(string module, string? givenSource)
    {
        string source = givenSource ?? ReadResource(ResourcePrefix + module + ".cu")
            ?? throw new CudaException($"No kernel module '{module}': the assembly has no embedded resource kernels/{module}.cu " +
                                       $"(embedded: {string.Join(", ", ResourceNames())}).");
        var headers = Headers();
        target ??= ChooseTarget();

        byte[]? image = TryRead(CacheFile(module, source, headers, target));
        if (image is not null && TryLoadImage(image, out nint cachedModule)) return cachedModule;

        image = Compile(module, source, headers, ref target);   // may switch the target to PTX
        TryWriteAtomically(CacheFile(module, source, headers, target), image);
        fixed (byte* p = image)
        {
            nint handle = 0;
            Check.Cu(Driver.cuModuleLoadData(&handle, p), $"cuModuleLoadData({module}, {target.ArchOption})");
            return handle;
        }
    }

    private static bool TryLoadImage(byte[] image, out nint handle)
    {
        nint h = 0;
        fixed (byte* p = image)
        {
            // A damaged or foreign cache file is not an error: compile afresh.
            bool ok = Driver.cuModuleLoadData(&h, p) == 0;
            handle = h;
            return ok;
        }
    }

    private Target ChooseTarget()
    {
        int major = 0, minor = 0, count = 0;
        Check.Nvrtc(Nvrtc.nvrtcVersion(&major, &minor), "nvrtcVersion");
        Check.Nvrtc(Nvrtc.nvrtcGetNumSupportedArchs(&count), "nvrtcGetNumSupportedArchs");
        var archs = new int[count];
        fixed (int* p = archs) Check.Nvrtc(Nvrtc.nvrtcGetSupportedArchs(p), "nvrtcGetSupportedArchs");
        var (ccMajor, ccMinor) = context.ComputeCapability;
        return ChooseTarget(ccMajor * 10 + ccMinor, archs, $"{major}.{minor}");
    }

    /// <summary>sm_XY when NVRTC knows the device; otherwise PTX for the newest architecture NVRTC knows below it.</summary>
    internal static Target ChooseTarget(int deviceArch, IReadOnlyCollection<int> supported, string nvrtcVersion)
    {
        if (supported.Count == 0 || supported.Contains(deviceArch)) return new Target($"--gpu-architecture=sm_{deviceArch}", true, nvrtcVersion);
        var older = supported.Where(a => a <= deviceArch).ToList();
        if (older.Count == 0)
            throw new CudaUnavailableException($"NVRTC {nvrtcVersion} cannot compile for this GPU (sm_{deviceArch}); it supports {string.Join(", ", supported.Select(a => $"sm_{a}"))}. Use an NVRTC that matches the device.");
        return new Target($"--gpu-architecture=compute_{older.Max()}", false, nvrtcVersion);
    }

    private byte[] Compile(string module, string source, IReadOnlyList<(string Name, string Text)> headers, ref Target chosen)
    {
        var result = CompileWith(module, source, headers, chosen, out int status, out string log);
        if (status == Nvrtc.NVRTC_ERROR_INVALID_OPTION && chosen.Cubin)
        {
            // NVRTC refused sm_XY (older than the device): let the driver JIT PTX for the same architecture.
            chosen = chosen with { ArchOption = chosen.ArchOption.Replace("sm_", "compute_", StringComparison.Ordinal), Cubin = false };
            result = CompileWith(module, source, headers, chosen, out status, out log);
        }
        if (status != 0)
        {
            string name = Marshal.PtrToStringUTF8((nint)Nvrtc.nvrtcGetErrorString(status)) ?? $"nvrtcResult {status}";
            throw new CudaException("nvrtcCompileProgram", status, name,
                $"kernels/{module}.cu did not compile ({string.Join(' ', BaseOptions)} {chosen.ArchOption}):{Environment.NewLine}{log.Trim()}");
        }
        CompilationsThisProcess++;
        return result!;
    }

    private static byte[]? CompileWith(string module, string source, IReadOnlyList<(string Name, string Text)> headers, Target target,
        out int status, out string log)
    {
        var pinned = new List<nint>();
        nint Utf8(string s)
        {
            nint p = Marshal.StringToCoTaskMemUTF8(s);
            pinned.Add(p);
            return p;
        }
        nint program = 0;
        try
        {
            nint[] headerTexts = [.. headers.Select(h => Utf8(h.Text))];
            nint[] headerNames = [.. headers.Select(h => Utf8(h.Name))];
            string[] options = [.. BaseOptions, target.ArchOption];
            nint[] optionTexts = [.. options.Select(Utf8)];
            fixed (nint* texts = headerTexts, names = headerNames, opts = optionTexts)
            {
                Check.Nvrtc(Nvrtc.nvrtcCreateProgram(&program, (byte*)Utf8(source), (byte*)Utf8(module + ".cu"), headers.Count,
                    (byte**)texts, (byte**)names), $"nvrtcCreateProgram({module}.cu)");
                status = Nvrtc.nvrtcCompileProgram(program, options.Length, (byte**)opts);
            }
            log = ProgramLog(program);
            if (status != 0) return null;

            nuint size = 0;
            byte[] image;
            if (target.Cubin)
            {
                Check.Nvrtc(Nvrtc.nvrtcGetCUBINSize(program, &size), "nvrtcGetCUBINSize");
                image = new byte[size];
                fixed (byte* p = image) Check.Nvrtc(Nvrtc.nvrtcGetCUBIN(program, p), "nvrtcGetCUBIN");
            }
            else
            {
                Check.Nvrtc(Nvrtc.nvrtcGetPTXSize(program, &size), "nvrtcGetPTXSize");   // includes the terminating NUL cuModuleLoadData needs
                image = new byte[size];
                fixed (byte* p = image) Check.Nvrtc(Nvrtc.nvrtcGetPTX(program, p), "nvrtcGetPTX");
            }
            return image;
        }
        finally
        {
            if (program != 0) Nvrtc.nvrtcDestroyProgram(&program);
            foreach (var p in pinned) Marshal.FreeCoTaskMem(p);
        }
    }

    private static string ProgramLog(nint program)
    {
        nuint size = 0;
        if (Nvrtc.nvrtcGetProgramLogSize(program, &size) != 0 || size <= 1) return "";
        var log = new byte[size];
        fixed (byte* p = log)
        {
            if (Nvrtc.nvrtcGetProgramLog(program, p) != 0) return "";
        }
        return Encoding.UTF8.GetString(log, 0, (int)size - 1);
    }

    // ---- cache key and files --------------------------------------------------------------------------------

    /// <summary>Hex SHA-256 of everything that changes the binary: module name and source, every header, the options, the architecture and the NVRTC version.</summary>
    internal static string CacheKey(string module, string source, IReadOnlyList<(string Name, string Text)> headers,
        IReadOnlyList<string> options, string arch, string nvrtcVersion)
    {
        var text = new StringBuilder();
        void Part(string label, string value) => text.Append(label).Append(':').Append(value.Length).Append(':').Append(value).Append('\n');
        Part("format", "brainseg-kernel-cache-1");
        Part("nvrtc", nvrtcVersion);
        Part("arch", arch);
        foreach (var option in options) Part("option", option);
        Part("module", module);
        Part("source", source);
        foreach (var (name, body) in headers.OrderBy(h => h.Name, StringComparer.Ordinal))
        {
            Part("header", name);
            Part("body", body);
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    private static string CacheFile(string module, string source, IReadOnlyList<(string Name, string Text)> headers, Target target)
    {
        string key = CacheKey(module, source, headers, [.. BaseOptions, target.ArchOption], target.ArchOption, target.NvrtcVersion);
        return Path.Combine(CacheFolder(), $"{module}-{key[..32]}.{(target.Cubin ? "cubin" : "ptx")}");
    }

    /// <summary>The folder of the compiled kernels (and of the timed convolution engines): $BRAINSEG_KERNEL_CACHE or ~/.cache/brainseg/kernels.</summary>
    public static string CacheFolder()
    {
        string? configured = Environment.GetEnvironmentVariable(CacheVariable);
        if (!string.IsNullOrWhiteSpace(configured)) return configured;
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrEmpty(home)) home = Path.GetTempPath();
        return Path.Combine(home, ".cache", "brainseg", "kernels");
    }

    private static byte[]? TryRead(string file)
    {
        try { return File.Exists(file) ? File.ReadAllBytes(file) : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    // Written to a temporary name and renamed, so a concurrent reader never sees half a file.
    // A cache that cannot be written only costs a recompilation next time.
    private static void TryWriteAtomically(string file, byte[] image)
    {
        string temporary = $"{file}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.WriteAllBytes(temporary, image);
            File.Move(temporary, file, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temporary); } catch (Exception d) when (d is IOException or UnauthorizedAccessException) { }
        }
    }

    private static string? ReadResource(string name)
    {
        using var stream = typeof(KernelCache).Assembly.GetManifestResourceStream(name);
        if (stream is null) return null;
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    private static IEnumerable<string> ResourceNames() =>
        typeof(KernelCache).Assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal);

    private static List<(string Name, string Text)> Headers() =>
        [.. ResourceNames().Where(n => n.EndsWith(".cuh", StringComparison.Ordinal)).Select(n => (n[ResourcePrefix.Length..], ReadResource(n)!))];
}
