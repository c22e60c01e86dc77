using BrainSeg.Engine;

namespace BrainSeg.Cuda;

/// <summary>
/// Transfers that keep the host out of the step: inputs staged in page-locked memory and copied on the copy
/// stream while earlier work runs, and losses copied back into page-locked memory and read one step later.
/// </summary>
public sealed unsafe partial class CudaBackend
{
    // Uploads in flight at once before the host has to wait for the oldest: two adversarial iterations (six each) fit.
    private const int MaxUploadSlots = 16;

    private readonly List<UploadSlot> _freeSlots = [];
    private readonly Queue<UploadSlot> _slotsInFlight = new();

    /// <summary>
    /// Host → pinned slot (a memcpy), pinned → device staging block on the copy stream, then, once the compute
    /// stream reaches this call, staging → <paramref name="dst"/> (a device-to-device copy at memory speed). The
    /// staging block lets the host-to-device copy overlap the step that still reads <paramref name="dst"/>.
    /// </summary>
    public void UploadAsync<T>(ReadOnlySpan<T> src, Tensor dst) where T : unmanaged
    {
        Enter(nameof(UploadAsync));
        OpChecks.Upload<T>(this, src.Length, dst);
        if (dst.Numel == 0) return;
        Model(3 * dst.ByteLength);   // host → staging, then staging read and dst written
        var slot = TakeUploadSlot(dst.ByteLength);
        var staged = slot.Host.AsSpan<T>(dst.Numel);
        if (dst.IsChannelsLast) Layouts.ToChannelsLast(src, staged, dst.Shape);
        else src.CopyTo(staged);
        _ctx.CopyHostToDevice(slot.Host.Pointer, slot.Device.Pointer, dst.ByteLength, _ctx.CopyStream);
        slot.Copied.Record(_ctx.CopyStream);
        slot.Copied.OrderBefore(_ctx.Stream);
        _ctx.CopyDeviceToDevice(slot.Device.Pointer, Ptr(dst), dst.ByteLength);
        slot.Consumed.Record(_ctx.Stream);
        _slotsInFlight.Enqueue(slot);
    }

    /// <summary>A slot of at least <paramref name="bytes"/> whose last copy the device has finished: a free one, a new one, or the oldest after waiting.</summary>
    private UploadSlot TakeUploadSlot(long bytes)
    {
        while (_slotsInFlight.TryPeek(out var oldest) && oldest.Consumed.IsReached) _freeSlots.Add(_slotsInFlight.Dequeue());
        UploadSlot? best = null;
        foreach (var s in _freeSlots)
            if (s.Bytes >= bytes && (best is null || s.Bytes < best.Bytes)) best = s;
        if (best is not null)
        {
            _freeSlots.Remove(best);
            return best;
        }
        if (_freeSlots.Count + _slotsInFlight.Count >= MaxUploadSlots)
        {
            // Every slot is taken: reuse the oldest, after the device has consumed it.
            if (_freeSlots.Count > 0) best = _freeSlots[0];
            else
            {
                best = _slotsInFlight.Dequeue();
                _ctx.Counters.HostSync();
                best.Consumed.Synchronize();
            }
            _freeSlots.Remove(best);
            best.Dispose();
        }
        return new UploadSlot(_ctx.Pool, DeviceMemoryPool.BucketSize(bytes));
    }

    private void DisposeUploadSlots()
    {
        foreach (var s in _freeSlots.Concat(_slotsInFlight)) s.Dispose();
        _freeSlots.Clear();
        _slotsInFlight.Clear();
    }

    /// <summary>Pinned host memory, its device staging block, and the events that say when each may be refilled.</summary>
    private sealed class UploadSlot : IDisposable
    {
        private readonly DeviceMemoryPool _pool;

        public UploadSlot(DeviceMemoryPool pool, long bytes)
        {
            _pool = pool;
            Bytes = bytes;
            Host = new PinnedBuffer(bytes);
            Device = pool.Rent(bytes);
        }

        public long Bytes { get; }
        public PinnedBuffer Host { get; }
        public DeviceBuffer Device { get; }
        public CudaEvent Copied { get; } = CudaEvent.Create(timing: false);
        public CudaEvent Consumed { get; } = CudaEvent.Create(timing: false);

        public void Dispose()
        {
            Copied.Dispose();
            Consumed.Dispose();
            _pool.Return(Device);
            Host.Dispose();
        }
    }

    public HostReadback CreateReadback(int capacity)
    {
        Enter(nameof(CreateReadback));
        return new PinnedReadback(this, capacity);
    }

    /// <summary>Copies into pinned memory on the compute stream and records an event; reading waits for that event only.</summary>
    private sealed class PinnedReadback(CudaBackend backend, int capacity) : HostReadback(capacity)
    {
        private readonly PinnedBuffer _host = new(capacity * sizeof(double));
        private readonly CudaEvent _copied = CudaEvent.Create(timing: false);
        private DType _dtype;

        protected override void Queue(Tensor src)
        {
            backend.Enter(nameof(HostReadback));
            backend.RequireDevice(nameof(HostReadback), src);
            backend.Model(src.ByteLength);
            _dtype = src.DType;
            backend._ctx.CopyDeviceToHostAsync(backend.Ptr(src), _host.Pointer, src.ByteLength);
            _copied.Record(backend._ctx.Stream);
        }

        protected override void Wait(Span<double> dst)
        {
            backend.Enter(nameof(HostReadback));
            // A wait only when the device is still behind: reading the step before the last one usually costs none.
            if (!_copied.IsReached)
            {
                backend._ctx.Counters.HostSync();
                _copied.Synchronize();
            }
            if (_dtype == DType.Float64) _host.AsSpan<double>(dst.Length).CopyTo(dst);
            else
            {
                var values = _host.AsSpan<float>(dst.Length);
                for (var i = 0; i < dst.Length; i++) dst[i] = values[i];
            }
        }

        public override void Dispose()
        {
            if (backend._disposed) return;   // the context and its pinned memory are gone with the backend
            backend.Enter(nameof(HostReadback));
            _copied.Dispose();
            _host.Dispose();
            base.Dispose();
        }
    }
}
