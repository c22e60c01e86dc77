namespace BrainSeg.Engine;

/// <summary>
/// A backend whose tensors can be views of part of another tensor's memory. The optimiser uses it to keep a
/// group's parameters, gradients and state in one flat block each, so one launch updates the whole group.
/// Backends without it (the CPU) keep one block per tensor; results are the same either way.
/// </summary>
public interface IViewBackend
{
    /// <summary>A tensor of <paramref name="shape"/> over <paramref name="whole"/>'s memory from element <paramref name="offset"/> on; it keeps that memory alive.</summary>
    Tensor View(Tensor whole, long offset, Shape shape);
}
