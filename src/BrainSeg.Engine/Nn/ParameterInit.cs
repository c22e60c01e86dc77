using BrainSeg.Engine.Autograd;

namespace BrainSeg.Engine.Nn;

/// <summary>
/// Where new parameters come from: the backend and dtype they live in and the seeded stream their
/// random values are drawn from, in construction order, so a network built twice with the same seed
/// is identical.
/// </summary>
public sealed class ParameterInit(IBackend backend, DType dtype, RandomStream random)
{
    public IBackend Backend { get; } = backend;
    public DType DType { get; } = dtype;
    public RandomStream Random { get; } = random;

    /// <summary>
    /// Glorot (Xavier) uniform: U(−a, a) with a = √(6 / (fanIn + fanOut)), Lasagne's default. For a
    /// convolution fanIn = C·R·S and fanOut = K·R·S.
    /// </summary>
    public Tensor GlorotUniform(Shape shape, int fanIn, int fanOut)
    {
        var limit = Math.Sqrt(6.0 / (fanIn + fanOut));
        var values = new double[shape.Numel];
        Random.FillUniform(values, -limit, limit);
        return Upload(values, shape);
    }

    public Tensor Constant(Shape shape, double value)
    {
        var t = Backend.Empty(shape, DType);
        Backend.Fill(t, value);
        return t;
    }

    private Tensor Upload(double[] values, Shape shape)
    {
        var t = Backend.Empty(shape, DType);
        t.UploadDoubles(values);
        return t;
    }
}
