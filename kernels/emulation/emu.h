// Host emulation of the CUDA kernel dialect used by kernels/*.cu: one std::thread per CUDA thread of a block,
// blocks run one after another, __shared__ = static, __syncthreads = barrier.
#pragma once
#include <barrier>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>
#include <functional>
struct uint3e { unsigned x = 0, y = 0, z = 0; };
inline thread_local uint3e threadIdx, blockIdx;
inline uint3e blockDim{1, 1, 1}, gridDim{1, 1, 1};
inline std::barrier<>* g_barrier = nullptr;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
inline void __syncthreads() { g_barrier->arrive_and_wait(); }
inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned int)(((unsigned long long)a * b) >> 32); }
inline float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
inline double __longlong_as_double(long long v) { double d; std::memcpy(&d, &v, 8); return d; }
using std::exp; using std::log; using std::sqrt;

// A 1-D or 2-D grid (gridY blocks along y) of 1-D blocks. The block's threads are created once per launch and
// walk the blocks together, meeting at a barrier between blocks (static __shared__ memory is reused by the next).
template <typename F>
void launch(unsigned grid, unsigned gridY, unsigned block, F kernel)
{
    gridDim = {grid, gridY, 1};
    blockDim = {block, 1, 1};
    std::barrier<> barrier(block);
    g_barrier = &barrier;
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < block; t++)
        threads.emplace_back([=, &barrier] {
            threadIdx = {t, 0, 0};
            for (unsigned by = 0; by < gridY; by++)
                for (unsigned b = 0; b < grid; b++)
                {
                    blockIdx = {b, by, 0};
                    kernel();
                    barrier.arrive_and_wait();
                }
        });
    for (auto& th : threads) th.join();
}

template <typename F>
void launch(unsigned grid, unsigned block, F kernel) { launch(grid, 1, block, kernel); }
