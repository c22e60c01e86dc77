using BrainSeg.Mri;
using System.Diagnostics;
using System.Globalization;
using BrainSeg.Engine;
using BrainSeg.Mri.Geometry;
using BrainSeg.Mri.IO;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Mri.Phantom;
using BrainSeg.Seg.Inference;
using BrainSeg.Seg.Networks;
using BrainSeg.Seg.Reports;

namespace BrainSeg.Seg.Benchmarking;

/// <summary>What the cohort measurement segments: <see cref="Volumes"/> images of <see cref="Side"/>³ voxels.</summary>
public sealed record CohortBenchSettings(int Volumes = 8, int Side = 256, int BatchSlices = 16, int Classes = 7)
{
    public void Validate()
    {
        if (Volumes < 1) throw new BadInputException($"--volumes must be at least 1, got {Volumes}.");
        if (Side < 16) throw new BadInputException($"--volume must be at least 16 for the cohort measurement (a phantom needs 16 voxels a side), got {Side}.");
        if (BatchSlices < 1) throw new BadInputException($"--batch must be at least 1, got {BatchSlices}.");
        if (Classes < 2) throw new BadInputException($"--classes must be at least 2, got {Classes}.");
    }
}

/// <summary>
/// The cohort measurement: wall time of <see cref="CohortSegmenter.Run"/> over the images, and what each
/// stage took per image (the pipeline overlaps reading and writing with segmenting, so the wall time per image
/// approaches the segmentation time when the pipeline works).
/// </summary>
public sealed record CohortBenchResult(CohortBenchSettings Settings, string Device, double WallSeconds, double ReadSeconds,
    double SegmentSeconds, double WriteSeconds, long PeakWorkingSetBytes)
{
    public double VolumesPerMinute => Settings.Volumes / WallSeconds * 60;

    /// <summary>The segmentation's share of the wall time: 1 when reading and writing hide entirely behind it.</summary>
    public double Overlap => Settings.Volumes * SegmentSeconds / WallSeconds;

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"cohort of {Settings.Volumes} volumes of {Settings.Side}³ (.nii.gz, int16) on {Device}: {VolumesPerMinute:F2} volumes/min " +
        $"({WallSeconds:F2} s in all); per volume: read {ReadSeconds:F3} s, segment {SegmentSeconds:F3} s, write {WriteSeconds:F3} s; " +
        $"segmentation {Overlap:P0} of the wall time; process peak working set {PeakWorkingSetBytes / 1048576.0:F0} MiB");

    public string ToJson() => Json.Write(json =>
    {
        json.WriteStartObject();
        json.WriteString("step", "cohort");
        json.WriteString("device", Device);
        json.WriteNumber("volumes", Settings.Volumes);
        json.WriteNumber("volume", Settings.Side);
        json.WriteNumber("batch", Settings.BatchSlices);
        json.WriteNumber("wall_s", WallSeconds);
        json.WriteNumber("volumes_per_min", VolumesPerMinute);
        json.WriteNumber("read_s", ReadSeconds);
        json.WriteNumber("segment_s", SegmentSeconds);
        json.WriteNumber("write_s", WriteSeconds);
        json.WriteNumber("peak_working_set_bytes", PeakWorkingSetBytes);
        json.WriteEndObject();
    }, indented: false);
}

public static class CohortBench
{
    /// <summary>
    /// Writes the images (one phantom, int16, gzipped, under as many names) to a temporary folder, segments one
    /// untimed (kernel compilation, algorithm search, pool growth), then times the whole cohort through the
    /// pipeline with an untrained FCN (the work does not depend on the weights). The folder is removed afterwards.
    /// </summary>
    public static CohortBenchResult Run(IBackend backend, CohortBenchSettings settings, Action<string>? say = null)
    {
        settings.Validate();
        string folder = Path.Combine(Path.GetTempPath(), $"brainseg-cohort-bench-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            say?.Invoke($"writing {settings.Volumes} phantoms of {settings.Side}³ to {folder}");
            var phantom = SyntheticPhantom.Generate(settings.Side, seed: 1).Image;
            var header = new NiftiHeader { Dim = [3, settings.Side, settings.Side, settings.Side, 1, 1, 1, 1] };
            var voxels = phantom.Voxels.Select(v => (short)Math.Round(v * 1000)).ToArray();
            Directory.CreateDirectory(Path.Combine(folder, "in"));
            for (int i = 0; i < settings.Volumes; i++)
                NiftiWriter.Write<short>(Path.Combine(folder, "in", $"sub-{i:D4}.nii.gz"), header, voxels);

            var names = Enumerable.Range(0, settings.Classes).Select(c => c == 0 ? "background" : $"class{c}").ToArray();
            using var model = new SegmentationModel(new FcnNetwork(backend, settings.Classes), names, IntensityNormalisation.Default, Plane.Axial);
            var cohort = CohortInputs.Discover(Path.Combine(folder, "in"));
            static bool None(Exception _) => false; // any failure here is a defect: let it end the measurement
            CohortSegmenter.Run(model, CohortSegmenter.Plan(cohort.Take(1).ToList(), Path.Combine(folder, "warm-up"), Shard.All, false), settings.BatchSlices, None);

            say?.Invoke($"segmenting {settings.Volumes} volumes on {backend.Name}");
            backend.Synchronize();
            var clock = Stopwatch.StartNew();
            var rows = CohortSegmenter.Run(model, CohortSegmenter.Plan(cohort, Path.Combine(folder, "out"), Shard.All, false), settings.BatchSlices, None);
            backend.Synchronize();
            double wall = clock.Elapsed.TotalSeconds;
            using var self = Process.GetCurrentProcess();
            return new CohortBenchResult(settings, BenchRunner.DeviceName(backend), wall, rows.Average(r => r.ReadSeconds),
                rows.Average(r => r.SegmentSeconds), rows.Average(r => r.WriteSeconds), self.PeakWorkingSet64);
        }
        finally
        {
            try { Directory.Delete(folder, recursive: true); } catch (IOException) { }
        }
    }
}
