using BrainSeg.Engine;

namespace BrainSeg.Seg.Training;

/// <summary>
/// How an iteration's losses reach the host without stalling the device: each update copies its loss into one
/// small device tensor (Ls, Ld, La), the iteration then starts one readback of it, and the loop reads it after
/// queuing the next iteration. Two readbacks alternate, so iteration k's values stay readable while k + 1 runs.
/// </summary>
public sealed partial class Trainer
{
    private const int SegmentationLoss = 0, DiscriminatorLoss = 1, AdversarialLoss = 2;

    private readonly (Tensor? Images, Tensor? Labels)[] _inputs = new (Tensor?, Tensor?)[3];
    private readonly Dictionary<(int Manual, int Generated), Tensor> _targets = [];
    private readonly HostReadback?[] _readbacks = new HostReadback?[2];
    private Tensor? _lossValues;
    private long _queued;

    /// <summary>[Ls, Ld, La] of the updates queued last; NaN where the scheme has no such update.</summary>
    private Tensor LossValues
    {
        get
        {
            if (_lossValues is null)
            {
                _lossValues = _backend.Empty(new Shape(3), Segmenter.Options.DType);
                _backend.Fill(_lossValues, double.NaN);
            }
            return _lossValues;
        }
    }

    private void KeepLoss(Tensor loss, int which) => _backend.CopyBatch(loss, 0, LossValues, which, 1);

    /// <summary>One loss of the updates queued last, waiting for them (for callers of a single update).</summary>
    private double LossNow(int which) => LossValues.ToHostDoubles()[which];

    private PendingLosses StartLossReadback()
    {
        var slot = (int)(_queued % _readbacks.Length);
        var readback = _readbacks[slot] ??= _backend.CreateReadback(3);
        readback.Start(LossValues);
        return new PendingLosses(this, readback, ++_queued);
    }

    private void DisposeStepState()
    {
        DropRecording();
        foreach (var (images, labels) in _inputs)
        {
            images?.Dispose();
            labels?.Dispose();
        }
        foreach (var t in _targets.Values) t.Dispose();
        foreach (var r in _readbacks) r?.Dispose();
        _lossValues?.Dispose();
    }

    /// <summary>The losses of a queued iteration, read when they are needed; valid until two more iterations are queued.</summary>
    public sealed class PendingLosses
    {
        private readonly Trainer _trainer;
        private readonly HostReadback _readback;
        private readonly long _number;
        private Losses? _values;

        internal PendingLosses(Trainer trainer, HostReadback readback, long number) => (_trainer, _readback, _number) = (trainer, readback, number);

        /// <summary>The losses, waiting for the device to finish this iteration if it has not yet.</summary>
        public Losses Read()
        {
            if (_values is { } known) return known;
            if (_trainer._queued - _number >= _trainer._readbacks.Length)
                throw new InvalidOperationException($"The losses of iteration {_number} were read after {_trainer._queued - _number} more were queued; read them before queuing the one after next.");
            Span<double> v = stackalloc double[3];
            _readback.Read(v);
            _values = new Losses(v[0], v[1], v[2]);
            return _values.Value;
        }
    }
}
