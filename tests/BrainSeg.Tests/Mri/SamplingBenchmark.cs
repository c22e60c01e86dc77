using System.Diagnostics;
using BrainSeg.Mri;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.IO;
using BrainSeg.Mri.Labels;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Mri.Phantom;
using BrainSeg.Mri.Sampling;
using NUnit.Framework;

namespace BrainSeg.Tests.Mri;

/// <summary>
/// Patches per second of the streaming sampler (run explicitly, in Release:
/// dotnet test -c Release --project tests/BrainSeg.Tests -- --filter "FullyQualifiedName~SamplingBenchmark").
/// The numbers are appended to brainseg-sampling-benchmark.txt in the temp folder and go in benchmarks/README.md.
/// </summary>
[Explicit("benchmark: run on demand in Release")]
[Category("Benchmark")]
public class SamplingBenchmark
{
    [TestCase(51)]
    [TestCase(87)]
    public void PatchesPerSecond(int inputSize)
    {
        TrainingImage image;
        string source;
        if (SharedData.Folder is not null && File.Exists(Path.Combine(SharedData.Folder, "subject-fs1/t1.nii.gz")))
        {
            var t1 = ImageReader.ReadVolume(Path.Combine(SharedData.Folder, "subject-fs1/t1.nii.gz"));
            var labels = ImageReader.ReadVolume(Path.Combine(SharedData.Folder, "subject-fs1/aparc.a2009s+aseg.nii.gz"));
            image = new TrainingImage(IntensityNormalisation.Default.Apply(t1), LabelTable.Preset("freesurfer-to-adult6").Apply(labels.Voxels));
            source = "subject-fs1 (256^3)";
        }
        else
        {
            var phantom = SyntheticPhantom.Generate(160, seed: 1);
            image = new TrainingImage(phantom.Image, phantom.Classes);
            source = "phantom (160^3)";
        }
        var sampler = new PatchSampler([image], 7, Plane.Axial, new PatchGeometry(inputSize), samplesPerClass: 50_000, seed: 1);
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        long patches = 0;
        foreach (var batch in sampler.Stream(0, batchSize: 300))
        {
            patches += batch.Count;
            if (watch.Elapsed.TotalSeconds > 4) break;
        }
        double rate = patches / watch.Elapsed.TotalSeconds;
        // CPU seconds used, so that a loaded machine's share does not hide what two free cores would do.
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        double perCore = patches / cpuSeconds;
        File.AppendAllText(Path.Combine(Path.GetTempPath(), "brainseg-sampling-benchmark.txt"), $"input {inputSize}x{inputSize}: {rate:F0} patches/s wall, {perCore:F0} per CPU-second, load {(File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?")} ({source}, {Environment.ProcessorCount} cores, minibatch 300)\n");
        Assert.That(rate, Is.GreaterThan(0));
    }
}
