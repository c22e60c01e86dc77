namespace BrainSeg.Cuda;

/// <summary>A timing event on the current context (make the context current before Create).</summary>
public sealed unsafe class CudaEvent : IDisposable
{
    private nint handle;

    private CudaEvent(nint handle) => this.handle = handle;

    /// <param name="timing">False for an event that only orders work (cheaper; <see cref="ElapsedMs"/> then fails).</param>
    public static CudaEvent Create(bool timing = true)
    {
        nint handle = 0;
        Check.Cu(Driver.cuEventCreate(&handle, timing ? Driver.CU_EVENT_DEFAULT : Driver.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        return new CudaEvent(handle);
    }

    public void Record(nint stream) => Check.Cu(Driver.cuEventRecord(Handle, stream), "cuEventRecord");

    public void Synchronize() => Check.Cu(Driver.cuEventSynchronize(Handle), "cuEventSynchronize");

    /// <summary>Whether the device has reached this event's last record (true for an event never recorded); never waits.</summary>
    public bool IsReached
    {
        get
        {
            int status = Driver.cuEventQuery(Handle);
            if (status == Driver.CUDA_ERROR_NOT_READY) return false;
            Check.Cu(status, "cuEventQuery");
            return true;
        }
    }

    /// <summary>Makes work queued on <paramref name="stream"/> after this call wait for this event's last record.</summary>
    public void OrderBefore(nint stream) => Check.Cu(Driver.cuStreamWaitEvent(stream, Handle, 0), "cuStreamWaitEvent");

    /// <summary>Milliseconds from <paramref name="start"/> to this event; waits for this event first.</summary>
    public float ElapsedMs(CudaEvent start)
    {
        Synchronize();
        float ms = 0;
        Check.Cu(Driver.cuEventElapsedTime(&ms, start.Handle, Handle), "cuEventElapsedTime");
        return ms;
    }

    private nint Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(handle == 0, this);
            return handle;
        }
    }

    public void Dispose()
    {
        if (handle == 0) return;
        nint h = handle;
        handle = 0;
        Check.Cu(Driver.cuEventDestroy_v2(h), "cuEventDestroy_v2");
    }
}
