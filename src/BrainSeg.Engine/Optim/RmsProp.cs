namespace BrainSeg.Engine.Optim;

/// <summary>
/// Parameters that share a learning rate and a gradient scale. <see cref="GradScale"/> multiplies the
/// gradient before the update: 1 descends the loss, −1 ASCENDS it (the paper's La step updates the
/// segmentation network to maximise the discriminator's loss). Names are used for optimiser state.
/// </summary>
public sealed class ParamGroup(string name, IEnumerable<(string Name, Tensor Tensor)> parameters, double learningRate, double gradScale = 1)
{
    public string Name { get; } = name;
    public IReadOnlyList<(string Name, Tensor Tensor)> Parameters { get; } = parameters.ToArray();
    public double LearningRate { get; set; } = learningRate;
    public double GradScale { get; set; } = gradScale;
}

/// <summary>
/// RMSprop in Lasagne's convention (Tieleman and Hinton's lecture 6.5), per parameter θ with gradient g
/// and group gradient scale s:
/// <code>
///   g' = s · g
///   r  ← ρ · r + (1 − ρ) · g'²
///   θ  ← θ − lr · g' / √(r + ε)        (ε inside the root, as Lasagne; ρ = 0.9, ε = 1e-6)
/// </code>
/// r (the mean square, one tensor per parameter, zero at the start) is this optimiser's state; it can
/// be exported and imported by name for checkpoints. Gradients follow the GradIsFresh convention:
/// <see cref="ZeroGrad"/> only clears the flags, and a parameter no gradient reached this step is
/// updated with a zero gradient (its r still decays).
/// <para>
/// On a backend with views (<see cref="IViewBackend"/>, the GPU) each group's parameters, gradients and state live
/// in one flat block each, laid out alike (<see cref="FlatGroup"/>), so a step is one launch per group and
/// clearing the gradients of a group no backward reached is one memset. Elsewhere it is one launch per tensor;
/// the update of each element is the same.
/// </para>
/// </summary>
public sealed class RmsProp : IDisposable
{
    private sealed record Slot(string Name, Tensor Param, Tensor MeanSquare);

    /// <summary>A group's slots, and its flat blocks when the backend has views (null: one launch per tensor).</summary>
    private sealed class GroupState(ParamGroup group, List<Slot> slots, FlatGroup? flat, Tensor? flatState)
    {
        public ParamGroup Group { get; } = group;
        public List<Slot> Slots { get; } = slots;
        public FlatGroup? Flat { get; } = flat;
        public Tensor? FlatState { get; } = flatState;
    }

    private readonly List<GroupState> _groups = [];

    public RmsProp(IEnumerable<ParamGroup> groups, double rho = 0.9, double eps = 1e-6)
    {
        if (!(rho is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(rho), rho, "RMSprop ρ must be in [0, 1).");
        if (!(eps > 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "RMSprop ε must be positive.");
        (Rho, Eps, Groups) = (rho, eps, groups.ToArray());
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var g in Groups)
            foreach (var (name, p) in g.Parameters)
                if (!seen.Add(p)) throw new ArgumentException($"Parameter {name} appears in more than one group; each parameter belongs to one group.");
        foreach (var g in Groups) _groups.Add(CreateState(g));
    }

    private static GroupState CreateState(ParamGroup g)
    {
        var flat = FlatGroup.For(g.Parameters.Select(p => p.Tensor).ToArray());
        Tensor? flatState = null;
        var slots = new List<Slot>(g.Parameters.Count);
        if (flat is not null)
        {
            // The state laid out as the parameters, zeroed by one memset (padding included).
            flatState = flat.Values.Backend.Empty(flat.Values.Shape, flat.Values.DType);
            flatState.Backend.Fill(flatState, 0);
        }
        for (var i = 0; i < g.Parameters.Count; i++)
        {
            var (name, p) = g.Parameters[i];
            Tensor r;
            if (flatState is not null) r = flat!.ViewOf(flatState, i);
            else
            {
                r = p.Backend.Empty(p.Shape, p.DType);
                p.Backend.Fill(r, 0);
            }
            r.Name = $"{g.Name}.{name}.mean_square";
            slots.Add(new Slot(name, p, r));
        }
        return new GroupState(g, slots, flat, flatState);
    }

    public double Rho { get; }
    public double Eps { get; }
    public IReadOnlyList<ParamGroup> Groups { get; }

    /// <summary>Starts a new step's gradients: the next backward pass overwrites instead of adding.</summary>
    public void ZeroGrad()
    {
        foreach (var g in _groups)
            foreach (var s in g.Slots) s.Param.GradIsFresh = false;
    }

    public void Step() => StepGroups(null);

    /// <summary>
    /// Updates only the parameters of <paramref name="groups"/>; the other groups' parameters and state are
    /// untouched (the discriminator's Ld step leaves the segmenter's group of the same optimiser alone).
    /// </summary>
    public void Step(params ParamGroup[] groups)
    {
        foreach (var g in groups)
            if (!Groups.Contains(g)) throw new ArgumentException($"Group '{g.Name}' does not belong to this optimiser.", nameof(groups));
        StepGroups(groups);
    }

    private void StepGroups(ParamGroup[]? only)
    {
        foreach (var state in _groups)
        {
            var g = state.Group;
            if (only is not null && Array.IndexOf(only, g) < 0) continue;
            if (state.Flat is { } flat && flat.GradientsInPlace())
            {
                var b = flat.Values.Backend;
                flat.ClearUnreachedGradients();
                b.RmsPropStep(flat.Values, flat.Grads, state.FlatState!, g.LearningRate, Rho, Eps, g.GradScale);
                continue;
            }
            foreach (var (_, p, r) in state.Slots)
            {
                var b = p.Backend;
                if (!p.GradIsFresh)
                {
                    p.Grad ??= b.Empty(p.Shape, p.DType);
                    b.Fill(p.Grad, 0);
                }
                b.RmsPropStep(p, p.Grad!, r, g.LearningRate, Rho, Eps, g.GradScale);
            }
        }
    }

    private IEnumerable<Slot> AllSlots => _groups.SelectMany(g => g.Slots);

    /// <summary>The state tensors (live, on the parameters' backend), named "group.parameter.mean_square".</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedState() => AllSlots.Select(s => (s.MeanSquare.Name!, s.MeanSquare));

    /// <summary>Overwrites one state tensor by name (from a checkpoint).</summary>
    public void LoadState<T>(string name, ReadOnlySpan<T> values) where T : unmanaged
    {
        foreach (var s in AllSlots)
            if (s.MeanSquare.Name == name)
            {
                s.MeanSquare.Backend.Upload(values, s.MeanSquare);
                return;
            }
        throw new KeyNotFoundException($"The optimiser has no state named '{name}'; it has: {string.Join(", ", AllSlots.Select(s => s.MeanSquare.Name))}.");
    }

    public void Dispose()
    {
        foreach (var g in _groups)
        {
            foreach (var s in g.Slots) s.MeanSquare.Dispose();
            g.FlatState?.Dispose();
            g.Flat?.Dispose();
        }
        _groups.Clear();
    }
}
