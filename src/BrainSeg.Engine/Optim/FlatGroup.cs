using System.Runtime.CompilerServices;

namespace BrainSeg.Engine.Optim;

/// <summary>
/// A group's parameters in one flat block and their gradients in another, laid out alike: each tensor is a view
/// at the same offset in both, starting on a 64-element boundary, with zeros between them. An elementwise update
/// over the whole blocks (and a state block of the same layout) then updates every parameter in one launch; the
/// padding stays zero under RMSprop (a zero gradient moves a zero parameter by nothing).
/// </summary>
public sealed class FlatGroup : IDisposable
{
    private const int Alignment = 64;

    // The block a parameter was moved into, so a second optimiser over the same group shares it.
    private static readonly ConditionalWeakTable<Tensor, FlatGroup> Home = new();

    private readonly Tensor[] _parameters;
    private readonly long[] _offsets;
    private readonly Tensor[] _gradients;   // the views installed as each parameter's Grad

    private FlatGroup(Tensor[] parameters, long[] offsets, Tensor[] gradients, Tensor values, Tensor grads)
    {
        (_parameters, _offsets, _gradients, Values, Grads) = (parameters, offsets, gradients, values, grads);
    }

    /// <summary>Every parameter's values, one 1-D tensor over the block.</summary>
    public Tensor Values { get; }

    /// <summary>Every parameter's gradient, one 1-D tensor over the block.</summary>
    public Tensor Grads { get; }

    /// <summary>
    /// Moves <paramref name="parameters"/> and their gradients into flat blocks (their values and any gradient
    /// are kept), or shares the blocks another group already moved them into in the same order. Null when the
    /// backend has no views or the tensors cannot share a block (mixed dtypes, partly packed elsewhere).
    /// </summary>
    public static FlatGroup? For(IReadOnlyList<Tensor> parameters)
    {
        if (parameters.Count == 0 || parameters[0].Backend is not IViewBackend views) return null;
        var first = parameters[0];
        if (parameters.Any(p => p.Backend != first.Backend || p.DType != first.DType || p.DType == DType.Int32)) return null;
        if (Home.TryGetValue(first, out var home))
            return home.Holds(parameters) && !home.Values.IsDisposed
                ? new FlatGroup(home._parameters, home._offsets, home._gradients, home.Values.Reshape(home.Values.Shape[0]), home.Grads.Reshape(home.Grads.Shape[0]))
                : null;
        if (parameters.Any(p => Home.TryGetValue(p, out _))) return null;

        var offsets = new long[parameters.Count];
        long length = 0;
        for (var i = 0; i < parameters.Count; i++)
        {
            offsets[i] = length;
            length += (parameters[i].Numel + Alignment - 1) / Alignment * Alignment;
        }
        if (length == 0 || length > int.MaxValue) return null;
        return Pack(views, [.. parameters], offsets, (int)length);
    }

    private static FlatGroup Pack(IViewBackend views, Tensor[] parameters, long[] offsets, int length)
    {
        var b = parameters[0].Backend;
        var values = b.Empty(new Shape(length), parameters[0].DType);
        var grads = b.Empty(new Shape(length), parameters[0].DType);
        b.Fill(values, 0);
        b.Fill(grads, 0);
        var gradients = new Tensor[parameters.Length];
        for (var i = 0; i < parameters.Length; i++)
        {
            var p = parameters[i];
            using (var slot = views.View(values, offsets[i], p.Shape))
            {
                b.Copy(p, slot);
                p.ShareStorageOf(slot);
            }
            var g = gradients[i] = views.View(grads, offsets[i], p.Shape);
            g.Name = p.Name is null ? null : p.Name + ".grad";
            if (p.Grad is { } old)
            {
                b.Copy(old, g);
                old.Dispose();
            }
            p.Grad = g;
        }
        var group = new FlatGroup(parameters, offsets, gradients, values, grads);
        foreach (var p in parameters) Home.AddOrUpdate(p, group);
        return group;
    }

    /// <summary>A view of a block laid out as this group (the optimiser's state) at parameter <paramref name="index"/>.</summary>
    public Tensor ViewOf(Tensor block, int index) =>
        ((IViewBackend)block.Backend).View(block, _offsets[index], _parameters[index].Shape);

    /// <summary>False when some parameter's gradient was replaced since packing: the blocks no longer hold it.</summary>
    public bool GradientsInPlace()
    {
        for (var i = 0; i < _parameters.Length; i++)
            if (!ReferenceEquals(_parameters[i].Grad, _gradients[i])) return false;
        return true;
    }

    /// <summary>
    /// Zeroes the gradients no backward pass wrote this step (the <see cref="Tensor.GradIsFresh"/> convention):
    /// one memset of the block when none was reached, otherwise one per unreached tensor.
    /// </summary>
    public void ClearUnreachedGradients()
    {
        int unreached = 0;
        foreach (var p in _parameters)
            if (!p.GradIsFresh) unreached++;
        if (unreached == 0) return;
        if (unreached == _parameters.Length)
        {
            Grads.Backend.Fill(Grads, 0);
            return;
        }
        foreach (var p in _parameters)
            if (!p.GradIsFresh) p.Backend.Fill(p.Grad!, 0);
    }

    private bool Holds(IReadOnlyList<Tensor> parameters) =>
        parameters.Count == _parameters.Length && parameters.Select((p, i) => ReferenceEquals(p, _parameters[i])).All(same => same);

    /// <summary>Releases this handle on the blocks; the parameters and gradients keep their memory alive.</summary>
    public void Dispose()
    {
        Values.Dispose();
        Grads.Dispose();
    }
}
