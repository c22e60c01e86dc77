namespace BrainSeg.Engine;

/// <summary>Times spans of work on one backend: the host clock for a CPU, device events for a GPU.</summary>
public interface IOpClock
{
    /// <summary>Marks the start of an op (after all work queued before it).</summary>
    object Begin();

    /// <summary>Marks the end of the op begun with <paramref name="started"/>.</summary>
    void End(object started, string op);

    /// <summary>Waits for the work measured so far and hands over each (op, milliseconds) since the last call.</summary>
    IReadOnlyList<(string Op, double Ms)> Drain();
}

/// <summary>Host wall clock per op, for backends whose ops finish before they return (the CPU).</summary>
public sealed class StopwatchOpClock : IOpClock
{
    private readonly List<(string, double)> _spans = [];

    public object Begin() => System.Diagnostics.Stopwatch.GetTimestamp();

    public void End(object started, string op) =>
        _spans.Add((op, System.Diagnostics.Stopwatch.GetElapsedTime((long)started).TotalMilliseconds));

    public IReadOnlyList<(string Op, double Ms)> Drain()
    {
        var spans = _spans.ToArray();
        _spans.Clear();
        return spans;
    }
}

/// <summary>
/// A backend that forwards every op to another and times it by name, so a step's time can be split
/// into its ops (`brainseg bench --profile`). Tensors belong to the inner backend; code that calls
/// a tensor's own backend (the optimiser) goes around the profiler and shows up as the remainder.
/// Convolutions are named with their geometry, so each layer shape gets its own row.
/// </summary>
public sealed class ProfilingBackend(IBackend inner, IOpClock clock) : IBackend
{
    private readonly Dictionary<string, (int Calls, double Ms)> _totals = [];

    public IBackend Inner => inner;
    public string Name => inner.Name;
    public bool IsGpu => inner.IsGpu;
    public string Precision => inner.Precision;

    /// <summary>Adds the spans measured since the last call to the totals (waits for the device).</summary>
    public void Collect()
    {
        foreach (var (op, ms) in clock.Drain())
        {
            var (calls, total) = _totals.GetValueOrDefault(op);
            _totals[op] = (calls + 1, total + ms);
        }
    }

    /// <summary>Calls and milliseconds per op since the last <see cref="Reset"/>, largest first.</summary>
    public IReadOnlyList<(string Op, int Calls, double Ms)> Totals()
    {
        Collect();
        return _totals.Select(kv => (kv.Key, kv.Value.Calls, kv.Value.Ms)).OrderByDescending(r => r.Ms).ToList();
    }

    public void Reset()
    {
        Collect();
        _totals.Clear();
    }

    private void Time(string op, Action run)
    {
        var started = clock.Begin();
        run();
        clock.End(started, op);
    }

    private static string Conv(string pass, Tensor w, Conv2dSpec spec) =>
        $"{pass} {w.Shape[1]}→{w.Shape[0]} {w.Shape[2]}×{w.Shape[3]}" + (spec.Dilation > 1 ? $" d{spec.Dilation}" : "") + (spec.Padding > 0 ? $" pad {spec.Padding}" : "");

    // ---- memory ----

    public Tensor Empty(Shape shape, DType dtype) => inner.Empty(shape, dtype);

    public void Upload<T>(ReadOnlySpan<T> src, Tensor dst) where T : unmanaged
    {
        var started = clock.Begin();
        inner.Upload(src, dst);
        clock.End(started, nameof(Upload));
    }

    public void Download<T>(Tensor src, Span<T> dst) where T : unmanaged
    {
        var started = clock.Begin();
        inner.Download(src, dst);
        clock.End(started, nameof(Download));
    }

    public void UploadAsync<T>(ReadOnlySpan<T> src, Tensor dst) where T : unmanaged
    {
        var started = clock.Begin();
        inner.UploadAsync(src, dst);
        clock.End(started, nameof(UploadAsync));
    }

    public HostReadback CreateReadback(int capacity) => inner.CreateReadback(capacity);

    public void Copy(Tensor src, Tensor dst) => Time(nameof(Copy), () => inner.Copy(src, dst));
    public void CopyReshaped(Tensor src, Tensor dst) => Time(nameof(CopyReshaped), () => inner.CopyReshaped(src, dst));
    public void CopyBatch(Tensor src, int srcFirst, Tensor dst, int dstFirst, int count) =>
        Time(nameof(CopyBatch), () => inner.CopyBatch(src, srcFirst, dst, dstFirst, count));
    public void Fill(Tensor t, double value) => Time(nameof(Fill), () => inner.Fill(t, value));
    public void Synchronize() => inner.Synchronize();

    // ---- elementwise and linear algebra ----

    public void Add(Tensor a, Tensor b, Tensor y) => Time(nameof(Add), () => inner.Add(a, b, y));
    public void Multiply(Tensor a, Tensor b, Tensor y) => Time(nameof(Multiply), () => inner.Multiply(a, b, y));
    public void AddScaled(Tensor y, Tensor x, double alpha) => Time(nameof(AddScaled), () => inner.AddScaled(y, x, alpha));
    public void Scale(Tensor y, double alpha) => Time(nameof(Scale), () => inner.Scale(y, alpha));

    public void Gemm(bool transposeA, bool transposeB, double alpha, Tensor a, Tensor b, double beta, Tensor c) =>
        Time($"{nameof(Gemm)} {c.Shape[0]}×{c.Shape[1]}×{(transposeA ? a.Shape[0] : a.Shape[1])}",
            () => inner.Gemm(transposeA, transposeB, alpha, a, b, beta, c));

    // ---- convolution ----

    public void Conv2dForward(Tensor x, Tensor w, Tensor y, Conv2dSpec spec, Tensor? bias = null, bool relu = false) =>
        Time(Conv(nameof(Conv2dForward), w, spec) + (bias is null ? "" : " + bias") + (relu ? " + ReLU" : ""),
            () => inner.Conv2dForward(x, w, y, spec, bias, relu));

    public void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, Conv2dSpec spec, Tensor? x = null) =>
        Time(Conv(nameof(Conv2dBackwardData), w, spec), () => inner.Conv2dBackwardData(dy, w, dx, spec, x));

    public void Conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Conv2dSpec spec) =>
        Time(Conv(nameof(Conv2dBackwardFilter), dw, spec), () => inner.Conv2dBackwardFilter(x, dy, dw, spec));

    public void AddChannelBias(Tensor y, Tensor bias) => Time(nameof(AddChannelBias), () => inner.AddChannelBias(y, bias));
    public void ChannelSum(Tensor dy, Tensor db) => Time(nameof(ChannelSum), () => inner.ChannelSum(dy, db));

    // ---- batch normalisation, activations, dropout ----

    public void BatchNormForwardTraining(Tensor x, Tensor? gamma, Tensor beta, Tensor y,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, double momentum, double eps, bool relu = false) =>
        Time(nameof(BatchNormForwardTraining) + (relu ? " + ReLU" : ""),
            () => inner.BatchNormForwardTraining(x, gamma, beta, y, runningMean, runningVar, saveMean, saveInvStd, momentum, eps, relu));

    public void BatchNormForwardInference(Tensor x, Tensor? gamma, Tensor beta, Tensor y, Tensor runningMean, Tensor runningVar, double eps,
        bool relu = false) =>
        Time(nameof(BatchNormForwardInference) + (relu ? " + ReLU" : ""),
            () => inner.BatchNormForwardInference(x, gamma, beta, y, runningMean, runningVar, eps, relu));

    public void BatchNormBackward(Tensor x, Tensor dy, Tensor? gamma, Tensor beta, Tensor saveMean, Tensor saveInvStd, Tensor dx, Tensor? dgamma,
        Tensor dbeta, bool relu = false) =>
        Time(nameof(BatchNormBackward) + (relu ? " + ReLU" : ""),
            () => inner.BatchNormBackward(x, dy, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta, relu));

    public void ReluForward(Tensor x, Tensor y) => Time(nameof(ReluForward), () => inner.ReluForward(x, y));
    public void ReluBackward(Tensor y, Tensor dy, Tensor dx) => Time(nameof(ReluBackward), () => inner.ReluBackward(y, dy, dx));

    public void DropoutMask(Tensor mask, double p, ulong seed, ulong offset) =>
        Time(nameof(DropoutMask), () => inner.DropoutMask(mask, p, seed, offset));

    public void DropoutMultiply(Tensor x, Tensor y, double p, ulong seed, ulong offset) =>
        Time(nameof(DropoutMultiply), () => inner.DropoutMultiply(x, y, p, seed, offset));

    // ---- pooling and shape ops ----

    public void MaxPoolForward(Tensor x, Tensor y, Tensor argmax, int window, int stride) =>
        Time(nameof(MaxPoolForward), () => inner.MaxPoolForward(x, y, argmax, window, stride));

    public void MaxPoolBackward(Tensor dy, Tensor argmax, Tensor dx) => Time(nameof(MaxPoolBackward), () => inner.MaxPoolBackward(dy, argmax, dx));
    public void ConcatChannels(Tensor a, Tensor b, Tensor y) => Time(nameof(ConcatChannels), () => inner.ConcatChannels(a, b, y));
    public void SplitChannels(Tensor dy, Tensor? da, Tensor? db) => Time(nameof(SplitChannels), () => inner.SplitChannels(dy, da, db));
    public void CenterCrop(Tensor x, Tensor y) => Time(nameof(CenterCrop), () => inner.CenterCrop(x, y));
    public void CenterPad(Tensor x, Tensor y) => Time(nameof(CenterPad), () => inner.CenterPad(x, y));

    // ---- classification and optimiser ----

    public void SoftmaxForward(Tensor logits, Tensor probs) => Time(nameof(SoftmaxForward), () => inner.SoftmaxForward(logits, probs));

    public void SoftmaxCrossEntropyForward(Tensor logits, Tensor target, Tensor probs, Tensor loss) =>
        Time(nameof(SoftmaxCrossEntropyForward), () => inner.SoftmaxCrossEntropyForward(logits, target, probs, loss));

    public void SoftmaxCrossEntropyBackward(Tensor probs, Tensor target, Tensor dloss, Tensor dlogits) =>
        Time(nameof(SoftmaxCrossEntropyBackward), () => inner.SoftmaxCrossEntropyBackward(probs, target, dloss, dlogits));

    public void ArgmaxChannels(Tensor x, Tensor labels) => Time(nameof(ArgmaxChannels), () => inner.ArgmaxChannels(x, labels));
    public void OneHot(Tensor labels, Tensor y) => Time(nameof(OneHot), () => inner.OneHot(labels, y));

    public void RmsPropStep(Tensor param, Tensor grad, Tensor meanSquare, double lr, double rho, double eps, double gradScale) =>
        Time(nameof(RmsPropStep), () => inner.RmsPropStep(param, grad, meanSquare, lr, rho, eps, gradScale));

    /// <summary>The inner backend belongs to whoever made it.</summary>
    public void Dispose() { }
}
