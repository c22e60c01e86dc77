using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace BrainSeg.Cuda;

/// <summary>
/// Finds the NVIDIA libraries (table: native/cuda-libraries.tsv) in this order: the folders in BRAINSEG_CUDA_LIBS,
/// the loader's default search, the CUDA toolkit folders, and Python wheels' nvidia/*/lib folders; loads them by
/// absolute path (companions such as cuDNN's sub-libraries first, from the same folder) and resolves the logical
/// names in [LibraryImport] ("cuda", "nvrtc", "cublas", "cudnn") to the handles found.
/// </summary>
public static class CudaLibraries
{
    public const string PathVariable = "BRAINSEG_CUDA_LIBS";

    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, Loaded> LoadedLibraries = new(StringComparer.Ordinal);
    private static IReadOnlyList<LibrarySpec>? table;
    private static bool resolverRegistered;

    internal sealed record Loaded(nint Handle, string Soname, string Path, IReadOnlyList<string> Notes);

#pragma warning disable CA2255 // The resolver must be in place before the first [LibraryImport] call, whoever makes it.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void RegisterResolver()
    {
        lock (Gate)
        {
            if (resolverRegistered) return;
            NativeLibrary.SetDllImportResolver(typeof(CudaLibraries).Assembly, Resolve);
            resolverRegistered = true;
        }
    }

    internal static IReadOnlyList<LibrarySpec> Table
    {
        get { lock (Gate) return table ??= LibraryTable.Load(); }
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        try
        {
            lock (Gate)
            {
                var spec = Table.FirstOrDefault(s => s.Name == name);
                if (spec is null) return 0;
                return Locate(spec, out _)?.Handle ?? 0;
            }
        }
        catch (Exception) { return 0; }   // the runtime then reports DllNotFoundException for the logical name
    }

    /// <summary>Looks for every library, loads what it finds and asks the driver for its devices. Never throws.</summary>
    public static CudaLibraryReport Probe()
    {
        try
        {
            lock (Gate) return ProbeLocked();
        }
        catch (Exception e)
        {
            var failed = new CudaLibraryStatus("cuda", null, null, null, [], [$"discovery failed: {e.GetType().Name}: {e.Message}"]);
            return new CudaLibraryReport([failed], 0, null, []);
        }
    }

    /// <summary>Makes sure the driver and every library are loaded; otherwise throws CudaUnavailableException saying what is missing and where it looked.</summary>
    internal static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (Table.All(spec => LoadedLibraries.ContainsKey(spec.Name))) return;
            var report = ProbeLocked();
            if (report.Libraries.All(l => l.Found)) return;
            var missing = string.Join(", ", report.Libraries.Where(l => !l.Found).Select(l => l.Name));
            throw new CudaUnavailableException($"The CUDA backend cannot start: {missing} not found.{Environment.NewLine}{report.Describe()}");
        }
    }

    private static CudaLibraryReport ProbeLocked()
    {
        var statuses = new List<CudaLibraryStatus>();
        foreach (var spec in Table)
        {
            var loaded = Locate(spec, out var looked);
            statuses.Add(loaded is null
                ? new CudaLibraryStatus(spec.Name, null, null, null, looked, [])
                : new CudaLibraryStatus(spec.Name, loaded.Soname, loaded.Path, SafeVersion(spec.Name), [], loaded.Notes));
        }
        if (!LoadedLibraries.ContainsKey("cuda")) return new CudaLibraryReport(statuses, 0, null, []);

        int driverVersion = DriverVersion();
        var devices = new List<CudaDeviceInfo>();
        string? driverError = null;
        try
        {
            QueryDevices(devices);
        }
        catch (CudaException e) { driverError = e.Message; }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { driverError = e.Message; }
        return new CudaLibraryReport(statuses, driverVersion, driverError, devices);
    }

    private static unsafe int DriverVersion()
    {
        try
        {
            int version = 0;
            return Driver.cuDriverGetVersion(&version) == 0 ? version : 0;
        }
        catch (Exception) { return 0; }
    }

    private static unsafe void QueryDevices(List<CudaDeviceInfo> devices)
    {
        Check.Cu(Driver.cuInit(0), "cuInit");
        int count = 0;
        Check.Cu(Driver.cuDeviceGetCount(&count), "cuDeviceGetCount");
        for (int ordinal = 0; ordinal < count; ordinal++) devices.Add(DeviceInfo(ordinal));
    }

    internal static unsafe CudaDeviceInfo DeviceInfo(int ordinal)
    {
        int device = 0, major = 0, minor = 0, sms = 0;
        Check.Cu(Driver.cuDeviceGet(&device, ordinal), "cuDeviceGet");
        byte* name = stackalloc byte[256];
        Check.Cu(Driver.cuDeviceGetName(name, 256, device), "cuDeviceGetName");
        name[255] = 0;
        Check.Cu(Driver.cuDeviceGetAttribute(&major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device), "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MAJOR)");
        Check.Cu(Driver.cuDeviceGetAttribute(&minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device), "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MINOR)");
        Check.Cu(Driver.cuDeviceGetAttribute(&sms, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device), "cuDeviceGetAttribute(MULTIPROCESSOR_COUNT)");
        nuint total = 0;
        Check.Cu(Driver.cuDeviceTotalMem_v2(&total, device), "cuDeviceTotalMem_v2");
        return new CudaDeviceInfo(ordinal, Marshal.PtrToStringUTF8((nint)name) ?? "", major, minor, sms, (long)total);
    }

    private static string? SafeVersion(string name)
    {
        try { return LibraryVersion(name); }
        catch (Exception e) { return $"(version unknown: {e.Message})"; }
    }

    private static unsafe string? LibraryVersion(string name)
    {
        switch (name)
        {
            case "cuda":
                int driver = DriverVersion();
                return driver > 0 ? $"CUDA {driver / 1000}.{driver % 1000 / 10}" : null;
            case "nvrtc":
                int major = 0, minor = 0;
                Check.Nvrtc(Nvrtc.nvrtcVersion(&major, &minor), "nvrtcVersion");
                return $"{major}.{minor}";
            case "cublas":
                int cMajor = 0, cMinor = 0, patch = 0;
                Check.Cublas(Cublas.cublasGetProperty(libraryPropertyType.MAJOR_VERSION, &cMajor), "cublasGetProperty");
                Check.Cublas(Cublas.cublasGetProperty(libraryPropertyType.MINOR_VERSION, &cMinor), "cublasGetProperty");
                Check.Cublas(Cublas.cublasGetProperty(libraryPropertyType.PATCH_LEVEL, &patch), "cublasGetProperty");
                return $"{cMajor}.{cMinor}.{patch}";
            case "cudnn":
                ulong v = Cudnn.cudnnGetVersion();   // cuDNN 9: major*10000 + minor*100 + patch
                return $"{v / 10000}.{v % 10000 / 100}.{v % 100}";
            default:
                return null;
        }
    }

    // ---- discovery ----------------------------------------------------------------------------------------

    /// <summary>A folder to search (null = the loader's default search) and why it is on the list.</summary>
    internal readonly record struct SearchPlace(string? Folder, string Origin);

    /// <summary>Every place searched, in order. Only folders that exist are listed, except those named in BRAINSEG_CUDA_LIBS.</summary>
    internal static IReadOnlyList<SearchPlace> SearchPlaces(string? pathVariable, string? home, string? virtualEnv)
    {
        var places = new List<SearchPlace>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(string folder, string origin, bool evenIfMissing = false)
        {
            string full = Path.GetFullPath(folder);
            if ((evenIfMissing || Directory.Exists(full)) && seen.Add(full)) places.Add(new SearchPlace(full, origin));
        }

        foreach (var folder in (pathVariable ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            Add(folder, PathVariable, evenIfMissing: true);
        places.Add(new SearchPlace(null, "loader default search"));

        Add("/usr/local/cuda/lib64", "CUDA toolkit");
        Add("/usr/local/cuda/targets/x86_64-linux/lib", "CUDA toolkit");
        foreach (var folder in Glob("/usr/local", "cuda-*").OrderByDescending(f => f, StringComparer.Ordinal))
            Add(Path.Combine(folder, "lib64"), "CUDA toolkit");
        Add("/usr/lib/x86_64-linux-gnu", "system libraries");
        Add("/usr/lib64", "system libraries");
        Add("/usr/local/nvidia/lib64", "NVIDIA container libraries");
        Add("/usr/lib/wsl/lib", "WSL driver");

        foreach (var site in PythonSitePackages(home, virtualEnv))
        {
            string nvidia = Path.Combine(site, "nvidia");
            if (!Directory.Exists(nvidia)) continue;
            // CUDA 13 wheels share nvidia/cu13/lib; CUDA 12 wheels use nvidia/<component>/lib; cuDNN lives in nvidia/cudnn/lib.
            Add(Path.Combine(nvidia, "cu13", "lib"), "Python wheel");
            Add(Path.Combine(nvidia, "cu12", "lib"), "Python wheel");
            foreach (var component in Glob(nvidia, "*").OrderBy(f => f, StringComparer.Ordinal))
                Add(Path.Combine(component, "lib"), "Python wheel");
        }
        return places;
    }

    private static IEnumerable<string> PythonSitePackages(string? home, string? virtualEnv)
    {
        var roots = new List<string> { "/usr/lib", "/usr/local/lib" };
        roots.AddRange(Glob("/opt", "*").Select(opt => Path.Combine(opt, ".venv", "lib")));
        roots.AddRange(Glob("/opt", "*").Select(opt => Path.Combine(opt, "lib")));
        if (!string.IsNullOrEmpty(home)) roots.Add(Path.Combine(home, ".local", "lib"));
        if (!string.IsNullOrEmpty(virtualEnv)) roots.Insert(0, Path.Combine(virtualEnv, "lib"));
        foreach (var root in roots)
            foreach (var python in Glob(root, "python3*").OrderByDescending(f => f, StringComparer.Ordinal))
            {
                yield return Path.Combine(python, "site-packages");
                yield return Path.Combine(python, "dist-packages");
            }
    }

    private static IEnumerable<string> Glob(string folder, string pattern)
    {
        try { return Directory.Exists(folder) ? Directory.GetDirectories(folder, pattern) : []; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    /// <summary>
    /// Finds and loads one library (cached once loaded); 'looked' lists every place tried and why it failed. Failed loads
    /// that a later place made up for are kept as notes of the library found.
    /// </summary>
    private static Loaded? Locate(LibrarySpec spec, out List<string> looked)
    {
        if (LoadedLibraries.TryGetValue(spec.Name, out var done))
        {
            looked = [];
            return done;
        }
        int driverMajor = spec.SonameIsCudaMajor && LoadedLibraries.ContainsKey("cuda") ? DriverVersion() / 1000 : 0;
        var found = Search(spec, CurrentSearchPlaces(), driverMajor, out looked);
        if (found is not null) LoadedLibraries[spec.Name] = found;
        return found;
    }

    internal static IReadOnlyList<SearchPlace> CurrentSearchPlaces() =>
        SearchPlaces(Environment.GetEnvironmentVariable(PathVariable),
            Environment.GetEnvironmentVariable("HOME"), Environment.GetEnvironmentVariable("VIRTUAL_ENV"));

    /// <summary>Tries each place in order; skips sonames of a CUDA major newer than <paramref name="driverMajor"/> (0 = unknown).</summary>
    internal static Loaded? Search(LibrarySpec spec, IReadOnlyList<SearchPlace> places, int driverMajor, out List<string> looked)
    {
        looked = [];
        var sonames = new List<string>();
        foreach (var soname in spec.Sonames)
        {
            int major = LibraryTable.SonameMajor(soname);
            if (driverMajor > 0 && major > driverMajor)
                looked.Add($"{soname} not considered: built for CUDA {major}, the driver supports CUDA {driverMajor}");
            else sonames.Add(soname);
        }

        var failures = new List<string>();
        foreach (var place in places)
        {
            if (place.Folder is null)
            {
                foreach (var soname in sonames)
                {
                    if (TryLoad(soname, out nint handle, out string error))
                        return new Loaded(handle, soname, MappedPath(soname) ?? soname, failures);
                    looked.Add($"{place.Origin}: {soname}: {error}");
                }
                continue;
            }
            if (!Directory.Exists(place.Folder))
            {
                looked.Add($"{Describe(place)}: folder does not exist");
                continue;
            }
            var absent = new List<string>();
            foreach (var soname in sonames)
            {
                string path = Path.Combine(place.Folder, soname);
                if (!File.Exists(path)) { absent.Add(soname); continue; }
                var pending = LoadCompanions(spec, place.Folder, LibraryTable.SonameMajor(soname));
                if (TryLoad(path, out nint found, out string why))
                {
                    // A companion that needed the main library itself gets a second chance now.
                    var notes = RetryCompanions(pending);
                    return new Loaded(found, soname, path, [.. failures, .. notes]);
                }
                string failure = $"{path} ({place.Origin}): failed to load: {why}";
                looked.Add(failure);
                looked.AddRange(pending.Select(p => $"    companion {p.Key} failed to load: {p.Value}"));
                failures.Add(failure);
            }
            if (absent.Count > 0) looked.Add($"{Describe(place)}: no {string.Join(", ", absent)}");
        }
        return null;
    }

    private static string Describe(SearchPlace place) => place.Folder is null ? place.Origin : $"{place.Folder} ({place.Origin})";

    /// <summary>
    /// Preloads the companions present in the folder, retrying those whose dependencies were not loaded yet, so that
    /// the main library's own dlopen of them by bare soname finds the already-loaded copy. Returns those that failed, with why.
    /// </summary>
    private static Dictionary<string, string> LoadCompanions(LibrarySpec spec, string folder, int major)
    {
        var pending = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pattern in spec.Companions)
        {
            string name = pattern.Replace("{major}", major.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
            string? path = name.Contains('*') ? HighestMatch(folder, name) : Path.Combine(folder, name);
            if (path is not null && File.Exists(path)) pending[path] = "";
        }
        return RetryUntilNoProgress(pending);
    }

    private static List<string> RetryCompanions(Dictionary<string, string> pending) =>
        [.. RetryUntilNoProgress(pending).Select(p => $"companion {p.Key} failed to load: {p.Value}")];

    private static Dictionary<string, string> RetryUntilNoProgress(Dictionary<string, string> pending)
    {
        for (bool progress = true; progress && pending.Count > 0;)
        {
            progress = false;
            foreach (var path in pending.Keys.ToArray())
            {
                if (TryLoad(path, out _, out string error)) { pending.Remove(path); progress = true; }
                else pending[path] = error;
            }
        }
        return pending;
    }

    private static string? HighestMatch(string folder, string pattern)
    {
        try
        {
            return Directory.GetFiles(folder, pattern)
                .OrderBy(f => f, Comparer<string>.Create(CompareVersions))
                .LastOrDefault();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    // libnvrtc-builtins.so.12.10 sorts after .12.9: compare dotted numbers numerically.
    private static int CompareVersions(string a, string b)
    {
        string[] x = Path.GetFileName(a).Split('.'), y = Path.GetFileName(b).Split('.');
        for (int i = 0; i < Math.Min(x.Length, y.Length); i++)
        {
            int c = int.TryParse(x[i], out int xi) && int.TryParse(y[i], out int yi) ? xi.CompareTo(yi) : string.CompareOrdinal(x[i], y[i]);
            if (c != 0) return c;
        }
        return x.Length.CompareTo(y.Length);
    }

    private static bool TryLoad(string nameOrPath, out nint handle, out string error)
    {
        try
        {
            handle = NativeLibrary.Load(nameOrPath);
            error = "";
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            handle = 0;
            error = LoaderMessage(e.Message, nameOrPath);
            return false;
        }
    }

    // The runtime's message wraps dlerror()'s text in advice; keep the dlerror lines, which say why.
    internal static string LoaderMessage(string message, string nameOrPath)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.Contains(':') && !l.StartsWith("Unable to load", StringComparison.Ordinal) && !l.Contains("LD_DEBUG", StringComparison.Ordinal))
            .Select(l => l.StartsWith(nameOrPath + ":", StringComparison.Ordinal) ? l[(nameOrPath.Length + 1)..].Trim() : l)
            .Distinct()
            .ToList();
        return lines.Count > 0 ? string.Join("; ", lines) : message.Trim();
    }

    /// <summary>Where the loader found a library loaded by bare soname (from /proc/self/maps), e.g. /usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15.</summary>
    private static string? MappedPath(string soname)
    {
        try
        {
            int so = soname.IndexOf(".so", StringComparison.Ordinal);
            string stem = so < 0 ? soname : soname[..(so + 3)];
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/');
                if (slash < 0) continue;
                string path = line[slash..].Trim();
                if (Path.GetFileName(path).StartsWith(stem, StringComparison.Ordinal)) return path;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }
}
