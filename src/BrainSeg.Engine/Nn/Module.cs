using BrainSeg.Engine.Autograd;

namespace BrainSeg.Engine.Nn;

/// <summary>
/// A part of a network that owns tensors: trainable parameters, non-trainable buffers (running
/// statistics) and child modules, each registered under a name. Names are dotted paths
/// ("conv3.weight") listed in registration order, which is stable and is the checkpoint order.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Tensor Tensor)> _parameters = [];
    private readonly List<(string Name, Tensor Tensor)> _buffers = [];
    private readonly List<(string Name, Module Module)> _children = [];

    /// <summary>True in training mode (batch statistics, dropout on); false after <see cref="Eval"/>.</summary>
    public bool IsTraining { get; private set; } = true;

    /// <summary>A short description of what the module computes, for layer tables.</summary>
    public virtual string Kind => GetType().Name;

    /// <summary>Switches this module and all its children to training (true) or inference (false) mode.</summary>
    public void Train(bool training = true)
    {
        IsTraining = training;
        foreach (var (_, child) in _children) child.Train(training);
    }

    public void Eval() => Train(false);

    protected Tensor AddParameter(string name, Tensor tensor)
    {
        tensor.RequiresGrad = true;
        tensor.Name = name;
        _parameters.Add((name, tensor));
        return tensor;
    }

    protected Tensor AddBuffer(string name, Tensor tensor)
    {
        tensor.Name = name;
        _buffers.Add((name, tensor));
        return tensor;
    }

    protected T AddModule<T>(string name, T module) where T : Module
    {
        if (_children.Any(c => c.Name == name)) throw new ArgumentException($"A child module named '{name}' already exists.", nameof(name));
        _children.Add((name, module));
        return module;
    }

    public IReadOnlyList<(string Name, Module Module)> Children => _children;

    /// <summary>Trainable tensors by dotted name, own ones first, then each child's in registration order.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters() => Collect(m => m._parameters);

    /// <summary>Non-trainable state (running mean and variance) by dotted name.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedBuffers() => Collect(m => m._buffers);

    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Tensor);

    /// <summary>Number of trainable values.</summary>
    public long ParameterCount => Parameters().Sum(p => p.Numel);

    private IEnumerable<(string, Tensor)> Collect(Func<Module, List<(string Name, Tensor Tensor)>> pick)
    {
        foreach (var (name, t) in pick(this)) yield return (name, t);
        foreach (var (childName, child) in _children)
            foreach (var (name, t) in child.Collect(pick))
                yield return ($"{childName}.{name}", t);
    }

    public virtual void Dispose()
    {
        foreach (var (_, t) in _parameters) t.Dispose();
        foreach (var (_, t) in _buffers) t.Dispose();
        foreach (var (_, m) in _children) m.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A module with one input and one output, which can be chained in a <see cref="Sequential"/>.</summary>
public abstract class Layer : Module
{
    public abstract Tensor Forward(Tape tape, Tensor x);

    /// <summary>The output shape for an input of <paramref name="input"/>, computed without running the layer.</summary>
    public abstract Shape OutputShape(Shape input);
}
