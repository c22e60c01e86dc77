// Per-channel kernels over [N,C,S] tensors (S = H·W, or 1 for [N,C]) in NCHW or channels-last order (the int
// nhwc): bias, bias gradient, batch norm, and the channel/space shape ops. Per-channel reductions run in two
// stages: blocks each reduce a fixed share of the batch into double partials (NCHW: one channel's planes per
// block; channels-last: every channel of a run of pixels per block), then one thread per channel adds its
// partials in order: in the pass that reads them (NCHW batch norm) or in the reduction launch's last block (channel_sum,
// channels-last batch norm; last_block in common.cuh). No float atomics and a fixed order: the same input always
// gives the same bits.
#include "common.cuh"

// y[n,c,s] += bias[c] when bias is given, then with relu y = max(y, 0) as relu_forward computes it; in place,
// one plane per (n, c). The convolution's epilogue (bias and ReLU after cuDNN's forward) and the plain bias.
// Channels-last (nhwc): one 1-D loop over the planes·inner values, channel = index mod C.
template <typename T>
__device__ void add_channel_bias(T* y, const T* bias, int channels, int inner, int planes, int relu, int nhwc)
{
    if (nhwc)
    {
        for_each_channels_last((long long)planes * inner, channels, [&](long long i, int c) {
            T v = bias ? y[i] + bias[c] : y[i];
            y[i] = !relu || v > (T)0 || v != v ? v : (T)0;
        });
        return;
    }
    PLANE_STRIDE(plane, planes)
    {
        T b = bias ? bias[plane % channels] : (T)0;
        T* row = y + (long long)plane * inner;
        INNER_STRIDE(s, inner)
        {
            T v = bias ? row[s] + b : row[s];
            row[s] = !relu || v > (T)0 || v != v ? v : (T)0;
        }
    }
}
EXPORT_FLOAT_KERNELS(add_channel_bias, (T* y, const T* bias, int channels, int inner, int planes, int relu, int nhwc),
                     (y, bias, channels, inner, planes, relu, nhwc))

// ---- per-channel reductions, stage 1: one block of REDUCE_THREADS per (channel, part) ----
// Block b = c·parts + part reduces planes [part·planesPerPart, min(N, (part + 1)·planesPerPart)) of channel c
// and writes its partials at b; the host picks parts so that the grid fills the device.

struct ChannelPart
{
    int c, first, last;
};

__device__ __forceinline__ ChannelPart block_part(int batch, int planesPerPart, int parts)
{
    int c = blockIdx.x / parts, part = blockIdx.x - c * parts;
    int first = part * planesPerPart, last = first + planesPerPart;
    return {c, first, last < batch ? last : batch};
}

// Calls visit(at) for the values of channel c in planes [first, last) that fall to this thread: the t-th,
// (t + REDUCE_THREADS)-th, … in plane order. (plane, offset) advance by additions, so no value pays for a
// division, and small planes (inner = 1 for [N,C]) still keep every thread busy.
template <typename Visit>
__device__ void for_each_in_part(ChannelPart p, int channels, int inner, Visit visit)
{
    if (inner == 0) return; // empty planes (and no division by zero below)
    long long count = (long long)(p.last - p.first) * inner;
    int stepPlanes = REDUCE_THREADS / inner, stepOffset = REDUCE_THREADS % inner;
    int b = p.first + (int)threadIdx.x / inner, s = (int)threadIdx.x % inner;
#pragma unroll 4 // several loads in flight per thread: the reductions are bound by memory latency
    for (long long j = threadIdx.x; j < count; j += REDUCE_THREADS)
    {
        visit(((long long)b * channels + p.c) * inner + s);
        b += stepPlanes;
        s += stepOffset;
        if (s >= inner)
        {
            s -= inner;
            b++;
        }
    }
}

// db[c] = Σ dy over channel c in one launch: partials[b] = Σ dy over block b's share of its channel, in double
// (channels-last: batch and planesPerPart count pixels (N·S) instead of planes), then the block that finishes last
// (last_block) adds each channel's partials in order.
template <typename T>
__device__ void channel_sum(const T* dy, double* partials, T* db, int channels, int inner, int batch, int planesPerPart, int parts,
                            int nhwc, unsigned int* tickets)
{
    __shared__ double shared[REDUCE_THREADS];
    if (nhwc)
        channels_last_partials<1>(channels, batch, planesPerPart, parts, partials,
                                  [&](long long at, int, double* acc) { acc[0] += (double)dy[at]; });
    else
    {
        double sum = 0;
        for_each_in_part(block_part(batch, planesPerPart, parts), channels, inner, [&](long long at) { sum += (double)dy[at]; });
        sum = block_sum(sum, shared);
        if (threadIdx.x == 0) partials[blockIdx.x] = sum;
    }
    if (!last_block(tickets)) return;
    const volatile double* all = partials;
    for (int c = threadIdx.x; c < channels; c += blockDim.x)
    {
        double total = 0;
        for (int p = 0; p < parts; p++) total += all[(long long)c * parts + p];
        db[c] = (T)total;
    }
}
EXPORT_FLOAT_KERNELS(channel_sum,
                     (const T* dy, double* partials, T* db, int channels, int inner, int batch, int planesPerPart, int parts, int nhwc,
                      unsigned int* tickets),
                     (dy, partials, db, channels, inner, batch, planesPerPart, parts, nhwc, tickets))

// ---- batch normalisation over (N, H, W) per channel ----

// The value every block of channel c subtracts before summing: the channel's first value, x[0, c, 0] (at c·S in
// NCHW; the host passes inner = 1 for channels-last, where it is at c). Shifted sums Σ(x − K), Σ(x − K)² with K a
// value of the data itself do not cancel when |μ| ≫ σ, so one pass over x gives the variance as accurately as the
// two-pass reference.
template <typename T>
__device__ __forceinline__ double channel_shift(const T* x, long long c, int inner)
{
    return (double)x[c * inner];
}

// Statistics, stage 1 (NCHW): partials[2b], partials[2b + 1] = Σ(x − K), Σ(x − K)² over the block's share, in double.
template <typename T>
__device__ void batchnorm_partial_moments(const T* x, double* partials, int channels, int inner, int batch, int planesPerPart, int parts)
{
    __shared__ double shared[REDUCE_THREADS];
    ChannelPart p = block_part(batch, planesPerPart, parts);
    double shift = channel_shift(x, p.c, inner);
    double sum = 0, squares = 0;
    for_each_in_part(p, channels, inner, [&](long long at) {
        double d = (double)x[at] - shift;
        sum += d;
        squares += d * d;
    });
    sum = block_sum(sum, shared);
    squares = block_sum(squares, shared);
    if (threadIdx.x == 0)
    {
        partials[2 * blockIdx.x] = sum;
        partials[2 * blockIdx.x + 1] = squares;
    }
}
EXPORT_FLOAT_KERNELS(batchnorm_partial_moments,
                     (const T* x, double* partials, int channels, int inner, int batch, int planesPerPart, int parts),
                     (x, partials, channels, inner, batch, planesPerPart, parts))

// Stage 2 of a per-channel pair of sums: channel c's partials (two per part, at 2·(c·parts + part)) added in part
// order, wherever it runs, so every reader of them gets the same bits.
struct PairSum { double a, b; };
template <typename Partials>
__device__ __forceinline__ PairSum channel_pair_sum(Partials partials, int parts, long long c)
{
    PairSum total{0, 0};
    for (int p = 0; p < parts; p++)
    {
        total.a += partials[2 * (c * parts + p)];
        total.b += partials[2 * (c * parts + p) + 1];
    }
    return total;
}

// The training normalisation y = x·scale + shift with scale = γ·invStd, shift = β − μ·scale, from the statistics as
// saved in T rather than their double originals: the backward has only the saved ones, and recomputes the fused ReLU's
// mask from them bit for bit.
template <typename T>
struct Coefficients { T scale, shift; };
template <typename T>
__device__ __forceinline__ Coefficients<T> saved_affine(const T* gamma, const T* beta, T mean, T invStd, long long c)
{
    double scale = (gamma ? (double)gamma[c] : 1.0) * (double)invStd;
    return {(T)scale, (T)((double)beta[c] - (double)mean * scale)};
}

// Statistics, stage 2, folded into the normalisation: every block of channel c adds the channel's partials in
// the same order (so all agree bit for bit) into the batch statistics; the block that owns the channel's first
// plane also writes them out and updates the running averages. saveMean = μ, saveInvStd = 1/√(σ² + eps) with the
// biased σ²; the running variance takes the unbiased σ²·M/(M − 1) (the host checks M ≥ 2). Returns the affine
// coefficients (saved_affine).
template <typename T, typename Partials>
__device__ Coefficients<T> batchnorm_statistics(const T* x, Partials partials, int parts, const T* gamma, const T* beta,
                                                T* runningMean, T* runningVar, T* saveMean, T* saveInvStd, int c, int inner,
                                                long long count, double momentum, double eps, bool owner)
{
    PairSum moments = channel_pair_sum(partials, parts, c);
    double offset = moments.a / (double)count; // μ − K
    double mean = channel_shift(x, c, inner) + offset;
    double variance = moments.b / (double)count - offset * offset;
    if (variance < 0) variance = 0; // rounding, when every value is equal
    T savedMean = (T)mean, savedInvStd = (T)(1.0 / sqrt(variance + eps));
    if (owner)
    {
        saveMean[c] = savedMean;
        saveInvStd[c] = savedInvStd;
        runningMean[c] = (T)((1.0 - momentum) * (double)runningMean[c] + momentum * mean);
        runningVar[c] = (T)((1.0 - momentum) * (double)runningVar[c] + momentum * variance * (double)count / (double)(count - 1));
    }
    return saved_affine(gamma, beta, savedMean, savedInvStd, c);
}

// Training normalisation: the statistics of each plane's channel from the partials (stage 2 above), then y.
template <typename T>
__device__ void batchnorm_normalise(const T* x, const double* partials, int parts, const T* gamma, const T* beta,
                                    T* runningMean, T* runningVar, T* saveMean, T* saveInvStd, T* y, int channels, int inner,
                                    int planes, long long count, double momentum, double eps, int relu)
{
    PLANE_STRIDE(plane, planes)
    {
        int c = plane % channels;
        bool owner = plane < channels && blockIdx.x == 0 && threadIdx.x == 0;
        Coefficients<T> k = batchnorm_statistics(x, partials, parts, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, c,
                                                 inner, count, momentum, eps, owner);
        long long base = (long long)plane * inner;
        INNER_STRIDE(s, inner) y[base + s] = affine(x[base + s], k.scale, k.shift, relu);
    }
}
EXPORT_FLOAT_KERNELS(batchnorm_normalise,
                     (const T* x, const double* partials, int parts, const T* gamma, const T* beta, T* runningMean,
                      T* runningVar, T* saveMean, T* saveInvStd, T* y, int channels, int inner, int planes, long long count,
                      double momentum, double eps, int relu),
                     (x, partials, parts, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, y, channels, inner,
                      planes, count, momentum, eps, relu))

// Channels-last statistics in one launch (a block of the normalising pass spans every channel, so it cannot fold the
// combine in as batchnorm_normalise does): stage 1 over runs of pixels (channels_last_partials), then the block that
// finishes last (last_block) adds each channel's partials in order, writes the statistics and running averages, and
// the coefficients scaleShift[c], scaleShift[channels + c] that channel_affine applies. Each channel's shift value K is its
// first element, at c (inner = 1).
template <typename T>
__device__ void batchnorm_statistics_nhwc(const T* x, double* partials, int channels, int pixels, int pixelsPerPart, int parts,
                                          const T* gamma, const T* beta, T* runningMean, T* runningVar, T* saveMean,
                                          T* saveInvStd, T* scaleShift, long long count, double momentum, double eps,
                                          unsigned int* tickets)
{
    channels_last_partials<2>(channels, pixels, pixelsPerPart, parts, partials, [&](long long at, int c, double* acc) {
        double d = (double)x[at] - (double)x[c];
        acc[0] += d;
        acc[1] += d * d;
    });
    if (!last_block(tickets)) return;
    for (int c = threadIdx.x; c < channels; c += blockDim.x)
    {
        Coefficients<T> k = batchnorm_statistics(x, (const volatile double*)partials, parts, gamma, beta, runningMean, runningVar,
                                                 saveMean, saveInvStd, c, 1, count, momentum, eps, true);
        scaleShift[c] = k.scale;
        scaleShift[channels + c] = k.shift;
    }
}
EXPORT_FLOAT_KERNELS(batchnorm_statistics_nhwc,
                     (const T* x, double* partials, int channels, int pixels, int pixelsPerPart, int parts, const T* gamma,
                      const T* beta, T* runningMean, T* runningVar, T* saveMean, T* saveInvStd, T* scaleShift,
                      long long count, double momentum, double eps, unsigned int* tickets),
                     (x, partials, channels, pixels, pixelsPerPart, parts, gamma, beta, runningMean, runningVar, saveMean,
                      saveInvStd, scaleShift, count, momentum, eps, tickets))

// Inference coefficients from the running statistics: scale = γ/√(runningVar + eps), shift = β − runningMean·scale.
// n = C.
template <typename T>
__device__ void batchnorm_inference_coefficients(const T* gamma, const T* beta, const T* runningMean,
                                                 const T* runningVar, T* scaleShift, double eps, long long n)
{
    GRID_STRIDE(c, n)
    {
        double scale = (gamma ? (double)gamma[c] : 1.0) / sqrt((double)runningVar[c] + eps);
        scaleShift[c] = (T)scale;
        scaleShift[n + c] = (T)((double)beta[c] - (double)runningMean[c] * scale);
    }
}
EXPORT_FLOAT_KERNELS(batchnorm_inference_coefficients,
                     (const T* gamma, const T* beta, const T* runningMean, const T* runningVar, T* scaleShift,
                      double eps, long long n),
                     (gamma, beta, runningMean, runningVar, scaleShift, eps, n))

// y = x·scale[c] + shift[c] (inference: coefficients from the running statistics), ReLU when asked. The coefficients are
// planar, scaleShift = [scale[0..C), shift[0..C)], the layout of the two per-channel tensors a fused cuDNN graph reads.
template <typename T>
__device__ void channel_affine(const T* x, const T* scaleShift, T* y, int channels, int inner, int planes, int relu, int nhwc)
{
    if (nhwc)
    {
        for_each_channels_last((long long)planes * inner, channels,
                               [&](long long i, int c) { y[i] = affine(x[i], scaleShift[c], scaleShift[channels + c], relu); });
        return;
    }
    PLANE_STRIDE(plane, planes)
    {
        int c = plane % channels;
        T scale = scaleShift[c], shift = scaleShift[channels + c];
        long long base = (long long)plane * inner;
        INNER_STRIDE(s, inner) y[base + s] = affine(x[base + s], scale, shift, relu);
    }
}
EXPORT_FLOAT_KERNELS(channel_affine,
                     (const T* x, const T* scaleShift, T* y, int channels, int inner, int planes, int relu, int nhwc),
                     (x, scaleShift, y, channels, inner, planes, relu, nhwc))

// dy behind a fused ReLU: only where the forward's output was positive (relu_backward's rule), that output recomputed
// from x with the forward's own coefficients (saved_affine) and rounding (affine); all of dy without relu.
template <typename T>
__device__ __forceinline__ double relu_masked(const T* dy, long long i, T x, Coefficients<T> k, int relu)
{
    return !relu || fma_t(x, k.scale, k.shift) > (T)0 ? (double)dy[i] : 0.0;
}

// Σdy and Σdy·x̂ of one element into acc[0], acc[1] (x̂ = (x − μ)·invStd, dy masked as the ReLU's).
template <typename T>
__device__ __forceinline__ void add_gradient_sums(const T* x, const T* dy, long long at, double mean, double invStd, Coefficients<T> k,
                                                  int relu, double* acc)
{
    double g = relu_masked(dy, at, x[at], k, relu);
    acc[0] += g;
    acc[1] += g * ((double)x[at] - mean) * invStd;
}

// dx of element i (channel c) from the channel's Σdy and Σdy·x̂: γ·invStd/M·(M·dy − Σdy − x̂·Σ(dy·x̂)), M = count, dy masked
// as the ReLU's; the channels-last data passes compute it per element (the NCHW one hoists the channel's values).
template <typename T>
__device__ __forceinline__ T batchnorm_dx(const T* x, const T* dy, const T* gamma, const T* beta, const T* saveMean,
                                          const T* saveInvStd, long long i, int c, double m, double sumDy, double sumDyXhat, int relu)
{
    double invStd = (double)saveInvStd[c], xhat = ((double)x[i] - (double)saveMean[c]) * invStd;
    double k = (gamma ? (double)gamma[c] : 1.0) * invStd / m;
    double g = relu_masked(dy, i, x[i], saved_affine(gamma, beta, saveMean[c], saveInvStd[c], c), relu);
    return (T)(k * (m * g - sumDy - xhat * sumDyXhat));
}

// Backward, stage 1 (NCHW): partials[2b], partials[2b + 1] = Σdy and Σdy·x̂ over the block's share.
template <typename T>
__device__ void batchnorm_backward_partials(const T* x, const T* dy, const T* gamma, const T* beta, const T* saveMean,
                                            const T* saveInvStd, double* partials, int channels, int inner, int batch,
                                            int planesPerPart, int parts, int relu)
{
    __shared__ double shared[REDUCE_THREADS];
    ChannelPart p = block_part(batch, planesPerPart, parts);
    double mean = (double)saveMean[p.c], invStd = (double)saveInvStd[p.c];
    Coefficients<T> k = saved_affine(gamma, beta, saveMean[p.c], saveInvStd[p.c], p.c);
    double acc[2] = {0, 0};
    for_each_in_part(p, channels, inner, [&](long long at) { add_gradient_sums(x, dy, at, mean, invStd, k, relu, acc); });
    double sumDy = block_sum(acc[0], shared), sumDyXhat = block_sum(acc[1], shared);
    if (threadIdx.x == 0)
    {
        partials[2 * blockIdx.x] = sumDy;
        partials[2 * blockIdx.x + 1] = sumDyXhat;
    }
}
EXPORT_FLOAT_KERNELS(batchnorm_backward_partials,
                     (const T* x, const T* dy, const T* gamma, const T* beta, const T* saveMean, const T* saveInvStd,
                      double* partials, int channels, int inner, int batch, int planesPerPart, int parts, int relu),
                     (x, dy, gamma, beta, saveMean, saveInvStd, partials, channels, inner, batch, planesPerPart, parts, relu))

// Channels-last backward sums in one launch: stage 1 over runs of pixels, then the block that finishes last adds each
// channel's partials in order into sums[2c], sums[2c + 1] = Σdy, Σdy·x̂ for the data pass (which reads them as a single
// part) and writes dbeta and dgamma (when not null).
template <typename T>
__device__ void batchnorm_backward_sums_nhwc(const T* x, const T* dy, const T* gamma, const T* beta, const T* saveMean,
                                             const T* saveInvStd, double* partials, int channels, int pixels, int pixelsPerPart,
                                             int parts, int relu, T* dgamma, T* dbeta, double* sums, unsigned int* tickets)
{
    channels_last_partials<2>(channels, pixels, pixelsPerPart, parts, partials, [&](long long at, int c, double* acc) {
        add_gradient_sums(x, dy, at, (double)saveMean[c], (double)saveInvStd[c],
                          saved_affine(gamma, beta, saveMean[c], saveInvStd[c], c), relu, acc);
    });
    if (!last_block(tickets)) return;
    for (int c = threadIdx.x; c < channels; c += blockDim.x)
    {
        PairSum total = channel_pair_sum((const volatile double*)partials, parts, c);
        dbeta[c] = (T)total.a;
        if (dgamma) dgamma[c] = (T)total.b;
        sums[2 * c] = total.a;
        sums[2 * c + 1] = total.b;
    }
}
EXPORT_FLOAT_KERNELS(batchnorm_backward_sums_nhwc,
                     (const T* x, const T* dy, const T* gamma, const T* beta, const T* saveMean, const T* saveInvStd,
                      double* partials, int channels, int pixels, int pixelsPerPart, int parts, int relu, T* dgamma, T* dbeta,
                      double* sums, unsigned int* tickets),
                     (x, dy, gamma, beta, saveMean, saveInvStd, partials, channels, pixels, pixelsPerPart, parts, relu, dgamma,
                      dbeta, sums, tickets))

// Backward, stage 2, folded into the data pass: every block of channel c adds the channel's partials in the same
// order into Σdy and Σdy·x̂; the block that owns the channel's first plane writes dbeta and dgamma (when not null).
// Then dx = γ·invStd/M·(M·dy − Σdy − x̂·Σ(dy·x̂)), M = N·H·W, dy masked as the ReLU's.
template <typename T>
__device__ void batchnorm_backward_data(const T* x, const T* dy, const T* gamma, const T* beta, const T* saveMean,
                                        const T* saveInvStd, const double* partials, int parts, T* dgamma, T* dbeta, T* dx,
                                        int channels, int inner, int planes, long long count, int relu, int nhwc)
{
    double m = (double)count;
    if (nhwc)
    {
        // Channels-last: batchnorm_backward_sums_nhwc has combined the partials (parts = 1) and written dgamma, dbeta.
        for_each_channels_last((long long)planes * inner, channels, [&](long long i, int c) {
            dx[i] = batchnorm_dx(x, dy, gamma, beta, saveMean, saveInvStd, i, c, m, partials[2 * c], partials[2 * c + 1], relu);
        });
        return;
    }
    PLANE_STRIDE(plane, planes)
    {
        int c = plane % channels;
        PairSum total = channel_pair_sum(partials, parts, c);
        double sumDy = total.a, sumDyXhat = total.b;
        if (plane < channels && blockIdx.x == 0 && threadIdx.x == 0)
        {
            dbeta[c] = (T)sumDy;
            if (dgamma) dgamma[c] = (T)sumDyXhat;
        }
        double mean = (double)saveMean[c], invStd = (double)saveInvStd[c];
        double k = (gamma ? (double)gamma[c] : 1.0) * invStd / m;
        Coefficients<T> a = saved_affine(gamma, beta, saveMean[c], saveInvStd[c], c);
        long long base = (long long)plane * inner;
        INNER_STRIDE(s, inner)
        {
            long long i = base + s;
            double xhat = ((double)x[i] - mean) * invStd;
            dx[i] = (T)(k * (m * relu_masked(dy, i, x[i], a, relu) - sumDy - xhat * sumDyXhat));
        }
    }
}
EXPORT_FLOAT_KERNELS(batchnorm_backward_data,
                     (const T* x, const T* dy, const T* gamma, const T* beta, const T* saveMean, const T* saveInvStd,
                      const double* partials, int parts, T* dgamma, T* dbeta, T* dx, int channels, int inner, int planes,
                      long long count, int relu, int nhwc),
                     (x, dy, gamma, beta, saveMean, saveInvStd, partials, parts, dgamma, dbeta, dx, channels, inner, planes, count,
                      relu, nhwc))

// Backward of a channels-last batch norm + ReLU whose sums the data-gradient pass that wrote dy has made (cuDNN's fused
// epilogue): sums = Σg[C], then Σg·(x − mean)[C], g = dy masked as the ReLU's. One pass, as batchnorm_backward_data's
// with Σdy·x̂ = invStd·Σg·(x − mean); the thread of each channel's first pixel writes dbeta and dgamma. n = numel(x).
template <typename T>
__device__ void batchnorm_backward_given_sums(const T* x, const T* dy, const T* gamma, const T* beta, const T* saveMean,
                                              const T* saveInvStd, const T* sums, T* dgamma, T* dbeta, T* dx, int channels,
                                              long long count, long long n)
{
    double m = (double)count;
    for_each_channels_last(n, channels, [&](long long i, int c) {
        double sumDy = (double)sums[c], sumDyXhat = (double)sums[channels + c] * (double)saveInvStd[c];
        if (i < channels)
        {
            dbeta[c] = (T)sumDy;
            if (dgamma) dgamma[c] = (T)sumDyXhat;
        }
        dx[i] = batchnorm_dx(x, dy, gamma, beta, saveMean, saveInvStd, i, c, m, sumDy, sumDyXhat, 1);
    });
}
EXPORT_FLOAT_KERNELS(batchnorm_backward_given_sums,
                     (const T* x, const T* dy, const T* gamma, const T* beta, const T* saveMean, const T* saveInvStd, const T* sums,
                      T* dgamma, T* dbeta, T* dx, int channels, long long count, long long n),
                     (x, dy, gamma, beta, saveMean, saveInvStd, sums, dgamma, dbeta, dx, channels, count, n))

// ---- shape ops ----

// y = [a, b] along channels; a: [N,Ca,S], b: [N,Cb,S], y: [N,Ca+Cb,S], all in one layout. n = numel(y).
template <typename T>
__device__ void concat_channels(const T* a, const T* b, T* y, int ca, int cb, long long inner, long long n, int nhwc)
{
    GRID_STRIDE(i, n)
    {
        Ncs at = unravel_ncs(i, ca + cb, inner, nhwc);
        y[i] = at.c < ca ? a[ravel_ncs(at.n, at.c, at.s, ca, inner, nhwc)] : b[ravel_ncs(at.n, at.c - ca, at.s, cb, inner, nhwc)];
    }
}
EXPORT_FLOAT_KERNELS(concat_channels, (const T* a, const T* b, T* y, int ca, int cb, long long inner, long long n, int nhwc),
                     (a, b, y, ca, cb, inner, n, nhwc))

// part = channels [first, first + cPart) of dy; dy: [N,Cy,S], part: [N,cPart,S]; n = numel(part).
template <typename T>
__device__ void slice_channels(const T* dy, T* part, int cy, int first, int cPart, long long inner, long long n, int nhwc)
{
    GRID_STRIDE(i, n)
    {
        Ncs at = unravel_ncs(i, cPart, inner, nhwc);
        part[i] = dy[ravel_ncs(at.n, first + at.c, at.s, cy, inner, nhwc)];
    }
}
EXPORT_FLOAT_KERNELS(slice_channels, (const T* dy, T* part, int cy, int first, int cPart, long long inner, long long n, int nhwc),
                     (dy, part, cy, first, cPart, inner, n, nhwc))

// Window copy between images of different size: y[n,c,i,j] = x[n, c, i + oh, j + ow] where inside x, else 0.
// Centre crop uses oh, ow ≥ 0 (always inside); centre pad uses oh, ow ≤ 0 (zero border). n = numel(y).
template <typename T>
__device__ void shift_window(const T* x, T* y, int channels, int hx, int wx, int hy, int wy, int oh, int ow, long long n, int nhwc)
{
    GRID_STRIDE(i, n)
    {
        Ncs at = unravel_ncs(i, channels, (long long)hy * wy, nhwc);
        int r = (int)(at.s / wy), j = (int)(at.s - (long long)r * wy);
        int sr = r + oh, sc = j + ow;
        y[i] = (sr >= 0 && sr < hx && sc >= 0 && sc < wx)
            ? x[ravel_ncs(at.n, at.c, (long long)sr * wx + sc, channels, (long long)hx * wx, nhwc)] : (T)0;
    }
}
EXPORT_FLOAT_KERNELS(shift_window,
                     (const T* x, T* y, int channels, int hx, int wx, int hy, int wy, int oh, int ow, long long n, int nhwc),
                     (x, y, channels, hx, wx, hy, wy, oh, ow, n, nhwc))

// dst takes src's elements in NCHW order: the element of NCHW index k moves from src's offset of k to dst's offset
// of k, each side NCHW or channels-last ([N, C, S] with its own C and S; C = S = 1 describes an NCHW side). The
// reshape of a channels-last tensor; 4-byte integers use the float kernel (loads and stores move the bits as they
// are). n = numel, walked in dst's memory order.
template <typename T>
__device__ void copy_reshaped(const T* src, T* dst, int cs, long long is, int srcNhwc, int cd, long long id, int dstNhwc, long long n)
{
    GRID_STRIDE(i, n)
    {
        long long k = i;
        if (dstNhwc)
        {
            Ncs at = unravel_ncs(i, cd, id, 1);
            k = ravel_ncs(at.n, at.c, at.s, cd, id, 0);
        }
        long long from = k;
        if (srcNhwc)
        {
            Ncs at = unravel_ncs(k, cs, is, 0);
            from = ravel_ncs(at.n, at.c, at.s, cs, is, 1);
        }
        dst[i] = src[from];
    }
}
EXPORT_FLOAT_KERNELS(copy_reshaped,
                     (const T* src, T* dst, int cs, long long is, int srcNhwc, int cd, long long id, int dstNhwc, long long n),
                     (src, dst, cs, is, srcNhwc, cd, id, dstNhwc, n))
