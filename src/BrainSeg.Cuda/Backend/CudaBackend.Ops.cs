using BrainSeg.Engine;

namespace BrainSeg.Cuda;

// Bias, batch norm, activations, dropout, pooling, shape ops, classification and the optimiser step,
// each a launch (or two) of the kernels in kernels/*.cu; forward and backward side by side. Every op works in
// its tensors' memory order (NCHW or channels-last, see Nhwc); elementwise ops need only that the orders agree.
public sealed unsafe partial class CudaBackend
{
    // ---- bias ----

    public void AddChannelBias(Tensor y, Tensor bias)
    {
        Enter(nameof(AddChannelBias));
        var (dt, channels, plane) = OpChecks.AddChannelBias(this, y, bias);
        Model(2 * y.ByteLength, y.Numel);
        BiasAndRelu("AddChannelBias", dt, y, bias, channels, plane, relu: false);
    }

    /// <summary>y += bias per channel (when given), then ReLU (when asked), in place: one launch.</summary>
    private void BiasAndRelu(string op, DType dt, Tensor y, Tensor? bias, int channels, long plane, bool relu)
    {
        var (planes, inner) = Planes(op, y.Shape[0], channels, plane);
        ulong py = Ptr(y), pb = Ptr(bias);
        int fused = relu ? 1 : 0, nhwc = Nhwc(op, y);
        void** args = stackalloc void*[] { &py, &pb, &channels, &inner, &planes, &fused, &nhwc };
        if (nhwc == 1) LaunchChannelsLast("channels", "add_channel_bias", dt, planes, inner, args);
        else LaunchPlanes("channels", "add_channel_bias", dt, planes, inner, args);
    }

    public void ChannelSum(Tensor dy, Tensor db)
    {
        Enter(nameof(ChannelSum));
        var (dt, channels, plane) = OpChecks.ChannelSum(this, dy, db);
        Model(dy.ByteLength + db.ByteLength, dy.Numel);
        int batch = dy.Shape[0], nhwc = Nhwc("ChannelSum", dy);
        var (_, inner) = Planes("ChannelSum", batch, channels, plane);
        // Channels-last: the parts are runs of pixels over every channel, so "batch" counts pixels.
        if (nhwc == 1) batch *= inner;
        var (planesPerPart, parts) = nhwc == 1 ? SplitPixels("ChannelSum", batch, channels) : SplitBatch(batch, channels);
        long c = channels;
        ulong pdy = Ptr(dy), pdb = Ptr(db), partials = _scratch.Ensure(c * parts * sizeof(double)), tickets = _tickets;
        void** args = stackalloc void*[] { &pdy, &partials, &pdb, &channels, &inner, &batch, &planesPerPart, &parts, &nhwc, &tickets };
        LaunchBlocks("channels", "channel_sum", dt, nhwc == 1 ? parts : c * parts, args);
    }

    // ---- batch normalisation (own kernels: statistics in double, deterministic, any eps, γ optional) ----

    public void BatchNormForwardTraining(Tensor x, Tensor? gamma, Tensor beta, Tensor y,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, double momentum, double eps, bool relu = false)
    {
        Enter(nameof(BatchNormForwardTraining));
        var dt = OpChecks.BatchNormForwardTraining(this, x, gamma, beta, y, runningMean, runningVar, saveMean, saveInvStd);
        // Two passes: the moments read x, the affine map reads x and writes y (deferred: written when read, or fused into its reader).
        Model(x.ByteLength, x.Numel * 2);
        var s = x.Shape;
        int batch = s.N, channels = s.C, fused = relu ? 1 : 0, nhwc = Nhwc("BatchNormForwardTraining", x, y);
        var (planes, inner) = Planes("BatchNormForwardTraining", batch, channels, (long)s.H * s.W);
        long c = channels, count = (long)batch * inner;
        ulong px = Ptr(x), pg = Ptr(gamma), pbeta = Ptr(beta), py = Ptr(y), prm = Ptr(runningMean), prv = Ptr(runningVar),
            psm = Ptr(saveMean), psi = Ptr(saveInvStd);
        if (nhwc == 1)
        {
            // Channels-last: the parts are runs of pixels over every channel, and each channel's first value sits at c. The
            // statistics launch's last block combines them into the affine coefficients, then the affine map.
            var (pixelsPerPart, pixelParts) = SplitPixels("BatchNormForwardTraining", count, channels);
            int pixels = (int)count;
            long pixelPartialBytes = 2 * c * pixelParts * sizeof(double), coefficientBytes = 2 * c * dt.SizeInBytes();
            // The coefficients outlive the op when y is deferred (CudaBackend.Fusion.cs): then they get a block of their own.
            bool defer = MayDefer(x, y, relu);
            var own = defer ? _ctx.Pool.Rent(coefficientBytes) : default;
            ulong pp = _scratch.Ensure(pixelPartialBytes + coefficientBytes), tickets = _tickets,
                scaleShift = defer ? own.Pointer : pp + (ulong)pixelPartialBytes;
            void** stats = stackalloc void*[] { &px, &pp, &channels, &pixels, &pixelsPerPart, &pixelParts, &pg, &pbeta, &prm, &prv, &psm, &psi,
                &scaleShift, &count, &momentum, &eps, &tickets };
            LaunchBlocks("channels", "batchnorm_statistics_nhwc", dt, pixelParts, stats);
            if (defer) Defer(x, y, saveMean, own, dt, channels, inner, planes);
            else
            {
                Model(2 * x.ByteLength, x.Numel * (relu ? 4 : 3));
                ApplyAffine(dt, px, scaleShift, py, channels, inner, planes, fused, nhwc);
            }
            return;
        }
        Model(2 * x.ByteLength, x.Numel * (relu ? 4 : 3));
        var (planesPerPart, parts) = SplitBatch(batch, channels);
        // Scratch: the statistics' partials (double). Two launches: the partial moments, then the normalisation,
        // whose blocks each combine their channel's partials in the same order (and one of them writes the statistics).
        ulong partials = _scratch.Ensure(2 * c * parts * sizeof(double));
        void** moments = stackalloc void*[] { &px, &partials, &channels, &inner, &batch, &planesPerPart, &parts };
        LaunchBlocks("channels", "batchnorm_partial_moments", dt, c * parts, moments);
        void** normalise = stackalloc void*[] { &px, &partials, &parts, &pg, &pbeta, &prm, &prv, &psm, &psi, &py, &channels, &inner, &planes,
            &count, &momentum, &eps, &fused };
        LaunchPlanes("channels", "batchnorm_normalise", dt, planes, inner, normalise);
    }

    /// <summary>y = x·scale[c] + shift[c] (then ReLU when fused): inference's normalisation, and training's in channels-last order.</summary>
    private void ApplyAffine(DType dt, ulong px, ulong scaleShift, ulong py, int channels, int inner, int planes, int fused, int nhwc)
    {
        void** apply = stackalloc void*[] { &px, &scaleShift, &py, &channels, &inner, &planes, &fused, &nhwc };
        if (nhwc == 1) LaunchChannelsLast("channels", "channel_affine", dt, planes, inner, apply);
        else LaunchPlanes("channels", "channel_affine", dt, planes, inner, apply);
    }

    public void BatchNormForwardInference(Tensor x, Tensor? gamma, Tensor beta, Tensor y, Tensor runningMean, Tensor runningVar, double eps,
        bool relu = false)
    {
        Enter(nameof(BatchNormForwardInference));
        var dt = OpChecks.BatchNormForwardInference(this, x, gamma, beta, y, runningMean, runningVar);
        Model(2 * x.ByteLength, x.Numel * (relu ? 3 : 2));
        int channels = x.Shape.C, fused = relu ? 1 : 0, nhwc = Nhwc("BatchNormForwardInference", x, y);
        var (planes, inner) = Planes("BatchNormForwardInference", x.Shape.N, channels, (long)x.Shape.H * x.Shape.W);
        long c = channels;
        ulong px = Ptr(x), pg = Ptr(gamma), pbeta = Ptr(beta), py = Ptr(y), prm = Ptr(runningMean), prv = Ptr(runningVar);
        ulong scaleShift = _scratch.Ensure(2L * channels * dt.SizeInBytes());
        void** coefficients = stackalloc void*[] { &pg, &pbeta, &prm, &prv, &scaleShift, &eps, &c };
        Launch1D("channels", "batchnorm_inference_coefficients", dt, c, coefficients);
        ApplyAffine(dt, px, scaleShift, py, channels, inner, planes, fused, nhwc);
    }

    public void BatchNormBackward(Tensor x, Tensor dy, Tensor? gamma, Tensor beta, Tensor saveMean, Tensor saveInvStd, Tensor dx, Tensor? dgamma,
        Tensor dbeta, bool relu = false)
    {
        Enter(nameof(BatchNormBackward));
        var dt = OpChecks.BatchNormBackward(this, x, dy, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta);
        int batch = x.Shape.N, channels = x.Shape.C, fused = relu ? 1 : 0, nhwc = Nhwc("BatchNormBackward", x, dy, dx);
        var (planes, inner) = Planes("BatchNormBackward", batch, channels, (long)x.Shape.H * x.Shape.W);
        long c = channels, count = (long)batch * inner;
        // The sums the data-gradient pass already made (CudaBackend.Fusion.cs), taken before Ptr(dy) forgets them.
        var given = relu && nhwc == 1 ? TakeSums(dy, x, saveMean) : null;
        ulong px = Ptr(x), pdy = Ptr(dy), pg = Ptr(gamma), pbeta = Ptr(beta), psm = Ptr(saveMean), psi = Ptr(saveInvStd),
            pdx = Ptr(dx), pdg = gamma is null ? 0 : Ptr(dgamma), pdb = Ptr(dbeta);
        if (given is { } madeSums)
        {
            // One pass: x and dy read, dx written.
            Model(3 * x.ByteLength, x.Numel * 12);
            ulong ps = madeSums.Pointer;
            long n = (long)planes * inner;
            void** args = stackalloc void*[] { &px, &pdy, &pg, &pbeta, &psm, &psi, &ps, &pdg, &pdb, &pdx, &channels, &count, &n };
            LaunchChannelsLast("channels", "batchnorm_backward_given_sums", dt, planes, inner, args);
            _ctx.Pool.Return(madeSums);
            return;
        }
        // Two passes each reading x and dy (the fused ReLU's mask is recomputed from x, not read); the second writes dx.
        Model(5 * x.ByteLength, x.Numel * (relu ? 14 : 12));
        if (nhwc == 1)
        {
            // Channels-last: partials over runs of pixels, combined by the launch's last block into the per-channel sums (and
            // dgamma, dbeta), which the data pass reads as a single part.
            var (pixelsPerPart, pixelParts) = SplitPixels("BatchNormBackward", count, channels);
            int pixels = (int)count, one = 1;
            ulong pp = _scratch.Ensure(2 * c * (pixelParts + 1) * sizeof(double)), sums = pp + (ulong)(2 * c * pixelParts * sizeof(double)),
                tickets = _tickets;
            void** pixelSums = stackalloc void*[] { &px, &pdy, &pg, &pbeta, &psm, &psi, &pp, &channels, &pixels, &pixelsPerPart, &pixelParts,
                &fused, &pdg, &pdb, &sums, &tickets };
            LaunchBlocks("channels", "batchnorm_backward_sums_nhwc", dt, pixelParts, pixelSums);
            void** pixelData = stackalloc void*[] { &px, &pdy, &pg, &pbeta, &psm, &psi, &sums, &one, &pdg, &pdb, &pdx, &channels, &inner, &planes,
                &count, &fused, &nhwc };
            LaunchChannelsLast("channels", "batchnorm_backward_data", dt, planes, inner, pixelData);
            return;
        }
        var (planesPerPart, parts) = SplitBatch(batch, channels);
        // Scratch: the partials Σdy, Σdy·x̂, combined in order by each block of the data pass.
        ulong partials = _scratch.Ensure(2 * c * parts * sizeof(double));
        void** partial = stackalloc void*[] { &px, &pdy, &pg, &pbeta, &psm, &psi, &partials, &channels, &inner, &batch, &planesPerPart, &parts,
            &fused };
        LaunchBlocks("channels", "batchnorm_backward_partials", dt, c * parts, partial);
        void** data = stackalloc void*[] { &px, &pdy, &pg, &pbeta, &psm, &psi, &partials, &parts, &pdg, &pdb, &pdx, &channels, &inner, &planes,
            &count, &fused, &nhwc };
        LaunchPlanes("channels", "batchnorm_backward_data", dt, planes, inner, data);
    }

    // ---- ReLU ----

    public void ReluForward(Tensor x, Tensor y)
    {
        Enter(nameof(ReluForward));
        var dt = OpChecks.Elementwise(this, "ReluForward", x, y);
        Nhwc("ReluForward", x, y);
        Model(2 * x.ByteLength, x.Numel);
        ulong px = Ptr(x), py = Ptr(y);
        long n = x.Numel;
        void** args = stackalloc void*[] { &px, &py, &n };
        Launch1D("elementwise", "relu_forward", dt, n, args);
    }

    public void ReluBackward(Tensor y, Tensor dy, Tensor dx)
    {
        Enter(nameof(ReluBackward));
        var dt = OpChecks.Elementwise(this, "ReluBackward", y, dy, dx);
        Nhwc("ReluBackward", y, dy, dx);
        Model(3 * y.ByteLength, y.Numel);
        ulong py = Ptr(y), pdy = Ptr(dy), pdx = Ptr(dx);
        long n = y.Numel;
        void** args = stackalloc void*[] { &py, &pdy, &pdx, &n };
        Launch1D("elementwise", "relu_backward", dt, n, args);
    }

    // ---- dropout ----

    public void DropoutMask(Tensor mask, double p, ulong seed, ulong offset)
    {
        Enter(nameof(DropoutMask));
        var dt = OpChecks.FloatType(this, "DropoutMask", mask);
        Model(mask.ByteLength, mask.Numel * 10);   // a Philox round is about ten integer operations per word
        // Decided and scaled on the host exactly as the CPU backend does, so the masks are bit-identical.
        uint threshold = Philox.DropThreshold(p);
        double keep = 1 / (1 - p);
        ulong pm = Ptr(mask), pbase = _offsetWord;
        long n = mask.Numel;
        var (nhwc, channels, inner) = DropoutOrder("DropoutMask", mask);
        void** args = stackalloc void*[] { &pm, &seed, &pbase, &offset, &threshold, &keep, &channels, &inner, &n, &nhwc };
        Launch1D("elementwise", "dropout_mask", dt, n, args);
    }

    public void DropoutMultiply(Tensor x, Tensor y, double p, ulong seed, ulong offset)
    {
        Enter(nameof(DropoutMultiply));
        var dt = OpChecks.Elementwise(this, "DropoutMultiply", x, y);
        Model(2 * x.ByteLength, x.Numel * 11);   // the mask's Philox words, then one multiply; no mask in memory
        uint threshold = Philox.DropThreshold(p);
        double keep = 1 / (1 - p);
        // A deferred batch-norm output is read through its norm instead of being written first (CudaBackend.Fusion.cs).
        var deferred = Deferred(x);
        ulong px = deferred?.InputPointer ?? Ptr(x), py = Ptr(y), pbase = _offsetWord, scaleShift = deferred?.Scale ?? 0;
        long n = x.Numel;
        var (nhwc, channels, inner) = DropoutOrder("DropoutMultiply", x, y);
        void** args = stackalloc void*[] { &px, &py, &seed, &pbase, &offset, &threshold, &keep, &channels, &inner, &n, &nhwc, &scaleShift };
        Launch1D("elementwise", "dropout_multiply", dt, n, args);
    }

    /// <summary>Channels-last tensors draw each element's dropout word at its NCHW index, so both backends drop the same elements.</summary>
    private static (int Nhwc, int Channels, long Inner) DropoutOrder(string op, Tensor t, Tensor? other = null)
    {
        int nhwc = Nhwc(op, t, other);
        return nhwc == 1 ? (1, t.Shape.C, (long)t.Shape.H * t.Shape.W) : (0, 1, 1);
    }

    // ---- max pooling ----

    public void MaxPoolForward(Tensor x, Tensor y, Tensor argmax, int window, int stride)
    {
        Enter(nameof(MaxPoolForward));
        var (dt, ys) = OpChecks.MaxPoolForward(this, x, y, argmax, window, stride);
        Model(x.ByteLength + y.ByteLength + argmax.ByteLength, (double)y.Numel * window * window);
        var s = x.Shape;
        _poolGeometry.AddOrUpdate(argmax, new PoolGeometry(window, stride));
        int channels = s.C, h = s.H, w = s.W, ho = ys.H, wo = ys.W, nhwc = Nhwc("MaxPoolForward", x, y, argmax);
        ulong px = Ptr(x), py = Ptr(y), pa = Ptr(argmax);
        long n = y.Numel;
        void** args = stackalloc void*[] { &px, &py, &pa, &channels, &h, &w, &ho, &wo, &window, &stride, &n, &nhwc };
        Launch1D("pooling", "maxpool_forward", dt, n, args);
    }

    /// <summary>
    /// When <paramref name="argmax"/> was written by <see cref="MaxPoolForward"/> on this backend, each dx
    /// element gathers from the windows that contain it; otherwise each plane is scattered by one thread.
    /// Both add in the CPU's order, so results are bit-identical to it. Unlike the CPU, indices outside the
    /// input plane are skipped rather than reported (checking them would need a wait on the device).
    /// </summary>
    public void MaxPoolBackward(Tensor dy, Tensor argmax, Tensor dx)
    {
        Enter(nameof(MaxPoolBackward));
        var dt = OpChecks.MaxPoolBackward(this, dy, argmax, dx);
        Model(dy.ByteLength + argmax.ByteLength + dx.ByteLength, dx.Numel);
        int channels = dx.Shape.C, h = dx.Shape.H, w = dx.Shape.W, ho = dy.Shape.H, wo = dy.Shape.W;
        int nhwc = Nhwc("MaxPoolBackward", dy, argmax, dx);
        ulong pdy = Ptr(dy), pa = Ptr(argmax), pdx = Ptr(dx);
        if (_poolGeometry.TryGetValue(argmax, out var g) && h >= g.Window && w >= g.Window
            && (h - g.Window) / g.Stride + 1 == ho && (w - g.Window) / g.Stride + 1 == wo)
        {
            int window = g.Window, stride = g.Stride;
            long n = dx.Numel;
            void** args = stackalloc void*[] { &pdy, &pa, &pdx, &channels, &h, &w, &ho, &wo, &window, &stride, &n, &nhwc };
            Launch1D("pooling", "maxpool_backward", dt, n, args);
        }
        else
        {
            if (dx.Numel == 0) return;
            _ctx.Memset32(pdx, 0, dx.ByteLength / 4);
            long planeIn = (long)h * w, planeOut = (long)ho * wo, planes = (long)dx.Shape.N * dx.Shape.C;
            void** args = stackalloc void*[] { &pdy, &pa, &pdx, &channels, &planeIn, &planeOut, &planes, &nhwc };
            Launch1D("pooling", "maxpool_backward_scatter", dt, planes, args);
        }
    }

    // ---- concatenation along channels and its adjoint ----

    public void ConcatChannels(Tensor a, Tensor b, Tensor y)
    {
        Enter(nameof(ConcatChannels));
        var dt = OpChecks.ConcatChannels(this, a, b, y);
        Model(2 * y.ByteLength);
        int ca = a.Shape.C, cb = b.Shape.C;
        long inner = (long)a.Shape.H * a.Shape.W, n = y.Numel;
        int nhwc = Nhwc("ConcatChannels", a, b, y);
        ulong pa = Ptr(a), pb = Ptr(b), py = Ptr(y);
        void** args = stackalloc void*[] { &pa, &pb, &py, &ca, &cb, &inner, &n, &nhwc };
        Launch1D("channels", "concat_channels", dt, n, args);
    }

    public void SplitChannels(Tensor dy, Tensor? da, Tensor? db)
    {
        Enter(nameof(SplitChannels));
        var (dt, ca) = OpChecks.SplitChannels(this, dy, da, db);
        Model(2 * ((da?.ByteLength ?? 0) + (db?.ByteLength ?? 0)));
        if (da is not null) SliceChannels(dt, dy, da, 0);
        if (db is not null) SliceChannels(dt, dy, db, ca);
    }

    private void SliceChannels(DType dt, Tensor whole, Tensor part, int first)
    {
        int cy = whole.Shape.C, cPart = part.Shape.C;
        long inner = (long)whole.Shape.H * whole.Shape.W, n = part.Numel;
        int nhwc = Nhwc("SplitChannels", whole, part);
        ulong pw = Ptr(whole), pp = Ptr(part);
        void** args = stackalloc void*[] { &pw, &pp, &cy, &first, &cPart, &inner, &n, &nhwc };
        Launch1D("channels", "slice_channels", dt, n, args);
    }

    // ---- centre crop and its adjoint ----

    public void CenterCrop(Tensor x, Tensor y) => CropOrPad(nameof(CenterCrop), x, y, crop: true);

    public void CenterPad(Tensor x, Tensor y) => CropOrPad(nameof(CenterPad), x, y, crop: false);

    private void CropOrPad(string op, Tensor x, Tensor y, bool crop)
    {
        Enter(op);
        var (dt, big, small) = OpChecks.CropOrPad(this, op, x, y, crop);
        Model(Math.Min(x.ByteLength, y.ByteLength) + y.ByteLength);
        // y[i, j] = x[i + oh, j + ow]: a positive offset crops, a negative one pads with zeros.
        int oh = (big.H - small.H) / 2, ow = (big.W - small.W) / 2;
        if (!crop) { oh = -oh; ow = -ow; }
        int channels = x.Shape.C, hx = x.Shape.H, wx = x.Shape.W, hy = y.Shape.H, wy = y.Shape.W, nhwc = Nhwc(op, x, y);
        ulong px = Ptr(x), py = Ptr(y);
        long n = y.Numel;
        void** args = stackalloc void*[] { &px, &py, &channels, &hx, &wx, &hy, &wy, &oh, &ow, &n, &nhwc };
        Launch1D("channels", "shift_window", dt, n, args);
    }

    // ---- softmax and cross-entropy over channels ----

    public void SoftmaxForward(Tensor logits, Tensor probs)
    {
        Enter(nameof(SoftmaxForward));
        var (dt, (batch, channels, inner)) = OpChecks.SoftmaxForward(this, logits, probs);
        Model(2 * logits.ByteLength, 4.0 * logits.Numel);
        if (channels == 0) return;
        ulong pl = Ptr(logits), pp = Ptr(probs);
        long voxels = batch * inner;
        int nhwc = Nhwc("SoftmaxForward", logits, probs);
        void** args = stackalloc void*[] { &pl, &pp, &channels, &inner, &voxels, &nhwc };
        Launch1D("softmax", "softmax_forward", dt, voxels, args);
    }

    public void SoftmaxCrossEntropyForward(Tensor logits, Tensor target, Tensor probs, Tensor loss)
    {
        Enter(nameof(SoftmaxCrossEntropyForward));
        const string op = "SoftmaxCrossEntropyForward";
        var (dt, (batch, channels, inner)) = OpChecks.SoftmaxCrossEntropyForward(this, logits, target, probs, loss);
        long voxels = batch * inner;
        // Logits and target read, probabilities written, then the per-voxel losses (double) written and summed.
        Model(logits.ByteLength + target.ByteLength + probs.ByteLength + 2 * voxels * sizeof(double), 5.0 * logits.Numel);
        if (voxels == 0 || channels == 0)
            throw new ArgumentException($"{op}: {logits.Describe()} has no voxels or no classes; the mean loss is undefined.");
        ulong pl = Ptr(logits), pt = Ptr(target), pp = Ptr(probs), ploss = Ptr(loss);
        // Per-voxel losses in double, then the launch's last block sums them in a fixed order: deterministic. Its
        // block_sum needs blocks of exactly ReduceThreads.
        ulong voxelLoss = _scratch.Ensure(voxels * sizeof(double)), tickets = _tickets;
        int nhwc = Nhwc(op, logits, target, probs);
        void** args = stackalloc void*[] { &pl, &pt, &pp, &voxelLoss, &ploss, &channels, &inner, &voxels, &nhwc, &tickets };
        Kernel("softmax", "softmax_xent_forward", dt).Launch1D(voxels, _ctx.Stream, args, ReduceThreads);
    }

    public void SoftmaxCrossEntropyBackward(Tensor probs, Tensor target, Tensor dloss, Tensor dlogits)
    {
        Enter(nameof(SoftmaxCrossEntropyBackward));
        var (dt, (batch, channels, inner)) = OpChecks.SoftmaxCrossEntropyBackward(this, probs, target, dloss, dlogits);
        Model(probs.ByteLength + target.ByteLength + dlogits.ByteLength, 2.0 * probs.Numel);
        ulong pp = Ptr(probs), pt = Ptr(target), pd = Ptr(dloss), pg = Ptr(dlogits);
        long voxels = batch * inner;
        int nhwc = Nhwc("SoftmaxCrossEntropyBackward", probs, target, dlogits);
        void** args = stackalloc void*[] { &pp, &pt, &pd, &pg, &channels, &inner, &voxels, &nhwc };
        Launch1D("softmax", "softmax_xent_backward", dt, voxels, args);
    }

    // ---- labels ----

    public void ArgmaxChannels(Tensor x, Tensor labels)
    {
        Enter(nameof(ArgmaxChannels));
        var dt = OpChecks.ArgmaxChannels(this, x, labels);
        Model(x.ByteLength + labels.ByteLength, x.Numel);
        if (x.Shape.C == 0) throw new ArgumentException($"ArgmaxChannels: {x.Describe()} has no channels to choose from.");
        int channels = x.Shape.C;
        long inner = (long)x.Shape.H * x.Shape.W, voxels = labels.Numel;
        int nhwc = Nhwc("ArgmaxChannels", x);
        ulong px = Ptr(x), pl = Ptr(labels);
        void** args = stackalloc void*[] { &px, &pl, &channels, &inner, &voxels, &nhwc };
        Launch1D("softmax", "argmax_channels", dt, voxels, args);
    }

    /// <summary>
    /// As the CPU's, except that a label outside [0, C) leaves its voxel all zero instead of throwing
    /// (checking would need a wait on the device); validate label maps on the host when loading them.
    /// </summary>
    public void OneHot(Tensor labels, Tensor y)
    {
        Enter(nameof(OneHot));
        var dt = OpChecks.OneHot(this, labels, y);
        Model(labels.ByteLength + y.ByteLength);
        var s = y.Shape;
        int channels = s.C;
        long inner = (long)s.H * s.W, n = y.Numel;
        int nhwc = Nhwc("OneHot", y);
        ulong pl = Ptr(labels), py = Ptr(y);
        void** args = stackalloc void*[] { &pl, &py, &channels, &inner, &n, &nhwc };
        Launch1D("softmax", "one_hot", dt, n, args);
    }

    // ---- optimiser ----

    public void RmsPropStep(Tensor param, Tensor grad, Tensor meanSquare, double lr, double rho, double eps, double gradScale)
    {
        Enter(nameof(RmsPropStep));
        var dt = OpChecks.Elementwise(this, "RmsPropStep", param, grad, meanSquare);
        Nhwc("RmsPropStep", param, grad, meanSquare);
        // θ, g and r read, θ and r written.
        Model(5 * param.ByteLength, 8.0 * param.Numel);
        ulong pp = Ptr(param), pg = Ptr(grad), pm = Ptr(meanSquare);
        long n = param.Numel;
        void** args = stackalloc void*[] { &pp, &pg, &pm, &lr, &rho, &eps, &gradScale, &n };
        Launch1D("elementwise", "rmsprop_step", dt, n, args);
    }
}
