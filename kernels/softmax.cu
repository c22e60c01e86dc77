// Classification kernels over the channel axis of [N,C,S] tensors (S = H·W, or 1 for [N,C]): one
// thread per voxel walks its C channels, at stride S in NCHW and stride 1 channels-last (nhwc). The loss is
// reduced deterministically: per-voxel losses in double, then one block sums them in a fixed order.
#include "common.cuh"

// Where voxel v (= n·S + s) keeps its channel 0, and the step between its channels.
struct VoxelChannels
{
    long long base, step;
};

__device__ __forceinline__ VoxelChannels voxel_channels(long long v, int channels, long long inner, int nhwc)
{
    if (nhwc) return {v * channels, 1};
    long long batch = v / inner;
    return {batch * channels * inner + (v - batch * inner), inner};
}

// Per voxel, in double whatever T is (as the CPU reference): m = max_c x_c, lse = m + log Σ_c exp(x_c − m),
// probs_c = exp(x_c − lse).
template <typename T>
__device__ double log_sum_exp(const T* logits, VoxelChannels v, int channels)
{
    double m = (double)logits[v.base];
    for (int c = 1; c < channels; c++) { double x = (double)logits[v.base + c * v.step]; if (x > m) m = x; }
    double sum = 0;
    for (int c = 0; c < channels; c++) sum += exp((double)logits[v.base + c * v.step] - m);
    return m + log(sum);
}

// probs = softmax over channels. n = N·S voxels.
template <typename T>
__device__ void softmax_forward(const T* logits, T* probs, int channels, long long inner, long long n, int nhwc)
{
    GRID_STRIDE(v, n)
    {
        VoxelChannels vc = voxel_channels(v, channels, inner, nhwc);
        double lse = log_sum_exp(logits, vc, channels);
        for (int c = 0; c < channels; c++)
        {
            long long at = vc.base + c * vc.step;
            probs[at] = (T)exp((double)logits[at] - lse);
        }
    }
}
EXPORT_FLOAT_KERNELS(softmax_forward, (const T* logits, T* probs, int channels, long long inner, long long n, int nhwc),
                     (logits, probs, channels, inner, n, nhwc))

// probs as softmax_forward, and voxelLoss[v] = −Σ_c target_c·log(probs_c) with log(probs_c) = x_c − lse:
// stable, and terms with target 0 are skipped (no 0·∞).
template <typename T>
__device__ void softmax_xent_forward(const T* logits, const T* target, T* probs, double* voxelLoss, T* loss, int channels,
                                     long long inner, long long n, int nhwc, unsigned int* tickets)
{
    __shared__ double shared[REDUCE_THREADS];
    GRID_STRIDE(v, n)
    {
        VoxelChannels vc = voxel_channels(v, channels, inner, nhwc);
        double lse = log_sum_exp(logits, vc, channels);
        double sum = 0;
        for (int c = 0; c < channels; c++)
        {
            long long at = vc.base + c * vc.step;
            double logProb = (double)logits[at] - lse;
            probs[at] = (T)exp(logProb);
            double t = (double)target[at];
            if (t != 0) sum -= t * logProb;
        }
        voxelLoss[v] = sum;
    }
    // The mean: the launch's last block (blocks of exactly REDUCE_THREADS) sums the voxel losses in a fixed order.
    if (!last_block(tickets)) return;
    const volatile double* all = voxelLoss;
    double total = 0;
    for (long long i = threadIdx.x; i < n; i += REDUCE_THREADS) total += all[i];
    total = block_sum(total, shared);
    if (threadIdx.x == 0) loss[0] = (T)(total / (double)n);
}
EXPORT_FLOAT_KERNELS(softmax_xent_forward,
                     (const T* logits, const T* target, T* probs, double* voxelLoss, T* loss, int channels, long long inner,
                      long long n, int nhwc, unsigned int* tickets),
                     (logits, target, probs, voxelLoss, loss, channels, inner, n, nhwc, tickets))

// dlogits = dloss[0]·(probs·Σ_c target − target)/M in double, reading dloss on the device; n = M = N·S voxels.
template <typename T>
__device__ void softmax_xent_backward(const T* probs, const T* target, const T* dloss, T* dlogits, int channels,
                                      long long inner, long long n, int nhwc)
{
    double scale = (double)dloss[0] / (double)n;
    GRID_STRIDE(v, n)
    {
        VoxelChannels vc = voxel_channels(v, channels, inner, nhwc);
        double targetSum = 0;
        for (int c = 0; c < channels; c++) targetSum += (double)target[vc.base + c * vc.step];
        for (int c = 0; c < channels; c++)
        {
            long long at = vc.base + c * vc.step;
            dlogits[at] = (T)(scale * ((double)probs[at] * targetSum - (double)target[at]));
        }
    }
}
EXPORT_FLOAT_KERNELS(softmax_xent_backward,
                     (const T* probs, const T* target, const T* dloss, T* dlogits, int channels, long long inner,
                      long long n, int nhwc),
                     (probs, target, dloss, dlogits, channels, inner, n, nhwc))

// labels[n,s] = the channel of the largest value; ties go to the lowest channel (strict >).
template <typename T>
__device__ void argmax_channels(const T* x, int* labels, int channels, long long inner, long long n, int nhwc)
{
    GRID_STRIDE(v, n)
    {
        VoxelChannels vc = voxel_channels(v, channels, inner, nhwc);
        int best = 0;
        T bestValue = x[vc.base];
        for (int c = 1; c < channels; c++)
        {
            T value = x[vc.base + c * vc.step];
            if (value > bestValue) { bestValue = value; best = c; }
        }
        labels[v] = best;
    }
}
EXPORT_FLOAT_KERNELS(argmax_channels, (const T* x, int* labels, int channels, long long inner, long long n, int nhwc),
                     (x, labels, channels, inner, n, nhwc))

// y[n,c,s] = 1 where labels[n,s] == c, else 0 (labels outside [0, C) give an all-zero voxel).
template <typename T>
__device__ void one_hot(const int* labels, T* y, int channels, long long inner, long long n, int nhwc)
{
    GRID_STRIDE(i, n)
    {
        Ncs at = unravel_ncs(i, channels, inner, nhwc);
        y[i] = labels[at.n * inner + at.s] == at.c ? (T)1 : (T)0;
    }
}
EXPORT_FLOAT_KERNELS(one_hot, (const int* labels, T* y, int channels, long long inner, long long n, int nhwc),
                     (labels, y, channels, inner, n, nhwc))
