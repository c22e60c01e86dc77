namespace BrainSeg.Engine;

/// <summary>
/// A dense, contiguous array on one backend, row-major (NCHW) or, on a GPU backend that asks for it, channels-last
/// (<see cref="Layout"/>). Host arrays are always NCHW: uploads and downloads convert. Moving data between host and
/// device is always explicit (<see cref="FromHost{T}"/>, <see cref="ToHost{T}"/>, <see cref="To"/>). Device memory
/// is released by <see cref="Dispose"/>, never by the finaliser.
/// </summary>
public sealed class Tensor : IDisposable
{
    private Storage? _storage;

    internal Tensor(IBackend backend, Storage storage, Shape shape, DType dtype, TensorLayout layout = TensorLayout.Nchw)
    {
        if (storage.ByteLength < shape.Numel * dtype.SizeInBytes())
            throw new ArgumentException($"Storage of {storage.ByteLength} bytes is too small for {dtype} {shape}.");
        Backend = backend;
        _storage = storage;
        Shape = shape;
        DType = dtype;
        Layout = shape.Rank == 4 ? layout : TensorLayout.Nchw;
    }

    public IBackend Backend { get; }
    public Shape Shape { get; }
    public DType DType { get; }

    /// <summary>The memory order of a 4-D tensor (always NCHW for other ranks).</summary>
    public TensorLayout Layout { get; }

    /// <summary>True when the elements really lie channels-last: the layout is NHWC and the shape is not trivial (<see cref="Layouts.IsTrivial"/>).</summary>
    public bool IsChannelsLast => Layout == TensorLayout.Nhwc && !Layouts.IsTrivial(Shape);
    public long Numel => Shape.Numel;
    public long ByteLength => Numel * DType.SizeInBytes();
    public bool IsDisposed => _storage is null;

    /// <summary>A name for error messages, parameter tables and checkpoints.</summary>
    public string? Name { get; set; }

    public Storage Storage => _storage ?? throw new ObjectDisposedException(Describe());

    // ---- autograd state (used by BrainSeg.Engine.Autograd) ----

    /// <summary>True for parameters and for inputs whose gradient is wanted.</summary>
    public bool RequiresGrad { get; set; }

    /// <summary>The gradient buffer, same shape and backend; allocated on first use and kept across steps.</summary>
    public Tensor? Grad { get; set; }

    /// <summary>
    /// False until a backward pass writes <see cref="Grad"/> in the current step. Zeroing gradients only
    /// clears this flag, so the first write overwrites and later writes accumulate, with no memset.
    /// </summary>
    public bool GradIsFresh { get; set; }

    // ---- construction and transfer ----

    public static Tensor FromHost<T>(IBackend backend, ReadOnlySpan<T> data, params int[] shape) where T : unmanaged
    {
        var s = new Shape(shape);
        if (data.Length != s.Numel)
            throw new ArgumentException($"{data.Length} values do not fill shape {s} ({s.Numel} elements).");
        var t = backend.Empty(s, DTypeExtensions.Of<T>());
        backend.Upload(data, t);
        return t;
    }

    public static Tensor FromHost<T>(IBackend backend, T[] data, params int[] shape) where T : unmanaged =>
        FromHost(backend, (ReadOnlySpan<T>)data, shape);

    /// <summary>Copies the tensor to a new host array (synchronises with the device).</summary>
    public T[] ToHost<T>() where T : unmanaged
    {
        CheckElementType<T>();
        var result = new T[Numel];
        Backend.Download(this, result.AsSpan());
        return result;
    }

    /// <summary>The values widened to double, for either floating-point dtype (synchronises with the device).</summary>
    public double[] ToHostDoubles() => DType switch
    {
        DType.Float64 => ToHost<double>(),
        DType.Float32 => Array.ConvertAll(ToHost<float>(), v => (double)v),
        _ => throw new ArgumentException($"{Describe()} is not floating-point: it has no double values."),
    };

    /// <summary>Overwrites the tensor with <paramref name="values"/>, rounded to its floating-point dtype.</summary>
    public void UploadDoubles(double[] values)
    {
        if (DType == DType.Float64) Backend.Upload<double>(values, this);
        else Backend.Upload<float>(Array.ConvertAll(values, v => (float)v), this);
    }

    /// <summary>An explicit copy to another backend (host to device, device to host, or the same).</summary>
    public Tensor To(IBackend target)
    {
        var copy = target.Empty(Shape, DType);
        switch (DType)
        {
            case DType.Float32: target.Upload<float>(ToHost<float>(), copy); break;
            case DType.Float64: target.Upload<double>(ToHost<double>(), copy); break;
            case DType.Int32: target.Upload<int>(ToHost<int>(), copy); break;
        }
        return copy;
    }

    /// <summary>
    /// A view with another shape of the same element count, sharing this tensor's storage, in NCHW order. A tensor
    /// whose elements lie channels-last cannot be viewed so (its memory is not in that order).
    /// </summary>
    public Tensor Reshape(params int[] shape)
    {
        var s = new Shape(shape);
        if (s.Numel != Numel) throw new ArgumentException($"Cannot reshape {Shape} ({Numel} elements) to {s}.");
        if (IsChannelsLast)
            throw new InvalidOperationException($"Cannot reshape the channels-last {Describe()}: a view reads memory in NCHW order.");
        Storage.Retain();
        return new Tensor(Backend, Storage, s, DType) { Name = Name };
    }

    /// <summary>
    /// Makes this tensor share <paramref name="view"/>'s storage (same shape, dtype and backend), releasing its own
    /// memory: the optimiser moves a group's parameters into one flat block this way. The values are not copied.
    /// </summary>
    internal void ShareStorageOf(Tensor view)
    {
        if (view.Shape != Shape || view.DType != DType || view.Backend != Backend)
            throw new ArgumentException($"{Describe()} cannot take the storage of {view.Describe()}: shape, dtype and backend must match.");
        view.Storage.Retain();
        Interlocked.Exchange(ref _storage, view.Storage)?.Release();
    }

    public void CheckElementType<T>() where T : unmanaged
    {
        if (DTypeExtensions.Of<T>() != DType)
            throw new InvalidOperationException($"{Describe()} holds {DType}, not {typeof(T).Name}.");
    }

    public string Describe() => $"{Name ?? "tensor"} {DType} {Shape}{(IsChannelsLast ? " channels-last" : "")} on {Backend.Name}";
    public override string ToString() => Describe();

    public void Dispose()
    {
        var s = Interlocked.Exchange(ref _storage, null);
        s?.Release();
        Grad?.Dispose();
        Grad = null;
    }
}
