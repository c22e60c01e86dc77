namespace BrainSeg.Engine;

/// <summary>A backend's own rule for which tensors it can work on (its residency check).</summary>
internal interface ITensorOwner
{
    /// <summary>Throws when a non-null tensor does not live on this backend, saying how to move it.</summary>
    void RequireResident(string op, params Tensor?[] tensors);
}

/// <summary>
/// The argument checks of the <see cref="IBackend"/> contract that do not depend on the device: dtypes,
/// ranks, shapes and op parameters, with one wording for every backend. Each check first asks the owner
/// whether the tensors live on it, so a backend adds only its own residency rule.
/// </summary>
internal static class OpChecks
{
    /// <summary>Sizes of one softmax/cross-entropy: classes along dim 1, voxels the rest.</summary>
    internal readonly record struct ClassLayout(int Batch, int Channels, long Plane);

    // ---- memory ----

    public static void Upload<T>(ITensorOwner owner, int values, Tensor dst) where T : unmanaged
    {
        owner.RequireResident("Upload", dst);
        dst.CheckElementType<T>();
        if (values != dst.Numel)
            throw new ArgumentException($"Upload: {values} values do not fill {dst.Describe()} ({dst.Numel} elements).");
    }

    public static void Download<T>(ITensorOwner owner, Tensor src, int room) where T : unmanaged
    {
        owner.RequireResident("Download", src);
        src.CheckElementType<T>();
        if (room != src.Numel)
            throw new ArgumentException($"Download: {src.Describe()} has {src.Numel} elements but the destination holds {room}.");
    }

    public static void Copy(ITensorOwner owner, Tensor src, Tensor dst)
    {
        owner.RequireResident("Copy", src, dst);
        if (src.DType != dst.DType) throw new ArgumentException($"Copy: dtypes differ ({src.Describe()} → {dst.Describe()}).");
        SameShape("Copy", src, dst);
    }

    public static void CopyReshaped(ITensorOwner owner, Tensor src, Tensor dst)
    {
        owner.RequireResident("CopyReshaped", src, dst);
        if (src.DType != dst.DType) throw new ArgumentException($"CopyReshaped: dtypes differ ({src.Describe()} → {dst.Describe()}).");
        if (src.Numel != dst.Numel) throw new ArgumentException($"CopyReshaped: {src.Describe()} and {dst.Describe()} hold different numbers of elements.");
    }

    /// <summary>Returns the element offsets and count of a CopyBatch.</summary>
    public static (long From, long To, long Count) CopyBatch(ITensorOwner owner, Tensor src, int srcFirst, Tensor dst, int dstFirst, int count)
    {
        owner.RequireResident("CopyBatch", src, dst);
        if (src.DType != dst.DType) throw new ArgumentException($"CopyBatch: dtypes differ ({src.Describe()} → {dst.Describe()}).");
        if (src.Shape.Rank == 0 || src.Shape.Rank != dst.Shape.Rank || !src.Shape.Skip(1).SequenceEqual(dst.Shape.Skip(1)))
            throw new ArgumentException($"CopyBatch: {src.Describe()} and {dst.Describe()} differ beyond the batch axis.");
        if (src.IsChannelsLast != dst.IsChannelsLast)
            throw new ArgumentException($"CopyBatch: {src.Describe()} and {dst.Describe()} lie in different memory orders.");
        if (count < 0 || srcFirst < 0 || dstFirst < 0 || srcFirst + (long)count > src.Shape[0] || dstFirst + (long)count > dst.Shape[0])
            throw new ArgumentException($"CopyBatch: images [{srcFirst}, +{count}) of {src.Describe()} to [{dstFirst}, +{count}) of {dst.Describe()} are out of range.");
        long image = src.Shape[0] == 0 ? 0 : src.Numel / src.Shape[0];
        return (srcFirst * image, dstFirst * image, count * image);
    }

    // ---- elementwise ----

    /// <summary>Tensors of one floating-point dtype and one shape (Add, Multiply, ReLU, RMSProp...); returns the dtype.</summary>
    public static DType Elementwise(ITensorOwner owner, string op, params Tensor[] tensors)
    {
        var dt = FloatType(owner, op, tensors);
        SameShape(op, tensors);
        return dt;
    }

    // ---- GEMM and convolution ----

    /// <summary>Returns the dtype and the sizes of c[m, n] = op(a)[m, k] · op(b)[k, n].</summary>
    public static (DType DType, int M, int N, int K) Gemm(ITensorOwner owner, bool transposeA, bool transposeB, Tensor a, Tensor b, Tensor c)
    {
        var dt = FloatType(owner, "Gemm", a, b, c);
        ExpectRank("Gemm", a, "a", 2);
        ExpectRank("Gemm", b, "b", 2);
        ExpectRank("Gemm", c, "c", 2);
        int m = transposeA ? a.Shape[1] : a.Shape[0], k = transposeA ? a.Shape[0] : a.Shape[1];
        int kb = transposeB ? b.Shape[1] : b.Shape[0], n = transposeB ? b.Shape[0] : b.Shape[1];
        if (k != kb || c.Shape[0] != m || c.Shape[1] != n)
            throw new ArgumentException($"Gemm: op(a) is [{m}, {k}] and op(b) is [{kb}, {n}], which do not multiply into c {c.Shape}.");
        return (dt, m, n, k);
    }

    public static DType Conv2dForward(ITensorOwner owner, Tensor x, Tensor w, Tensor y, Conv2dSpec spec, Tensor? bias = null)
    {
        var dt = FloatType(owner, "Conv2dForward", x, w, y, bias);
        ConvGeometry("Conv2dForward", x, w, y, spec);
        if (bias is not null) PerChannel(owner, "Conv2dForward", y, bias, "bias");
        return dt;
    }

    public static DType Conv2dBackwardData(ITensorOwner owner, Tensor dy, Tensor w, Tensor dx, Conv2dSpec spec)
    {
        var dt = FloatType(owner, "Conv2dBackwardData", dy, w, dx);
        ConvGeometry("Conv2dBackwardData", dx, w, dy, spec);
        return dt;
    }

    public static DType Conv2dBackwardFilter(ITensorOwner owner, Tensor x, Tensor dy, Tensor dw, Conv2dSpec spec)
    {
        var dt = FloatType(owner, "Conv2dBackwardFilter", x, dy, dw);
        ConvGeometry("Conv2dBackwardFilter", x, dw, dy, spec);
        return dt;
    }

    /// <summary>Input x, filter w and output y of one stride-1 convolution agree with each other and the spec.</summary>
    private static void ConvGeometry(string op, Tensor x, Tensor w, Tensor y, Conv2dSpec spec)
    {
        ExpectRank(op, x, "input", 4);
        ExpectRank(op, w, "filter", 4);
        ExpectRank(op, y, "output", 4);
        if (spec.Dilation < 1 || spec.Padding < 0)
            throw new ArgumentException($"{op}: dilation must be ≥ 1 and padding ≥ 0, got {spec}.");
        if (w.Shape.C != x.Shape.C)
            throw new ArgumentException($"{op}: input {x.Shape} has {x.Shape.C} channels but filter {w.Shape} expects {w.Shape.C}.");
        int ho = spec.OutputSize(x.Shape.H, w.Shape.H), wo = spec.OutputSize(x.Shape.W, w.Shape.W);
        if (ho <= 0 || wo <= 0)
            throw new ArgumentException($"{op}: input {x.Shape} is smaller than the dilated filter {w.Shape} ({spec}).");
        ExpectShape(op, y, new Shape(x.Shape.N, w.Shape.N, ho, wo), "output");
    }

    // ---- bias ----

    /// <summary>Returns the dtype, the channel count and the values per (sample, channel).</summary>
    public static (DType DType, int Channels, long Plane) AddChannelBias(ITensorOwner owner, Tensor y, Tensor bias) =>
        PerChannel(owner, "AddChannelBias", y, bias, "bias");

    public static (DType DType, int Channels, long Plane) ChannelSum(ITensorOwner owner, Tensor dy, Tensor db) =>
        PerChannel(owner, "ChannelSum", dy, db, "db");

    private static (DType DType, int Channels, long Plane) PerChannel(ITensorOwner owner, string op, Tensor t, Tensor perChannel, string role)
    {
        var dt = FloatType(owner, op, t, perChannel);
        ExpectRank(op, t, "data", 2, 4);
        ExpectRank(op, perChannel, role, 1);
        var channels = t.Shape[1];
        if (perChannel.Shape[0] != channels)
            throw new ArgumentException($"{op}: {role} {perChannel.Shape} does not match the {channels} channels of {t.Shape}.");
        return (dt, channels, t.Shape.Rank == 4 ? (long)t.Shape.H * t.Shape.W : 1);
    }

    // ---- batch normalisation ----

    public static DType BatchNormForwardTraining(ITensorOwner owner, Tensor x, Tensor? gamma, Tensor beta, Tensor y,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd)
    {
        const string op = "BatchNormForwardTraining";
        var dt = FloatType(owner, op, x, gamma, beta, y, runningMean, runningVar, saveMean, saveInvStd);
        ExpectRank(op, x, "x", 4);
        SameShape(op, x, y);
        CheckPerChannel(op, x, (gamma, "gamma"), (beta, "beta"), (runningMean, "runningMean"), (runningVar, "runningVar"),
            (saveMean, "saveMean"), (saveInvStd, "saveInvStd"));
        var s = x.Shape;
        if ((long)s.N * s.H * s.W < 2)
            throw new ArgumentException($"{op}: {x.Describe()} has one value per channel; training-mode batch norm needs at least two (use a larger batch or inference mode).");
        return dt;
    }

    public static DType BatchNormForwardInference(ITensorOwner owner, Tensor x, Tensor? gamma, Tensor beta, Tensor y,
        Tensor runningMean, Tensor runningVar)
    {
        const string op = "BatchNormForwardInference";
        var dt = FloatType(owner, op, x, gamma, beta, y, runningMean, runningVar);
        ExpectRank(op, x, "x", 4);
        SameShape(op, x, y);
        CheckPerChannel(op, x, (gamma, "gamma"), (beta, "beta"), (runningMean, "runningMean"), (runningVar, "runningVar"));
        return dt;
    }

    public static DType BatchNormBackward(ITensorOwner owner, Tensor x, Tensor dy, Tensor? gamma, Tensor beta, Tensor saveMean, Tensor saveInvStd,
        Tensor dx, Tensor? dgamma, Tensor dbeta)
    {
        const string op = "BatchNormBackward";
        var dt = FloatType(owner, op, x, dy, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta);
        ExpectRank(op, x, "x", 4);
        SameShape(op, x, dy, dx);
        CheckPerChannel(op, x, (gamma, "gamma"), (beta, "beta"), (saveMean, "saveMean"), (saveInvStd, "saveInvStd"), (dgamma, "dgamma"),
            (dbeta, "dbeta"));
        return dt;
    }

    private static void CheckPerChannel(string op, Tensor x, params (Tensor? T, string Role)[] perChannel)
    {
        var shape = new Shape(x.Shape.C);
        foreach (var (t, role) in perChannel)
            if (t is not null) ExpectShape(op, t, shape, role);
    }

    // ---- max pooling ----

    /// <summary>Returns the dtype and the output shape (that of y and argmax).</summary>
    public static (DType DType, Shape Output) MaxPoolForward(ITensorOwner owner, Tensor x, Tensor y, Tensor argmax, int window, int stride)
    {
        const string op = "MaxPoolForward";
        var dt = FloatType(owner, op, x, y);
        RequireInt32(owner, op, argmax);
        ExpectRank(op, x, "x", 4);
        if (window < 1 || stride < 1) throw new ArgumentException($"{op}: window ({window}) and stride ({stride}) must be positive.");
        var s = x.Shape;
        if (s.H < window || s.W < window) throw new ArgumentException($"{op}: input {s} is smaller than the {window}×{window} window.");
        var ys = new Shape(s.N, s.C, (s.H - window) / stride + 1, (s.W - window) / stride + 1);
        ExpectShape(op, y, ys, "y");
        ExpectShape(op, argmax, ys, "argmax");
        return (dt, ys);
    }

    /// <summary>Shapes only: whether argmax indices lie inside the input plane is the backend's to check (it needs the values).</summary>
    public static DType MaxPoolBackward(ITensorOwner owner, Tensor dy, Tensor argmax, Tensor dx)
    {
        const string op = "MaxPoolBackward";
        var dt = FloatType(owner, op, dy, dx);
        RequireInt32(owner, op, argmax);
        ExpectRank(op, dy, "dy", 4);
        ExpectRank(op, dx, "dx", 4);
        SameShape(op, dy, argmax);
        if (dx.Shape.N != dy.Shape.N || dx.Shape.C != dy.Shape.C)
            throw new ArgumentException($"{op}: dx {dx.Shape} and dy {dy.Shape} differ in batch or channels.");
        return dt;
    }

    // ---- concatenation, crop and pad ----

    public static DType ConcatChannels(ITensorOwner owner, Tensor a, Tensor b, Tensor y)
    {
        const string op = "ConcatChannels";
        var dt = FloatType(owner, op, a, b, y);
        ExpectRank(op, a, "a", 4);
        ExpectRank(op, b, "b", 4);
        if (a.Shape.N != b.Shape.N || a.Shape.H != b.Shape.H || a.Shape.W != b.Shape.W)
            throw new ArgumentException($"{op}: a {a.Shape} and b {b.Shape} differ in batch or spatial size.");
        ExpectShape(op, y, new Shape(a.Shape.N, a.Shape.C + b.Shape.C, a.Shape.H, a.Shape.W), "y");
        return dt;
    }

    /// <summary>Returns the dtype and the channels of da (the first part); with neither part given there is nothing more to check.</summary>
    public static (DType DType, int ChannelsA) SplitChannels(ITensorOwner owner, Tensor dy, Tensor? da, Tensor? db)
    {
        const string op = "SplitChannels";
        var dt = FloatType(owner, op, dy, da, db);
        ExpectRank(op, dy, "dy", 4);
        var s = dy.Shape;
        if (da is null && db is null) return (dt, 0);
        var ca = da?.Shape.Rank == 4 ? da.Shape.C : s.C - (db?.Shape.Rank == 4 ? db.Shape.C : 0);
        if (da is not null) ExpectShape(op, da, new Shape(s.N, ca, s.H, s.W), "da");
        if (db is not null) ExpectShape(op, db, new Shape(s.N, s.C - ca, s.H, s.W), "db");
        return (dt, ca);
    }

    /// <summary>CenterCrop (crop: x is the big one) or CenterPad (y is); returns the dtype and the two shapes.</summary>
    public static (DType DType, Shape Big, Shape Small) CropOrPad(ITensorOwner owner, string op, Tensor x, Tensor y, bool crop)
    {
        var dt = FloatType(owner, op, x, y);
        ExpectRank(op, x, "x", 4);
        ExpectRank(op, y, "y", 4);
        var (big, small) = crop ? (x.Shape, y.Shape) : (y.Shape, x.Shape);
        if (big.N != small.N || big.C != small.C || small.H > big.H || small.W > big.W)
            throw new ArgumentException($"{op}: {small} must match {big} in batch and channels and be no larger spatially (x {x.Shape}, y {y.Shape}).");
        return (dt, big, small);
    }

    // ---- softmax and cross-entropy ----

    public static (DType DType, ClassLayout Layout) SoftmaxForward(ITensorOwner owner, Tensor logits, Tensor probs)
    {
        var dt = Elementwise(owner, "SoftmaxForward", logits, probs);
        return (dt, Classes("SoftmaxForward", logits));
    }

    public static (DType DType, ClassLayout Layout) SoftmaxCrossEntropyForward(ITensorOwner owner, Tensor logits, Tensor target, Tensor probs, Tensor loss)
    {
        const string op = "SoftmaxCrossEntropyForward";
        var dt = FloatType(owner, op, logits, target, probs, loss);
        SameShape(op, logits, target, probs);
        ExpectShape(op, loss, new Shape(1), "loss");
        return (dt, Classes(op, logits));
    }

    public static (DType DType, ClassLayout Layout) SoftmaxCrossEntropyBackward(ITensorOwner owner, Tensor probs, Tensor target, Tensor dloss, Tensor dlogits)
    {
        const string op = "SoftmaxCrossEntropyBackward";
        var dt = FloatType(owner, op, probs, target, dloss, dlogits);
        SameShape(op, probs, target, dlogits);
        ExpectShape(op, dloss, new Shape(1), "dloss");
        return (dt, Classes(op, probs));
    }

    private static ClassLayout Classes(string op, Tensor t)
    {
        ExpectRank(op, t, "logits", 2, 4);
        return new(t.Shape[0], t.Shape[1], t.Shape.Rank == 4 ? (long)t.Shape.H * t.Shape.W : 1);
    }

    // ---- labels ----

    public static DType ArgmaxChannels(ITensorOwner owner, Tensor x, Tensor labels)
    {
        const string op = "ArgmaxChannels";
        var dt = FloatType(owner, op, x);
        RequireInt32(owner, op, labels);
        ExpectRank(op, x, "x", 4);
        ExpectShape(op, labels, new Shape(x.Shape.N, x.Shape.H, x.Shape.W), "labels");
        return dt;
    }

    /// <summary>Shapes only: whether every label is a class index is the backend's to check (it needs the values).</summary>
    public static DType OneHot(ITensorOwner owner, Tensor labels, Tensor y)
    {
        const string op = "OneHot";
        var dt = FloatType(owner, op, y);
        RequireInt32(owner, op, labels);
        ExpectRank(op, y, "y", 4);
        var s = y.Shape;
        ExpectShape(op, labels, new Shape(s.N, s.H, s.W), "labels");
        return dt;
    }

    // ---- the building blocks ----

    /// <summary>Checks that every given tensor lives on the owner with one floating-point dtype and returns it.</summary>
    public static DType FloatType(ITensorOwner owner, string op, params Tensor?[] tensors)
    {
        owner.RequireResident(op, tensors);
        DType? dt = null;
        foreach (var t in tensors)
        {
            if (t is null) continue;
            if (!t.DType.IsFloatingPoint())
                throw new ArgumentException($"{op}: {t.Describe()} must be Float32 or Float64.");
            dt ??= t.DType;
            if (t.DType != dt)
                throw new ArgumentException($"{op}: mixed dtypes ({string.Join(", ", tensors.Where(x => x is not null).Select(x => x!.Describe()))}); convert them to one dtype.");
        }
        return dt ?? throw new ArgumentException($"{op}: no tensor given.");
    }

    private static void RequireInt32(ITensorOwner owner, string op, Tensor t)
    {
        owner.RequireResident(op, t);
        if (t.DType != DType.Int32) throw new ArgumentException($"{op}: {t.Describe()} must be Int32.");
    }

    private static void SameShape(string op, params Tensor[] tensors)
    {
        foreach (var t in tensors)
            if (t.Shape != tensors[0].Shape)
                throw new ArgumentException($"{op}: shapes differ: {string.Join(", ", tensors.Select(x => x.Describe()))}.");
    }

    private static void ExpectShape(string op, Tensor t, Shape expected, string role)
    {
        if (t.Shape != expected)
            throw new ArgumentException($"{op}: {role} {t.Describe()} should have shape {expected}.");
    }

    private static void ExpectRank(string op, Tensor t, string role, params int[] ranks)
    {
        if (!ranks.Contains(t.Shape.Rank))
            throw new ArgumentException($"{op}: {role} {t.Describe()} should have rank {string.Join(" or ", ranks)}.");
    }
}
