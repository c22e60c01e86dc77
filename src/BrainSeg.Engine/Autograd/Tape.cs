namespace BrainSeg.Engine.Autograd;

/// <summary>
/// Reverse-mode automatic differentiation in one page. Every op of <see cref="F"/> runs its forward at
/// once and, when gradients are wanted, records a backward closure here. <see cref="Backward(Tensor)"/>
/// walks the closures in reverse order; each reads its output's gradient and adds into its inputs'.
/// <para>
/// Gradients follow the <see cref="Tensor.GradIsFresh"/> convention: the first write in a pass overwrites
/// <see cref="Tensor.Grad"/>, later writes accumulate, so clearing gradients costs no memset.
/// </para>
/// <para>
/// The tape owns every intermediate it creates and disposes them with itself: on a GPU they are pooled
/// device memory, so one step's tape should be disposed before the next step begins. A tape made with
/// <see cref="NoGrad"/> records nothing (inference) but still owns its intermediates.
/// </para>
/// </summary>
public sealed class Tape : IDisposable
{
    private readonly List<(Tensor Output, Action Backward)> _entries = [];
    private readonly List<Tensor> _owned = [];          // disposal order = creation order
    private readonly HashSet<Tensor> _ownedSet = new(ReferenceEqualityComparer.Instance);
    private bool _backwardDone, _disposed;

    public Tape(IBackend backend, bool recordGradients = true)
    {
        Backend = backend;
        IsRecording = recordGradients;
    }

    /// <summary>A tape for inference: ops run forward only and no gradient is ever computed.</summary>
    public static Tape NoGrad(IBackend backend) => new(backend, recordGradients: false);

    public IBackend Backend { get; }

    /// <summary>False in no-grad mode.</summary>
    public bool IsRecording { get; }

    /// <summary>Number of recorded backward steps (for tests and diagnostics).</summary>
    public int Count => _entries.Count;

    /// <summary>A new intermediate tensor owned (and later disposed) by this tape.</summary>
    public Tensor Empty(Shape shape, DType dtype) => Own(Backend.Empty(shape, dtype));

    /// <summary>Hands a tensor to the tape, which disposes it with itself.</summary>
    public Tensor Own(Tensor t)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_ownedSet.Add(t)) _owned.Add(t);
        return t;
    }

    /// <summary>Takes a tensor back from the tape so that it outlives it (the caller disposes it).</summary>
    public Tensor Keep(Tensor t)
    {
        if (!_ownedSet.Remove(t)) throw new ArgumentException($"{t.Describe()} is not owned by this tape.", nameof(t));
        _owned.Remove(t);
        return t;
    }

    /// <summary>
    /// Frees an intermediate now instead of with the tape, on a <see cref="NoGrad"/> tape only (a recording
    /// tape keeps what its backward steps read). Inference uses it to hold one activation at a time.
    /// Tensors the tape does not own are left alone.
    /// </summary>
    public void Release(Tensor t)
    {
        if (IsRecording || !_ownedSet.Remove(t)) return;
        _owned.Remove(t);
        t.Dispose();
    }

    /// <summary>True when an op over these inputs must record a backward step.</summary>
    public bool NeedsGrad(Tensor? a, Tensor? b = null, Tensor? c = null) =>
        IsRecording && (a?.RequiresGrad == true || b?.RequiresGrad == true || c?.RequiresGrad == true);

    /// <summary>
    /// Records the backward step of an op whose result is <paramref name="output"/>. The step runs only if
    /// a gradient reached the output; afterwards the output's gradient buffer is freed.
    /// </summary>
    public void Record(Tensor output, Action backward)
    {
        if (!IsRecording) throw new InvalidOperationException("This tape was created with NoGrad and records no backward steps.");
        output.RequiresGrad = true;
        output.GradIsFresh = false;
        _entries.Add((output, backward));
    }

    /// <summary>Back-propagates from a scalar loss of shape [1] (its gradient is 1).</summary>
    public void Backward(Tensor loss)
    {
        if (loss.Numel != 1)
            throw new ArgumentException($"Backward(loss) needs a one-element loss, got {loss.Describe()}; pass an output gradient for other outputs.");
        using var one = Backend.Empty(loss.Shape, loss.DType);
        Backend.Fill(one, 1.0);
        Backward(loss, one);
    }

    /// <summary>Back-propagates from <paramref name="output"/> with upstream gradient <paramref name="outputGrad"/> (same shape).</summary>
    public void Backward(Tensor output, Tensor outputGrad)
    {
        if (!IsRecording) throw new InvalidOperationException("Backward on a NoGrad tape: create the tape with recordGradients: true.");
        if (_backwardDone) throw new InvalidOperationException("Backward already ran on this tape: record a new tape for each pass.");
        if (output.Shape != outputGrad.Shape)
            throw new ArgumentException($"Output gradient {outputGrad.Shape} does not match output {output.Shape}.");
        if (!output.RequiresGrad) throw new InvalidOperationException($"{output.Describe()} does not depend on anything that requires a gradient.");
        _backwardDone = true;

        AccumulateGrad(output, g => Backend.Copy(outputGrad, g));
        for (var i = _entries.Count - 1; i >= 0; i--)
        {
            var (y, backward) = _entries[i];
            if (!y.GradIsFresh) continue; // no gradient reached this op
            backward();
            // The intermediate's gradient is consumed: give its memory back early.
            if (_ownedSet.Contains(y)) { y.Grad?.Dispose(); y.Grad = null; y.GradIsFresh = false; }
        }
    }

    // ---- gradient buffers (used by the ops' backward closures) ----

    /// <summary>
    /// Where a backward step should write the gradient of <paramref name="t"/>: its own Grad on the first
    /// write of the pass, else a scratch tensor to be added by <see cref="CommitGrad"/>. Null when
    /// <paramref name="t"/> needs no gradient.
    /// </summary>
    public Tensor? GradBuffer(Tensor t)
    {
        if (!t.RequiresGrad) return null;
        if (t.GradIsFresh) return Backend.Empty(t.Shape, t.DType);
        // Claimed now, so a second buffer for the same tensor in this step (x used twice by one op) is scratch.
        t.GradIsFresh = true;
        return t.Grad ??= Backend.Empty(t.Shape, t.DType);
    }

    /// <summary>Like <see cref="GradBuffer"/> but never null: a scratch tensor when <paramref name="t"/> needs no gradient (for backend calls that always write it).</summary>
    public Tensor GradBufferOrScratch(Tensor t) => GradBuffer(t) ?? Backend.Empty(t.Shape, t.DType);

    /// <summary>Completes a write begun with <see cref="GradBuffer"/>: accumulates a scratch buffer and marks the gradient fresh.</summary>
    public void CommitGrad(Tensor t, Tensor? buffer)
    {
        if (buffer is null) return;
        if (!t.RequiresGrad) { buffer.Dispose(); return; }
        if (ReferenceEquals(buffer, t.Grad)) return;
        Backend.AddScaled(t.Grad!, buffer, 1.0);
        buffer.Dispose();
    }

    /// <summary>Writes (first time) or adds (later) a gradient of <paramref name="t"/> computed by <paramref name="write"/>.</summary>
    public void AccumulateGrad(Tensor t, Action<Tensor> write)
    {
        var buffer = GradBuffer(t);
        if (buffer is null) return;
        write(buffer);
        CommitGrad(t, buffer);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
        _ownedSet.Clear();
        _entries.Clear();
    }
}
