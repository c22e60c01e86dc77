// Host emulation of the CUDA kernel dialect used by kernels/*.cu. The threads of a block are fibers (ucontext)
// on the calling thread: each runs until its next __syncthreads, then the next one, round by round, which is
// exactly a barrier's semantics without an OS thread per CUDA thread. Blocks run one after another;
// __shared__ = static (one block at a time uses it).
#pragma once
#include <cmath>
#include <cstring>
#include <vector>
#include <functional>
#include <ucontext.h>
struct uint3e { unsigned x = 0, y = 0, z = 0; };
inline uint3e threadIdx, blockIdx;
inline uint3e blockDim{1, 1, 1}, gridDim{1, 1, 1};
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

// The block being run: one context per CUDA thread, the scheduler's context, which fiber runs, which finished.
struct EmulatedBlock
{
    static constexpr size_t StackBytes = 64 * 1024;
    std::vector<ucontext_t> fibers;
    std::vector<std::vector<char>> stacks;
    std::vector<char> finished;
    ucontext_t scheduler;
    unsigned current = 0;
    const std::function<void()>* kernel = nullptr;
};
inline EmulatedBlock g_block;

inline void __syncthreads() { swapcontext(&g_block.fibers[g_block.current], &g_block.scheduler); }
// Blocks run one after another, so the fence has nothing to order and an add is atomic.
inline void __threadfence() {}
inline unsigned int atomicAdd(unsigned int* at, unsigned int value) { unsigned int old = *at; *at = old + value; return old; }
inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned int)(((unsigned long long)a * b) >> 32); }
inline float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
inline double __longlong_as_double(long long v) { double d; std::memcpy(&d, &v, 8); return d; }
using std::exp; using std::log; using std::sqrt;

inline void emulated_thread_main()
{
    (*g_block.kernel)();
    g_block.finished[g_block.current] = 1;   // then back to the scheduler through uc_link
}

// A 1-D or 2-D grid (gridY blocks along y) of 1-D blocks, one block at a time on the calling thread.
template <typename F>
void launch(unsigned grid, unsigned gridY, unsigned block, F kernel)
{
    gridDim = {grid, gridY, 1};
    blockDim = {block, 1, 1};
    std::function<void()> body = kernel;
    auto& b = g_block;
    b.kernel = &body;
    b.fibers.resize(block);
    b.finished.assign(block, 0);
    if (b.stacks.size() < block) b.stacks.resize(block, std::vector<char>(EmulatedBlock::StackBytes));
    for (unsigned by = 0; by < gridY; by++)
        for (unsigned bx = 0; bx < grid; bx++)
        {
            blockIdx = {bx, by, 0};
            for (unsigned t = 0; t < block; t++)
            {
                getcontext(&b.fibers[t]);
                b.fibers[t].uc_stack.ss_sp = b.stacks[t].data();
                b.fibers[t].uc_stack.ss_size = EmulatedBlock::StackBytes;
                b.fibers[t].uc_link = &b.scheduler;
                makecontext(&b.fibers[t], emulated_thread_main, 0);
                b.finished[t] = 0;
            }
            // Round by round: every unfinished thread runs up to its next barrier (or its end).
            for (bool running = true; running;)
            {
                running = false;
                for (unsigned t = 0; t < block; t++)
                {
                    if (b.finished[t]) continue;
                    b.current = t;
                    threadIdx = {t, 0, 0};
                    swapcontext(&b.scheduler, &b.fibers[t]);
                    running |= !b.finished[t];
                }
            }
        }
}

template <typename F>
void launch(unsigned grid, unsigned block, F kernel) { launch(grid, 1, block, kernel); }
