// Per-channel kernels over NCHW (or [N,C], inner = 1) tensors: bias, bias gradient, batch norm, and the
// channel/space shape ops. Reductions run one block per channel with a fixed tree (no float atomics),
// accumulate in double and are therefore deterministic.
#include "common.cuh"

// y[n,c,s] += bias[c], in place; inner = H·W.
template <typename T>
__device__ void add_channel_bias(T* y, const T* bias, int channels, long long inner, long long n)
{
    GRID_STRIDE(i, n) y[i] += bias[(i / inner) % channels];
}
EXPORT_FLOAT_KERNELS(add_channel_bias, (T* y, const T* bias, int channels, long long inner, long long n),
                     (y, bias, channels, inner, n))

// Σ over (n, s) of x[n,c,s] for the channel of this block, in double; valid in thread 0.
template <typename T>
__device__ double channel_total(const T* x, int c, int channels, int batch, long long inner, double* shared)
{
    double sum = 0;
    long long count = (long long)batch * inner;
    for (long long j = threadIdx.x; j < count; j += REDUCE_THREADS)
    {
        long long b = j / inner, s = j - b * inner;
        sum += (double)x[(b * channels + c) * inner + s];
    }
    return block_sum(sum, shared);
}

// db[c] = Σ_{n,s} dy[n,c,s]. Grid: one block of REDUCE_THREADS per channel.
template <typename T>
__device__ void channel_sum(const T* dy, T* db, int batch, int channels, long long inner)
{
    __shared__ double shared[REDUCE_THREADS];
    int c = blockIdx.x;
    double total = channel_total(dy, c, channels, batch, inner, shared);
    if (threadIdx.x == 0) db[c] = (T)total;
}
EXPORT_FLOAT_KERNELS(channel_sum, (const T* dy, T* db, int batch, int channels, long long inner),
                     (dy, db, batch, channels, inner))

// ---- batch normalisation over (N, H, W) per channel ----

// Batch statistics and running-average update. One block per channel. Two passes (mean, then the
// squared deviations) in double, as the CPU reference; saveMean = μ, saveInvStd = 1/√(σ² + eps) with the
// biased σ²; the running variance takes the unbiased σ²·M/(M − 1) (the host checks M ≥ 2). Also writes
// the affine coefficients of y = x·scale + shift: scale = γ·invStd, shift = β − μ·scale.
template <typename T>
__device__ void batchnorm_statistics(const T* x, const T* gamma, const T* beta, T* runningMean, T* runningVar,
                                     T* saveMean, T* saveInvStd, T* scaleShift, int batch, int channels,
                                     long long inner, double momentum, double eps)
{
    __shared__ double shared[REDUCE_THREADS];
    __shared__ double meanShared;
    int c = blockIdx.x;
    long long count = (long long)batch * inner;
    double total = channel_total(x, c, channels, batch, inner, shared);
    if (threadIdx.x == 0) meanShared = total / (double)count;
    __syncthreads();
    double mean = meanShared;
    double squares = 0;
    for (long long j = threadIdx.x; j < count; j += REDUCE_THREADS)
    {
        long long b = j / inner, s = j - b * inner;
        double d = (double)x[(b * channels + c) * inner + s] - mean;
        squares += d * d;
    }
    squares = block_sum(squares, shared);
    if (threadIdx.x == 0)
    {
        double variance = squares / (double)count;
        double invStd = 1.0 / sqrt(variance + eps);
        saveMean[c] = (T)mean;
        saveInvStd[c] = (T)invStd;
        runningMean[c] = (T)((1.0 - momentum) * (double)runningMean[c] + momentum * mean);
        runningVar[c] = (T)((1.0 - momentum) * (double)runningVar[c] + momentum * variance * (double)count / (double)(count - 1));
        double scale = (gamma ? (double)gamma[c] : 1.0) * invStd;
        scaleShift[2 * c] = (T)scale;
        scaleShift[2 * c + 1] = (T)((double)beta[c] - mean * scale);
    }
}
EXPORT_FLOAT_KERNELS(batchnorm_statistics,
                     (const T* x, const T* gamma, const T* beta, T* runningMean, T* runningVar, T* saveMean,
                      T* saveInvStd, T* scaleShift, int batch, int channels, long long inner, double momentum, double eps),
                     (x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, scaleShift, batch, channels, inner,
                      momentum, eps))

// Inference coefficients from the running statistics: scale = γ/√(runningVar + eps), shift = β − runningMean·scale.
// n = C.
template <typename T>
__device__ void batchnorm_inference_coefficients(const T* gamma, const T* beta, const T* runningMean,
                                                 const T* runningVar, T* scaleShift, double eps, long long n)
{
    GRID_STRIDE(c, n)
    {
        double scale = (gamma ? (double)gamma[c] : 1.0) / sqrt((double)runningVar[c] + eps);
        scaleShift[2 * c] = (T)scale;
        scaleShift[2 * c + 1] = (T)((double)beta[c] - (double)runningMean[c] * scale);
    }
}
EXPORT_FLOAT_KERNELS(batchnorm_inference_coefficients,
                     (const T* gamma, const T* beta, const T* runningMean, const T* runningVar, T* scaleShift,
                      double eps, long long n),
                     (gamma, beta, runningMean, runningVar, scaleShift, eps, n))

// y = x·scale[c] + shift[c] in T (the normalisation of both modes). n = numel(x).
template <typename T>
__device__ void channel_affine(const T* x, const T* scaleShift, T* y, int channels, long long inner, long long n)
{
    GRID_STRIDE(i, n)
    {
        int c = (int)((i / inner) % channels);
        y[i] = x[i] * scaleShift[2 * c] + scaleShift[2 * c + 1];
    }
}
EXPORT_FLOAT_KERNELS(channel_affine, (const T* x, const T* scaleShift, T* y, int channels, long long inner, long long n),
                     (x, scaleShift, y, channels, inner, n))

// Backward, pass 1 (one block per channel): Σdy and Σdy·x̂ with x̂ = (x − μ)·invStd. Writes dbeta,
// dgamma (when not null) and both sums into sums[2c], sums[2c+1] for pass 2.
template <typename T>
__device__ void batchnorm_backward_sums(const T* x, const T* dy, const T* saveMean, const T* saveInvStd,
                                        T* dgamma, T* dbeta, double* sums, int batch, int channels, long long inner)
{
    __shared__ double shared[REDUCE_THREADS];
    int c = blockIdx.x;
    long long count = (long long)batch * inner;
    double mean = (double)saveMean[c], invStd = (double)saveInvStd[c];
    double sumDy = 0, sumDyXhat = 0;
    for (long long j = threadIdx.x; j < count; j += REDUCE_THREADS)
    {
        long long b = j / inner, s = j - b * inner;
        long long at = (b * channels + c) * inner + s;
        double g = (double)dy[at];
        sumDy += g;
        sumDyXhat += g * ((double)x[at] - mean) * invStd;
    }
    sumDy = block_sum(sumDy, shared);
    sumDyXhat = block_sum(sumDyXhat, shared);
    if (threadIdx.x == 0)
    {
        dbeta[c] = (T)sumDy;
        if (dgamma) dgamma[c] = (T)sumDyXhat;
        sums[2 * c] = sumDy;
        sums[2 * c + 1] = sumDyXhat;
    }
}
EXPORT_FLOAT_KERNELS(batchnorm_backward_sums,
                     (const T* x, const T* dy, const T* saveMean, const T* saveInvStd, T* dgamma, T* dbeta,
                      double* sums, int batch, int channels, long long inner),
                     (x, dy, saveMean, saveInvStd, dgamma, dbeta, sums, batch, channels, inner))

// Backward, pass 2 (elementwise): dx = γ·invStd/M·(M·dy − Σdy − x̂·Σ(dy·x̂)), M = N·H·W.
template <typename T>
__device__ void batchnorm_backward_data(const T* x, const T* dy, const T* gamma, const T* saveMean,
                                        const T* saveInvStd, const double* sums, T* dx, int batch, int channels,
                                        long long inner, long long n)
{
    double m = (double)batch * (double)inner;
    GRID_STRIDE(i, n)
    {
        int c = (int)((i / inner) % channels);
        double invStd = (double)saveInvStd[c];
        double g = gamma ? (double)gamma[c] : 1.0;
        double xhat = ((double)x[i] - (double)saveMean[c]) * invStd;
        dx[i] = (T)(g * invStd / m * (m * (double)dy[i] - sums[2 * c] - xhat * sums[2 * c + 1]));
    }
}
EXPORT_FLOAT_KERNELS(batchnorm_backward_data,
                     (const T* x, const T* dy, const T* gamma, const T* saveMean, const T* saveInvStd,
                      const double* sums, T* dx, int batch, int channels, long long inner, long long n),
                     (x, dy, gamma, saveMean, saveInvStd, sums, dx, batch, channels, inner, n))

// ---- shape ops ----

// y = [a, b] along channels; a: [N,Ca,S], b: [N,Cb,S], y: [N,Ca+Cb,S].
template <typename T>
__device__ void concat_channels(const T* a, const T* b, T* y, int ca, int cb, long long inner, long long n)
{
    int cy = ca + cb;
    GRID_STRIDE(i, n)
    {
        long long s = i % inner;
        long long rest = i / inner;
        int c = (int)(rest % cy);
        long long batch = rest / cy;
        y[i] = c < ca ? a[(batch * ca + c) * inner + s] : b[(batch * cb + (c - ca)) * inner + s];
    }
}
EXPORT_FLOAT_KERNELS(concat_channels, (const T* a, const T* b, T* y, int ca, int cb, long long inner, long long n),
                     (a, b, y, ca, cb, inner, n))

// part = channels [first, first + cPart) of dy; dy: [N,Cy,S], part: [N,cPart,S]; n = numel(part).
template <typename T>
__device__ void slice_channels(const T* dy, T* part, int cy, int first, int cPart, long long inner, long long n)
{
    GRID_STRIDE(i, n)
    {
        long long s = i % inner;
        long long rest = i / inner;
        int c = (int)(rest % cPart);
        long long batch = rest / cPart;
        part[i] = dy[(batch * cy + first + c) * inner + s];
    }
}
EXPORT_FLOAT_KERNELS(slice_channels, (const T* dy, T* part, int cy, int first, int cPart, long long inner, long long n),
                     (dy, part, cy, first, cPart, inner, n))

// Window copy between planes of different size: y[p,i,j] = x[p, i + oh, j + ow] where inside x, else 0.
// Centre crop uses oh, ow ≥ 0 (always inside); centre pad uses oh, ow ≤ 0 (zero border).
template <typename T>
__device__ void shift_window(const T* x, T* y, int hx, int wx, int hy, int wy, int oh, int ow, long long n)
{
    GRID_STRIDE(i, n)
    {
        int j = (int)(i % wy);
        long long rest = i / wy;
        int r = (int)(rest % hy);
        long long plane = rest / hy;
        int sr = r + oh, sc = j + ow;
        y[i] = (sr >= 0 && sr < hx && sc >= 0 && sc < wx) ? x[(plane * hx + sr) * wx + sc] : (T)0;
    }
}
EXPORT_FLOAT_KERNELS(shift_window, (const T* x, T* y, int hx, int wx, int hy, int wy, int oh, int ow, long long n),
                     (x, y, hx, wx, hy, wy, oh, ow, n))
