using BrainSeg.Mri;
using System.Diagnostics;

namespace BrainSeg.Seg.Training;

/// <summary>The losses of one iteration; NaN where the scheme has no such loss (Ld and La in the baseline).</summary>
public readonly record struct Losses(double Segmentation, double Discriminator, double Adversarial)
{
    public static readonly Losses None = new(double.NaN, double.NaN, double.NaN);
}

/// <summary>Where a run stands, for progress bars.</summary>
public sealed record TrainingProgress(
    int Epoch, int Epochs, long Iteration, long IterationsPerEpoch, long GlobalIteration, long TotalIterations,
    long Patches, double PatchesPerSecond, Losses Last, TimeSpan Elapsed, TimeSpan Remaining, ValidationScore? LastValidation = null);

/// <summary>How <see cref="Trainer.Run"/> ended.</summary>
public enum TrainingOutcome { Completed, Interrupted }

/// <summary>The training loop: epochs of minibatches, log rows, checkpoints, progress and divergence checks.</summary>
public sealed partial class Trainer
{

    /// <summary>
    /// Trains from where the trainer stands to the last epoch, writing into <paramref name="runDirectory"/>:
    /// log.csv every <see cref="TrainingOptions.LogEvery"/> iterations, checkpoint.safetensors at the end of
    /// each epoch, every <see cref="TrainingOptions.CheckpointEvery"/> and on cancellation, and model.safetensors
    /// at the end. A NaN or infinite loss throws <see cref="TrainingDivergedException"/> and writes nothing more.
    /// With <paramref name="validation"/> the segmenter is scored every <see cref="Validation.IntervalFor"/>
    /// iterations and at the end, each score in its own log row.
    /// </summary>
    public TrainingOutcome Run(string runDirectory, Action<TrainingProgress>? progress = null, CancellationToken cancellation = default,
        Validation? validation = null)
    {
        // Checked before anything is written, so a run that cannot start leaves no folder or log behind.
        var perEpoch = _data.PatchesPerEpoch(Request) / Options.Batch;
        if (perEpoch == 0)
            throw new BadInputException($"One epoch holds {_data.PatchesPerEpoch(Request)} patches ({Options.PatchesPerClass} per class per image), fewer than one iteration of {Options.Batch}: raise --patches-per-class or lower --batch.");
        Directory.CreateDirectory(runDirectory);
        var checkpointPath = Path.Combine(runDirectory, CheckpointFile);
        using var log = new TrainingLog(Path.Combine(runDirectory, LogFile), GlobalIteration);
        var startSeconds = PreviousSeconds;
        var wall = Stopwatch.StartNew();
        var lastCheckpoint = TimeSpan.Zero;
        string? lastGood = File.Exists(checkpointPath) ? checkpointPath : null;
        long patchesThisProcess = 0;
        var window = new LossWindow();
        var total = perEpoch * Options.Epochs;
        var validateEvery = validation?.IntervalFor(total) ?? 0;
        ValidationScore? lastValidation = null;

        // Each iteration's losses are read while the next one runs (Enqueue returns before the device is done);
        // they are settled at once only where they are needed: a log row, a validation, a checkpoint, the end.
        PendingLosses? pending = null;
        long pendingIteration = 0;
        var last = Losses.None;
        void Settle()
        {
            if (pending is null) return;
            last = pending.Read();
            pending = null;
            CheckFinite(last, lastGood, pendingIteration);
            window.Add(last);
        }

        void Save()
        {
            Settle();
            PreviousSeconds = startSeconds + wall.Elapsed.TotalSeconds;
            SaveCheckpoint(checkpointPath);
            lastGood = checkpointPath;
            lastCheckpoint = wall.Elapsed;
        }

        while (Epoch < Options.Epochs)
        {
            // Batches already trained (before a resume) are drawn again and skipped, so the sampler's stream stays aligned.
            using var batches = EpochBatches(Epoch).Skip((int)Iteration).GetEnumerator();
            while (Iteration < perEpoch)
            {
                if (cancellation.IsCancellationRequested)
                {
                    Save();
                    return TrainingOutcome.Interrupted;
                }
                if (!batches.MoveNext() || batches.Current.Count != Options.Batch)
                    throw new InvalidOperationException($"The data produced fewer than {perEpoch} full minibatches in epoch {Epoch + 1}.");
                var queued = Enqueue(batches.Current);
                Settle();
                (pending, pendingIteration) = (queued, GlobalIteration + 1);
                Iteration++;
                GlobalIteration++;
                patchesThisProcess += Options.Batch;

                var validate = validation is not null && (GlobalIteration % validateEvery == 0 || GlobalIteration == total);
                var logRow = validate || GlobalIteration % Options.LogEvery == 0 || Iteration == perEpoch;
                var checkpoint = wall.Elapsed - lastCheckpoint >= Options.CheckpointEvery && Iteration < perEpoch;
                if (logRow || checkpoint) Settle();
                ValidationScore? score = validate ? validation!.Score(Segmenter) : null;
                lastValidation = score ?? lastValidation;
                var seconds = wall.Elapsed.TotalSeconds;
                if (logRow)
                    log.Append(Epoch + 1, GlobalIteration, GlobalIteration * Options.Batch, startSeconds + seconds, window.TakeMean(), score, _backend.Precision);
                if (progress is not null)
                {
                    var rate = patchesThisProcess / Math.Max(seconds, 1e-9);
                    var remaining = (total - GlobalIteration) * Options.Batch / Math.Max(rate, 1e-9);
                    progress(new TrainingProgress(Epoch + 1, Options.Epochs, Iteration, perEpoch, GlobalIteration, total,
                        GlobalIteration * Options.Batch, rate, last, TimeSpan.FromSeconds(startSeconds + seconds),
                        TimeSpan.FromSeconds(Math.Min(remaining, TimeSpan.MaxValue.TotalSeconds / 2)), lastValidation));
                }
                if (checkpoint) Save();
            }
            Epoch++;
            Iteration = 0;
            Save();
        }
        // The model file carries batch-norm statistics re-estimated with the final weights (the checkpoint keeps
        // the running averages, so a resumed run continues exactly).
        Inference.BatchNormCalibration.Recalibrate(Segmenter, _data, Request with { Seed = Request.Seed ^ 0xB17 }, Inference.BatchNormCalibration.DefaultPasses);
        SaveCheckpoint(Path.Combine(runDirectory, ModelFile));
        return TrainingOutcome.Completed;
    }

    /// <param name="iteration">The run's iteration (counted from 1) the losses belong to.</param>
    private void CheckFinite(Losses losses, string? lastGood, long iteration)
    {
        void Check(string name, double value)
        {
            if (double.IsNaN(value) && !Options.Adversarial && name != "Ls") return;
            if (!double.IsFinite(value))
                throw new TrainingDivergedException(
                    $"The {name} loss became {value} at iteration {iteration} (epoch {Epoch + 1}); " +
                    (lastGood is null ? "no checkpoint was written yet: " : $"the last good checkpoint is {lastGood}: ") +
                    "lower the learning rates (--lr-seg, --lr-disc) and start again" + (lastGood is null ? "." : ", or --resume from it."));
        }
        Check("Ls", losses.Segmentation);
        Check("Ld", losses.Discriminator);
        Check("La", losses.Adversarial);
    }

    /// <summary>Means of the losses read since the last log row.</summary>
    private sealed class LossWindow
    {
        private double _ls, _ld, _la;
        private int _count;

        public void Add(Losses l) { _ls += l.Segmentation; _ld += l.Discriminator; _la += l.Adversarial; _count++; }

        public Losses TakeMean()
        {
            var mean = _count == 0 ? Losses.None : new Losses(_ls / _count, _ld / _count, _la / _count);
            (_ls, _ld, _la, _count) = (0, 0, 0, 0);
            return mean;
        }
    }
}

/// <summary>A loss became NaN or infinite; the message names the loss, the iteration and the last good checkpoint.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);
