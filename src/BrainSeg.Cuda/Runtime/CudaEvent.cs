namespace BrainSeg.Cuda;

/// <summary>A timing event on the current context (make the context current before Create).</summary>
public sealed unsafe class CudaEvent : IDisposable
{
    private nint handle;

    private CudaEvent(nint handle) => this.handle = handle;

    public static CudaEvent Create()
    {
        nint handle = 0;
        Check.Cu(Driver.cuEventCreate(&handle, Driver.CU_EVENT_DEFAULT), "cuEventCreate");
        return new CudaEvent(handle);
    }

    public void Record(nint stream) => Check.Cu(Driver.cuEventRecord(Handle, stream), "cuEventRecord");

    public void Synchronize() => Check.Cu(Driver.cuEventSynchronize(Handle), "cuEventSynchronize");

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
