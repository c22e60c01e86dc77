// Shared helpers for every kernel module. NVRTC compiles these with no host headers: only builtins.
#pragma once

// Every kernel walks its elements with a grid-stride loop, so any grid size covers any count.
#define GRID_STRIDE(i, n)                                                              \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n);      \
         i += (long long)blockDim.x * gridDim.x)

// Per-channel elementwise kernels run on a 2-D grid: blockIdx.y walks the N·C planes and blockIdx.x with the
// threads walks the H·W values of one plane, so the channel costs one 32-bit modulo per plane, not a 64-bit
// division per element. Counts are int (the host checks they fit); element offsets are 64-bit.
#define PLANE_STRIDE(plane, planes) for (int plane = blockIdx.y; plane < (planes); plane += gridDim.y)
#define INNER_STRIDE(s, inner)                                                          \
    for (int s = blockIdx.x * blockDim.x + threadIdx.x; s < (inner); s += blockDim.x * gridDim.x)

// Block size of the per-channel and whole-tensor reductions; the host launches them with exactly this.
#define REDUCE_THREADS 256

// One template, two C entry points: NAME##_f32 and NAME##_f64. PARAMS is written in terms of T,
// which the enclosing namespace binds to float or double; ARGS forwards the parameters.
#define EXPORT_FLOAT_KERNELS(NAME, PARAMS, ARGS)                                        \
    namespace NAME##_f32_ns {                                                          \
    typedef float T;                                                                   \
    extern "C" __global__ void NAME##_f32 PARAMS { NAME<T> ARGS; }                     \
    }                                                                                  \
    namespace NAME##_f64_ns {                                                          \
    typedef double T;                                                                  \
    extern "C" __global__ void NAME##_f64 PARAMS { NAME<T> ARGS; }                     \
    }

// Deterministic sum of one double per thread over a block of REDUCE_THREADS threads: a fixed
// tree, so the same inputs always give the same bits. Every thread of the block must call it;
// the result is valid in thread 0.
__device__ __forceinline__ double block_sum(double value, double* shared)
{
    shared[threadIdx.x] = value;
    __syncthreads();
    for (unsigned int half = REDUCE_THREADS / 2; half > 0; half >>= 1)
    {
        if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    double total = shared[0];
    __syncthreads(); // the caller may reuse `shared` at once
    return total;
}

// Precise (not fast-math) square roots per type, so results track the CPU reference.
__device__ __forceinline__ float sqrt_t(float x) { return sqrtf(x); }
__device__ __forceinline__ double sqrt_t(double x) { return sqrt(x); }

// a·b + c in one rounding per type. Explicit, so no contraction choice of the compiler can make two evaluations of
// the same expression (batch norm's output and its backward's recomputed ReLU mask) differ.
__device__ __forceinline__ float fma_t(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fma_t(double a, double b, double c) { return fma(a, b, c); }

// y = x·scale + shift in T (one rounding, fma_t); with relu, y = max(that, 0) as relu_forward computes it, so the fused
// op keeps no un-rectified copy (batch norm's output, written by channel_affine or by a reader of a deferred one).
template <typename T>
__device__ __forceinline__ T affine(T x, T scale, T shift, int relu)
{
    T v = fma_t(x, scale, shift);
    return !relu || v > (T)0 || v != v ? v : (T)0;
}

// ---- layouts: [N, C, S] tensors (S = H·W, or 1 for [N, C]) in NCHW or channels-last (NHWC) memory order ----

// Coordinates of the element at memory offset i, and the offset of given coordinates. The shape ops walk their
// output in its own memory order, so neighbouring threads write neighbouring values in either layout.
struct Ncs
{
    long long n;
    int c;
    long long s;
};

__device__ __forceinline__ Ncs unravel_ncs(long long i, int channels, long long inner, int nhwc)
{
    Ncs at;
    if (nhwc)
    {
        at.c = (int)(i % channels);
        long long pixel = i / channels;
        at.n = pixel / inner;
        at.s = pixel - at.n * inner;
    }
    else
    {
        at.s = i % inner;
        long long plane = i / inner;
        at.n = plane / channels;
        at.c = (int)(plane - at.n * channels);
    }
    return at;
}

__device__ __forceinline__ long long ravel_ncs(long long n, int c, long long s, int channels, long long inner, int nhwc)
{
    return nhwc ? (n * inner + s) * channels + c : (n * channels + c) * inner + s;
}

// Channels-last per-channel elementwise loop over n values: visit(i, c) with c = i mod C. The channel advances with
// i by additions (one modulo per thread), never a division per element. Launched as a 1-D grid.
template <typename Visit>
__device__ void for_each_channels_last(long long n, int channels, Visit visit)
{
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x, stride = (long long)blockDim.x * gridDim.x;
    int c = (int)(i % channels), step = (int)(stride % channels);
    for (; i < n; i += stride)
    {
        visit(i, c);
        c += step;
        if (c >= channels) c -= channels;
    }
}

// Channels-last per-channel reductions, stage 1: block `part` reduces pixels [part·pixelsPerPart, …) of every
// channel (C ≤ REDUCE_THREADS; the host checks). Thread t keeps channel t mod C over pixels t div C, + G, + 2G, …
// (G = REDUCE_THREADS div C whole groups; the threads past them idle), so a warp reads consecutive addresses and
// each thread sums one channel in double. Then thread c adds the G groups' sums in order: K partials per (channel,
// part) at partials[K·(c·parts + part) + k], where the NCHW stage 1 writes them, so stage 2 is shared.
// value(at, c, acc) adds element `at` (of channel c) into acc[0..K).
template <int K, typename Value>
__device__ void channels_last_partials(int channels, long long pixels, long long pixelsPerPart, int parts, double* partials, Value value)
{
    __shared__ double shared[K][REDUCE_THREADS];
    int t = threadIdx.x, groups = REDUCE_THREADS / channels, c = t % channels, g = t / channels;
    long long first = (long long)blockIdx.x * pixelsPerPart, last = first + pixelsPerPart < pixels ? first + pixelsPerPart : pixels;
    double acc[K];
    for (int k = 0; k < K; k++) acc[k] = 0;
    if (g < groups)
    {
#pragma unroll 4
        for (long long p = first + g; p < last; p += groups) value(p * channels + c, c, acc);
    }
    for (int k = 0; k < K; k++) shared[k][t] = acc[k];
    __syncthreads();
    if (t < channels)
        for (int k = 0; k < K; k++)
        {
            double sum = 0;
            for (int j = 0; j < groups; j++) sum += shared[k][t + j * channels];
            partials[K * ((long long)t * parts + blockIdx.x) + k] = sum;
        }
}

// True in every thread of the block that finishes last of the grid's 1-D blocks, which may then read what every block
// wrote before the call (through volatile loads: no stale cache lines). Each block fences its writes and takes a
// ticket; the last ticket's holder resets the counter to 0 for the next launch on the stream. Which block is last
// varies from run to run, so what it computes must not depend on that (fixed-order sums over the partials).
__device__ __forceinline__ bool last_block(unsigned int* tickets)
{
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0)
    {
        last = atomicAdd(tickets, 1u) == gridDim.x - 1;
        if (last) *tickets = 0;
    }
    __syncthreads();
    return last;
}
