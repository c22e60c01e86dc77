using System.Diagnostics;
using System.Globalization;
using nietras.SeparatedValues;
using BrainSeg.Engine.Nn;
using BrainSeg.Mri;
using BrainSeg.Mri.IO;
using BrainSeg.Seg.Evaluation;

namespace BrainSeg.Seg.Inference;

/// <summary>One image to segment and where its label map goes; <see cref="Skip"/> when that label map exists already.</summary>
public sealed record CohortJob(CohortInput Input, string Output, bool Skip);

public enum CohortStatus { Done, Skipped, Failed }

/// <summary>
/// What became of one image. Seconds: reading (and decompressing), segmenting and writing, each measured on
/// its own; in the pipeline the reading and writing of neighbours overlap the segmentation.
/// <see cref="VolumesMl"/> holds each class's volume in mL (null unless done).
/// </summary>
public sealed record CohortRow(string Input, string Output, CohortStatus Status, double ReadSeconds, double SegmentSeconds,
    double WriteSeconds, double[]? VolumesMl, string Message);

/// <summary>
/// Segments many images with one model: the network is folded once and stays on the device, and a bounded
/// pipeline keeps it busy. While image k is segmented on the calling thread (the one that owns the device),
/// image k+1 is read and decompressed and the label map of image k−1 is written, each on a worker thread;
/// so at most <see cref="VolumesInFlight"/> images are in memory at once, whatever the cohort's size.
/// An input that cannot be read, segmented or written is recorded as failed and the rest go on; an error that
/// <c>isInputError</c> does not accept (a defect, not a bad input) stops the run.
/// </summary>
public static class CohortSegmenter
{
    /// <summary>Images held at once: the one being read, the one being segmented and the one being written.</summary>
    public const int VolumesInFlight = 3;

    /// <summary>
    /// The jobs of one shard. Every output path, the summary's included, is checked against every input of the
    /// cohort (not only the shard's) and against the other outputs first, so that no run can overwrite an image
    /// or another label map.
    /// </summary>
    public static IReadOnlyList<CohortJob> Plan(IReadOnlyList<CohortInput> cohort, string outputFolder, Shard shard, bool skipExisting)
    {
        var outputs = new Dictionary<string, CohortInput>(StringComparer.Ordinal);
        var inputs = cohort.Select(i => RealPath.Of(i.Path)).ToHashSet(StringComparer.Ordinal);
        string summary = Path.Combine(outputFolder, SummaryName(shard));
        if (inputs.Contains(RealPath.Of(summary)))
            throw new BadInputException($"The summary {summary} would overwrite an input; give another --output-dir (inputs are never overwritten).");
        foreach (var input in cohort)
        {
            string output = RealPath.Of(CohortInputs.OutputPath(input, outputFolder));
            if (inputs.Contains(output))
                throw new BadInputException($"The label map for {input.Path} would be {output}, which is an input image; give an --output-dir outside the images (inputs are never overwritten).");
            if (!outputs.TryAdd(output, input))
                throw new BadInputException($"{outputs[output].Path} and {input.Path} would both be written to {output}; rename one of them or segment them into different --output-dir folders.");
        }
        // Device and inode too: a hard link to an input is caught here, where paths alone cannot see it.
        OutputGuard.Check(cohort.Select(i => i.Path), outputs.Values.Select(i => CohortInputs.OutputPath(i, outputFolder)).Append(summary));
        return shard.Take(cohort).Select(input =>
        {
            string output = CohortInputs.OutputPath(input, outputFolder);
            return new CohortJob(input, output, skipExisting && File.Exists(output));
        }).ToList();
    }

    /// <param name="isInputError">Which exceptions are a problem of one input (recorded, the run goes on); others end the run.</param>
    /// <param name="done">Called on the calling thread with each image's row: the skipped ones first, then the others in cohort order.</param>
    public static IReadOnlyList<CohortRow> Run(SegmentationModel model, IReadOnlyList<CohortJob> jobs, int batchSlices,
        Func<Exception, bool> isInputError, Action<CohortRow>? done = null) => Run(model, jobs, batchSlices, isInputError, done, ImageReader.Read);

    /// <param name="read">Reads one image (on a worker thread): the tests watch the pipeline through it.</param>
    internal static IReadOnlyList<CohortRow> Run(SegmentationModel model, IReadOnlyList<CohortJob> jobs, int batchSlices,
        Func<Exception, bool> isInputError, Action<CohortRow>? done, Func<string, MriImage> read)
    {
        var rows = new List<CohortRow>(jobs.Count);
        var work = jobs.Where(j => !j.Skip).ToList();
        foreach (var job in jobs.Where(j => j.Skip))
            Report(new CohortRow(job.Input.Path, job.Output, CohortStatus.Skipped, 0, 0, 0, null, "the label map exists"));
        if (work.Count == 0) return rows;

        using var folded = Folding.ForInference(model.Network);
        Task<Loaded> next = Load(work[0], read, isInputError);
        Task<CohortRow>? writing = null;
        for (int k = 0; k < work.Count; k++)
        {
            Loaded current = next.GetAwaiter().GetResult();
            if (k + 1 < work.Count) next = Load(work[k + 1], read, isInputError);
            CohortRow? failed = null;
            VolumeSegmentation? segmentation = null;
            var clock = Stopwatch.StartNew();
            if (current.Error is not null)
                failed = Failed(current.Job, current, 0, current.Error);
            else
            {
                try
                {
                    segmentation = VolumeSegmenter.Segment(model, current.Volume!, batchSlices, folded: folded);
                }
                catch (Exception e) when (isInputError(e))
                {
                    failed = Failed(current.Job, current, clock.Elapsed.TotalSeconds, e);
                }
            }
            double segmentSeconds = clock.Elapsed.TotalSeconds;
            // The previous label map has been written while this image was segmented; its row comes first.
            if (writing is not null) Report(writing.GetAwaiter().GetResult());
            writing = failed is not null ? Task.FromResult(failed) : Write(model, current, segmentation!, segmentSeconds, isInputError);
        }
        Report(writing!.GetAwaiter().GetResult());
        return rows;

        void Report(CohortRow row)
        {
            rows.Add(row);
            done?.Invoke(row);
        }
    }

    /// <summary>The summary's name in the output folder: one per shard, so that shards running at once never write the same file.</summary>
    public static string SummaryName(Shard shard) => shard.Count == 1 ? "summary.csv" : $"summary-shard-{shard.Index}-of-{shard.Count}.csv";

    /// <summary>
    /// The summary of a run, one line per image in cohort order: input, output, status, the three times in
    /// seconds, the volume of each class in mL, and the error. A skipped image keeps the times and volumes that
    /// <paramref name="earlierSummary"/> (the summary this one replaces, if any) recorded when it was segmented,
    /// so the summary after a resumed run is as complete as one of a run without failures.
    /// </summary>
    public static string SummaryCsv(IReadOnlyList<string> classNames, IReadOnlyList<CohortJob> jobs, IEnumerable<CohortRow> rows, string? earlierSummary = null)
    {
        var earlier = earlierSummary is not null && File.Exists(earlierSummary) ? ReadDone(earlierSummary, classNames) : [];
        var position = jobs.Select((j, i) => (j.Input.Path, i)).ToDictionary(p => p.Path, p => p.i);
        using var writer = Sep.New(',').Writer(o => o with { Escape = true, CultureInfo = CultureInfo.InvariantCulture }).ToText();
        foreach (var row in rows.OrderBy(r => position.GetValueOrDefault(r.Input, int.MaxValue)))
        {
            var r = row.Status == CohortStatus.Skipped && earlier.TryGetValue((row.Input, row.Output), out var before)
                ? before with { Status = CohortStatus.Skipped, Message = row.Message }
                : row;
            using var line = writer.NewRow();
            line["input"].Set(r.Input);
            line["output"].Set(r.Output);
            line["status"].Set(r.Status.ToString().ToLowerInvariant());
            line["read_seconds"].Set(Number(r.ReadSeconds));
            line["segment_seconds"].Set(Number(r.SegmentSeconds));
            line["write_seconds"].Set(Number(r.WriteSeconds));
            for (int c = 0; c < classNames.Count; c++)
                line[classNames[c] + "_ml"].Set(r.VolumesMl is null ? "" : Number(r.VolumesMl[c]));
            line["message"].Set(r.Message);
        }
        return writer.ToString();
    }

    /// <summary>The rows of an earlier summary with the same classes whose images were segmented, by (input, output); none when it is unreadable.</summary>
    static Dictionary<(string, string), CohortRow> ReadDone(string path, IReadOnlyList<string> classNames)
    {
        var done = new Dictionary<(string, string), CohortRow>();
        try
        {
            using var reader = Sep.New(',').Reader(o => o with { Unescape = true, CultureInfo = CultureInfo.InvariantCulture }).FromFile(path);
            string[] volumeColumns = classNames.Select(n => n + "_ml").ToArray();
            if (!volumeColumns.All(c => reader.Header.TryIndexOf(c, out _)))
                return done; // written for another model's classes
            foreach (var row in reader)
            {
                if (row["status"].ToString() != "done") continue;
                var volumes = new double[volumeColumns.Length];
                for (int c = 0; c < volumes.Length; c++) volumes[c] = row[volumeColumns[c]].Parse<double>();
                string input = row["input"].ToString(), output = row["output"].ToString();
                done[(input, output)] = new CohortRow(input, output, CohortStatus.Done,
                    row["read_seconds"].Parse<double>(), row["segment_seconds"].Parse<double>(), row["write_seconds"].Parse<double>(), volumes, "");
            }
        }
        catch (Exception e) when (e is IOException or FormatException or BadInputException or ArgumentException or KeyNotFoundException or InvalidDataException)
        {
            // An earlier summary that cannot be read only costs the skipped rows their volumes.
        }
        return done;
    }

    static string Number(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);

    sealed record Loaded(CohortJob Job, MriImage? Image, Volume? Volume, double Seconds, Exception? Error);

    static Task<Loaded> Load(CohortJob job, Func<string, MriImage> read, Func<Exception, bool> isInputError) => Task.Run(() =>
    {
        var clock = Stopwatch.StartNew();
        try
        {
            var image = read(job.Input.Path);
            return new Loaded(job, image, image.GetVolume(), clock.Elapsed.TotalSeconds, null);
        }
        catch (Exception e) when (isInputError(e))
        {
            return new Loaded(job, null, null, clock.Elapsed.TotalSeconds, e);
        }
    });

    static Task<CohortRow> Write(SegmentationModel model, Loaded loaded, VolumeSegmentation segmentation, double segmentSeconds,
        Func<Exception, bool> isInputError) => Task.Run(() =>
    {
        var clock = Stopwatch.StartNew();
        var job = loaded.Job;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(job.Output))!);
            NiftiWriter.WriteLabelMap<byte>(job.Output, ClassNamesMetadata.Attach(loaded.Image!.Header, model.ClassNames), segmentation.Classes);
            var voxels = new long[segmentation.ClassCount];
            foreach (byte c in segmentation.Classes) voxels[c]++;
            double voxelMl = SegmentationEvaluation.VoxelVolumeMl(loaded.Volume!.Affine);
            return new CohortRow(job.Input.Path, job.Output, CohortStatus.Done, loaded.Seconds, segmentSeconds, clock.Elapsed.TotalSeconds,
                voxels.Select(n => n * voxelMl).ToArray(), "");
        }
        catch (Exception e) when (isInputError(e))
        {
            return Failed(job, loaded, segmentSeconds, e) with { WriteSeconds = clock.Elapsed.TotalSeconds };
        }
    });

    static CohortRow Failed(CohortJob job, Loaded loaded, double segmentSeconds, Exception e) =>
        new(job.Input.Path, job.Output, CohortStatus.Failed, loaded.Seconds, segmentSeconds, 0, null, e.Message.ReplaceLineEndings(" "));
}
