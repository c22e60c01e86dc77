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
