namespace BrainSeg.Cuda;

/// <summary>
/// Work captured from the context's stream (global capture mode) and instantiated as a CUDA graph, replayed by
/// <see cref="Launch"/> with one call. The captured work must not allocate (warm the pool first), synchronise, or
/// run cuDNN's algorithm search.
/// </summary>
public sealed unsafe class CudaGraph : IDisposable
{
    private readonly CudaContext context;
    private nint graph;
    private nint exec;

    private CudaGraph(CudaContext context, nint graph, nint exec)
    {
        this.context = context;
        this.graph = graph;
        this.exec = exec;
    }

    public static CudaGraph Capture(CudaContext ctx, Action work)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(work);
        ctx.MakeCurrent();
        Check.Cu(Driver.cuStreamBeginCapture_v2(ctx.Stream, CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_GLOBAL), "cuStreamBeginCapture_v2");
        nint graph = 0;
        try
        {
            work();
        }
        catch
        {
            // End the (now invalid) capture so the stream is usable again; the original error is what matters.
            if (Driver.cuStreamEndCapture(ctx.Stream, &graph) == 0 && graph != 0) Driver.cuGraphDestroy(graph);
            throw;
        }
        Check.Cu(Driver.cuStreamEndCapture(ctx.Stream, &graph), "cuStreamEndCapture");
        nint exec = 0;
        int status = Driver.cuGraphInstantiateWithFlags(&exec, graph, 0);
        if (status != 0)
        {
            Driver.cuGraphDestroy(graph);
            throw Check.CuError(status, "cuGraphInstantiateWithFlags");
        }
        return new CudaGraph(ctx, graph, exec);
    }

    /// <summary>Queues one replay of the captured work on the context's stream.</summary>
    public void Launch()
    {
        ObjectDisposedException.ThrowIf(exec == 0, this);
        context.MakeCurrent();
        Check.Cu(Driver.cuGraphLaunch(exec, context.Stream), "cuGraphLaunch");
    }

    public void Dispose()
    {
        if (exec == 0) return;
        context.MakeCurrent();
        nint e = exec, g = graph;
        exec = 0;
        graph = 0;
        Check.Cu(Driver.cuGraphExecDestroy(e), "cuGraphExecDestroy");
        Check.Cu(Driver.cuGraphDestroy(g), "cuGraphDestroy");
    }
}
