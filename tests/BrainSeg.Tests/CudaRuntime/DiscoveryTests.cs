using System.Runtime.InteropServices;
using BrainSeg.Cuda;
using NUnit.Framework;

namespace BrainSeg.Tests.CudaRuntime;

public class DiscoveryTests
{
    [Test]
    public void ProbeReportsTheDriverAndDevicesOrWhereItLooked()
    {
        var report = CudaLibraries.Probe();
        string text = report.Describe();
        Assert.That(report.Libraries.Select(l => l.Name), Is.EqualTo(new[] { "cuda", "nvrtc", "cublas", "cudnn" }));
        foreach (var missing in report.Libraries.Where(l => !l.Found))
        {
            Assert.That(missing.Looked, Is.Not.Empty, $"{missing.Name} is missing but the report does not say where it looked");
            Assert.That(text, Does.Contain($"{missing.Name}: not found; looked in:"));
        }

        if (!report.DriverFound)
        {
            Assert.That(text, Does.StartWith("No CUDA driver was found"));
            Assert.That(report.Library("cuda")!.Looked, Has.Some.Contains("loader default search"));
            Assert.That(report.Devices, Is.Empty);
        }
        else if (report.Devices.Count == 0)
        {
            // A driver without a GPU (this build machine): the report must say why there is no device.
            Assert.That(report.DriverVersion, Is.GreaterThan(0));
            Assert.That(text, Does.Contain("CUDA driver: CUDA " + report.DriverVersionText));
            Assert.That(report.DriverError ?? "No CUDA device is visible.", Is.Not.Empty);
            Assert.That(text, Does.Contain(report.DriverError ?? "No CUDA device is visible."));
            Assert.That(report.Usable, Is.False);
        }
        else
        {
            foreach (var device in report.Devices)
            {
                Assert.That(device.Name, Is.Not.Empty);
                Assert.That(device.Major, Is.GreaterThanOrEqualTo(5));
                Assert.That(device.Multiprocessors, Is.GreaterThan(0));
                Assert.That(device.TotalMemoryBytes, Is.GreaterThan(1L << 30));
            }
        }
        if (!report.Usable) Assert.That(text, Does.Contain("BRAINSEG_CUDA_LIBS").And.Contain("--device cpu"));
    }

    [Test]
    public void WithoutADriverTheReportSaysSoPlainlyAndListsWhereItLooked()
    {
        string[] looked = ["loader default search: libcuda.so.1: cannot open shared object file: No such file or directory", "/usr/lib64 (system libraries): no libcuda.so.1"];
        var report = new CudaLibraryReport([new CudaLibraryStatus("cuda", null, null, null, looked, [])], 0, null, []);
        string text = report.Describe();
        Assert.That(text, Does.StartWith("No CUDA driver was found"));
        Assert.That(text, Does.Contain("cuda: not found; looked in:").And.Contain(looked[0]).And.Contain(looked[1]));
        Assert.That(text, Does.Contain("--device cpu"));
        Assert.That(report.Usable, Is.False);
    }

    [Test]
    public void PathVariableFoldersComeFirstAndAFileThatIsNotALibrarySaysWhyItFailed()
    {
        string folder = Directory.CreateTempSubdirectory("brainseg-libs-").FullName;
        string? saved = Environment.GetEnvironmentVariable(CudaLibraries.PathVariable);
        try
        {
            File.WriteAllText(Path.Combine(folder, "libbrainseg_fake.so.1"), "this is not an ELF file");
            Environment.SetEnvironmentVariable(CudaLibraries.PathVariable, folder + ":/no/such/folder");
            var places = CudaLibraries.CurrentSearchPlaces();
            Assert.That(places[0].Folder, Is.EqualTo(folder));
            Assert.That(places[1].Folder, Is.EqualTo("/no/such/folder"));
            Assert.That(places[2].Folder, Is.Null, "the loader's default search comes right after BRAINSEG_CUDA_LIBS");

            var fake = new LibrarySpec("fake", ["libbrainseg_fake.so.1"], [], SonameIsCudaMajor: false);
            var found = CudaLibraries.Search(fake, places, driverMajor: 0, out var looked);

            Assert.That(found, Is.Null);
            string path = Path.Combine(folder, "libbrainseg_fake.so.1");
            Assert.That(looked[0], Does.StartWith($"{path} ({CudaLibraries.PathVariable}): failed to load: "));
            Assert.That(looked[0], Does.Contain("too short").Or.Contain("ELF").Or.Contain("invalid"), looked[0]);
            Assert.That(looked[1], Is.EqualTo($"/no/such/folder ({CudaLibraries.PathVariable}): folder does not exist"));
            Assert.That(looked, Has.Some.StartsWith("loader default search: libbrainseg_fake.so.1: "));
        }
        finally
        {
            Environment.SetEnvironmentVariable(CudaLibraries.PathVariable, saved);
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void CompanionsAreLoadedFromTheSameFolderAndTheirFailuresReported()
    {
        string folder = Directory.CreateTempSubdirectory("brainseg-companions-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "libbrainseg_main.so.7"), "not a library");
            File.WriteAllText(Path.Combine(folder, "libbrainseg_dep.so.7"), "not a library either");
            var spec = new LibrarySpec("fake", ["libbrainseg_main.so.7"], ["libbrainseg_dep.so.{major}", "libbrainseg_optional.so.{major}"], false);
            var found = CudaLibraries.Search(spec, [new CudaLibraries.SearchPlace(folder, "test")], 0, out var looked);
            Assert.That(found, Is.Null);
            Assert.That(looked[0], Does.StartWith($"{Path.Combine(folder, "libbrainseg_main.so.7")} (test): failed to load: "));
            Assert.That(looked[1], Does.StartWith($"    companion {Path.Combine(folder, "libbrainseg_dep.so.7")} failed to load: "));
            Assert.That(looked, Has.None.Contains("libbrainseg_optional"), "a missing companion is optional");
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Test]
    public void ARealLibraryIsLoadedByAbsolutePathFromTheFirstFolderThatHasIt()
    {
        const string zlib = "/usr/lib/x86_64-linux-gnu/libz.so.1";
        if (!File.Exists(zlib)) Assert.Ignore($"{zlib} is not on this machine");
        string folder = Directory.CreateTempSubdirectory("brainseg-real-").FullName;
        try
        {
            File.CreateSymbolicLink(Path.Combine(folder, "libz.so.1"), zlib);
            var spec = new LibrarySpec("z", ["libbrainseg_absent.so.1", "libz.so.1"], [], false);
            var found = CudaLibraries.Search(spec, [new CudaLibraries.SearchPlace("/no/such/folder", "test"), new CudaLibraries.SearchPlace(folder, "test")], 0, out var looked);
            Assert.That(found, Is.Not.Null);
            Assert.That(found!.Path, Is.EqualTo(Path.Combine(folder, "libz.so.1")));
            Assert.That(found.Soname, Is.EqualTo("libz.so.1"));
            Assert.That(found.Handle, Is.Not.EqualTo((nint)0));
            Assert.That(looked, Is.EqualTo(new[] { "/no/such/folder (test): folder does not exist" }));
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Test]
    public void SonamesNewerThanTheDriverAreNotConsidered()
    {
        var spec = new LibrarySpec("fake", ["libbrainseg_fake.so.13", "libbrainseg_fake.so.12"], [], SonameIsCudaMajor: true);
        CudaLibraries.Search(spec, [new CudaLibraries.SearchPlace(null, "loader default search")], driverMajor: 12, out var looked);
        Assert.That(looked[0], Is.EqualTo("libbrainseg_fake.so.13 not considered: built for CUDA 13, the driver supports CUDA 12"));
        Assert.That(looked[1], Does.StartWith("loader default search: libbrainseg_fake.so.12: "));
        Assert.That(looked, Has.Count.EqualTo(2));
    }

    [Test]
    public void SearchOrderIsPathVariableThenLoaderThenToolkitThenWheels()
    {
        var places = CudaLibraries.SearchPlaces("/x:/y", home: null, virtualEnv: null);
        Assert.That(places.Take(3).Select(p => p.Folder), Is.EqualTo(new[] { "/x", "/y", null }));
        int lastToolkit = places.Select((p, i) => (p, i)).Where(t => t.p.Origin is "CUDA toolkit" or "system libraries").Select(t => t.i).DefaultIfEmpty(-1).Max();
        int firstWheel = places.Select((p, i) => (p, i)).Where(t => t.p.Origin == "Python wheel").Select(t => t.i).DefaultIfEmpty(int.MaxValue).Min();
        Assert.That(lastToolkit, Is.LessThan(firstWheel));
        Assert.That(places.Skip(3).All(p => p.Folder is not null && Directory.Exists(p.Folder)), "only existing folders are listed beyond BRAINSEG_CUDA_LIBS");
    }

    [Test]
    public void WheelFoldersOfAVirtualEnvironmentAreSearched()
    {
        string venv = Directory.CreateTempSubdirectory("brainseg-venv-").FullName;
        try
        {
            string site = Path.Combine(venv, "lib", "python3.12", "site-packages", "nvidia");
            foreach (var part in new[] { "cu13", "cudnn", "cublas" }) Directory.CreateDirectory(Path.Combine(site, part, "lib"));
            var wheels = CudaLibraries.SearchPlaces(null, null, venv).Where(p => p.Origin == "Python wheel" && p.Folder!.StartsWith(venv, StringComparison.Ordinal)).Select(p => p.Folder).ToList();
            Assert.That(wheels, Is.EqualTo(new[]
            {
                Path.Combine(site, "cu13", "lib"), Path.Combine(site, "cublas", "lib"), Path.Combine(site, "cudnn", "lib"),
            }));
        }
        finally { Directory.Delete(venv, recursive: true); }
    }

    [Test]
    public void TheEmbeddedLibraryTableParses()
    {
        var table = LibraryTable.Load();
        Assert.That(table.Select(s => s.Name), Is.EqualTo(new[] { "cuda", "nvrtc", "cublas", "cudnn" }));
        Assert.That(table[0].Sonames, Is.EqualTo(new[] { "libcuda.so.1" }));
        Assert.That(table[1].Sonames, Is.EqualTo(new[] { "libnvrtc.so.13", "libnvrtc.so.12" }));
        Assert.That(table[1].Companions, Is.EqualTo(new[] { "libnvrtc-builtins.so.{major}.*" }));
        Assert.That(table[2].Sonames, Is.EqualTo(new[] { "libcublas.so.13", "libcublas.so.12" }));
        Assert.That(table[2].Companions, Is.EqualTo(new[] { "libcublasLt.so.{major}" }));
        Assert.That(table[3].Sonames, Is.EqualTo(new[] { "libcudnn.so.9" }));
        Assert.That(table[3].Companions, Has.Count.EqualTo(7).And.Contain("libcudnn_cnn.so.{major}").And.Contain("libcudnn_graph.so.{major}"));
        Assert.That(table[3].Companions[0], Is.EqualTo("libcudnn_graph.so.{major}"), "cuDNN's graph library is what the others depend on: it loads first");
        Assert.That(table.Select(s => s.SonameIsCudaMajor), Is.EqualTo(new[] { false, true, true, false }));
    }

    [Test]
    public void ABadTableLineIsReportedWithItsNumber()
    {
        var error = Assert.Throws<FormatException>(() => LibraryTable.Parse("# comment\ncuda\tlibcuda.so.1\n"));
        Assert.That(error!.Message, Does.Contain("line 2").And.Contain("4 tab-separated columns"));
        Assert.Throws<FormatException>(() => LibraryTable.Parse("cuda\tlibcuda.so.1\t-\tmaybe"));
    }

    [TestCase("libcublas.so.12", 12)]
    [TestCase("libnvrtc.so.13", 13)]
    [TestCase("libcudnn.so.9", 9)]
    [TestCase("libnvrtc-builtins.so.12.4", 12)]
    [TestCase("libfoo.so", 0)]
    public void SonameMajorIsTheFirstNumberAfterSo(string soname, int major) => Assert.That(LibraryTable.SonameMajor(soname), Is.EqualTo(major));

    [Test]
    public void LoaderMessagesKeepOnlyTheReason()
    {
        string message = "Unable to load shared library '/tmp/a/libx.so.1' or one of its dependencies. In order to help diagnose loading problems, " +
                         "consider using a tool like strace. If you're using glibc, consider setting the LD_DEBUG environment variable: \n/tmp/a/libx.so.1: file too short";
        Assert.That(CudaLibraries.LoaderMessage(message, "/tmp/a/libx.so.1"), Is.EqualTo("file too short"));
    }

    [Test]
    public void AlgorithmPerfStructsHaveTheHeaderLayout()
    {
        // { algo; status; float time; size_t memory; determinism; mathType; int reserved[3]; } on LP64.
        Assert.That(Marshal.SizeOf<cudnnConvolutionFwdAlgoPerf_t>(), Is.EqualTo(48));
        Assert.That(Marshal.OffsetOf<cudnnConvolutionFwdAlgoPerf_t>(nameof(cudnnConvolutionFwdAlgoPerf_t.time)), Is.EqualTo((nint)8));
        Assert.That(Marshal.OffsetOf<cudnnConvolutionFwdAlgoPerf_t>(nameof(cudnnConvolutionFwdAlgoPerf_t.memory)), Is.EqualTo((nint)16));
        Assert.That(Marshal.OffsetOf<cudnnConvolutionFwdAlgoPerf_t>(nameof(cudnnConvolutionFwdAlgoPerf_t.determinism)), Is.EqualTo((nint)24));
        Assert.That(Marshal.OffsetOf<cudnnConvolutionFwdAlgoPerf_t>(nameof(cudnnConvolutionFwdAlgoPerf_t.mathType)), Is.EqualTo((nint)28));
        Assert.That(Marshal.SizeOf<cudnnConvolutionBwdDataAlgoPerf_t>(), Is.EqualTo(48));
        Assert.That(Marshal.SizeOf<cudnnConvolutionBwdFilterAlgoPerf_t>(), Is.EqualTo(48));
        Assert.That(System.Runtime.CompilerServices.Unsafe.SizeOf<cudnnConvolutionFwdAlgoPerf_t>(), Is.EqualTo(48));
    }
}
