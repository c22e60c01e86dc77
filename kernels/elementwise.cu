// Elementwise kernels: one thread per element in a grid-stride loop. Scalars arrive as double and are
// rounded to T here, exactly as the CPU reference rounds them.
#include "common.cuh"
#include "philox.cuh"

template <typename T>
__device__ void fill(T* y, double value, long long n)
{
    T v = (T)value;
    GRID_STRIDE(i, n) y[i] = v;
}
EXPORT_FLOAT_KERNELS(fill, (T* y, double value, long long n), (y, value, n))

template <typename T>
__device__ void add(const T* a, const T* b, T* y, long long n)
{
    GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}
EXPORT_FLOAT_KERNELS(add, (const T* a, const T* b, T* y, long long n), (a, b, y, n))

template <typename T>
__device__ void multiply(const T* a, const T* b, T* y, long long n)
{
    GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}
EXPORT_FLOAT_KERNELS(multiply, (const T* a, const T* b, T* y, long long n), (a, b, y, n))

// y += alpha * x
template <typename T>
__device__ void add_scaled(T* y, const T* x, double alpha, long long n)
{
    T a = (T)alpha;
    GRID_STRIDE(i, n) y[i] += a * x[i];
}
EXPORT_FLOAT_KERNELS(add_scaled, (T* y, const T* x, double alpha, long long n), (y, x, alpha, n))

// y *= alpha
template <typename T>
__device__ void scale(T* y, double alpha, long long n)
{
    T a = (T)alpha;
    GRID_STRIDE(i, n) y[i] *= a;
}
EXPORT_FLOAT_KERNELS(scale, (T* y, double alpha, long long n), (y, alpha, n))

// ---- ReLU ----

template <typename T>
__device__ void relu_forward(const T* x, T* y, long long n)
{
    // NaN stays NaN, −0 becomes +0: IEEE maximum's rules, as on the CPU and in PyTorch.
    GRID_STRIDE(i, n) y[i] = x[i] > (T)0 || x[i] != x[i] ? x[i] : (T)0;
}
EXPORT_FLOAT_KERNELS(relu_forward, (const T* x, T* y, long long n), (x, y, n))

// The derivative at 0 is taken as 0.
template <typename T>
__device__ void relu_backward(const T* y, const T* dy, T* dx, long long n)
{
    GRID_STRIDE(i, n) dx[i] = y[i] > (T)0 ? dy[i] : (T)0;
}
EXPORT_FLOAT_KERNELS(relu_backward, (const T* y, const T* dy, T* dx, long long n), (y, dy, dx, n))

// ---- dropout ----

// The dropout word of the element at memory offset i: Philox (seed, offset + k) with k its NCHW index, so
// channels-last tensors (nhwc, shape [N, channels, inner]) drop the same elements as the CPU's.
__device__ __forceinline__ unsigned int dropout_word(unsigned long long seed, unsigned long long offset, long long i, int channels,
                                                     long long inner, int nhwc)
{
    long long k = i;
    if (nhwc)
    {
        Ncs at = unravel_ncs(i, channels, inner, 1);
        k = ravel_ncs(at.n, at.c, at.s, channels, inner, 0);
    }
    return philox_word(seed, offset + (unsigned long long)k);
}

// The Philox offset of a dropout draw is *offsetBase + offset: the host's offset plus a word in device memory. Eager
// work points at a word that stays 0; a captured CUDA graph points at its own word, which its last node advances by
// the step's draws (advance_offset), so each replay draws fresh masks without the host rewriting the kernels' arguments.

// mask[i] = keepValue when (dropout word >> 8) >= threshold, else 0. The host computes threshold
// (Philox.DropThreshold) and keepValue = 1/(1 − p), so both backends decide and scale alike.
template <typename T>
__device__ void dropout_mask(T* mask, unsigned long long seed, const unsigned long long* offsetBase, unsigned long long offset,
                             unsigned int threshold, double keepValue, int channels, long long inner, long long n, int nhwc)
{
    T keep = (T)keepValue;
    offset += *offsetBase;
    GRID_STRIDE(i, n) mask[i] = (dropout_word(seed, offset, i, channels, inner, nhwc) >> 8) >= threshold ? keep : (T)0;
}
EXPORT_FLOAT_KERNELS(dropout_mask,
                     (T* mask, unsigned long long seed, const unsigned long long* offsetBase, unsigned long long offset,
                      unsigned int threshold, double keepValue, int channels, long long inner, long long n, int nhwc),
                     (mask, seed, offsetBase, offset, threshold, keepValue, channels, inner, n, nhwc))

// y = x·mask with dropout_mask's mask for the same arguments, generated here and never stored (dropout's
// forward on x, and its backward on the output gradient). With scaleShift (channels-last only) x is a batch norm's input
// and the element is first max(x·scale[c] + shift[c], 0), the norm's deferred output, which is then never written.
template <typename T>
__device__ void dropout_multiply(const T* x, T* y, unsigned long long seed, const unsigned long long* offsetBase,
                                 unsigned long long offset, unsigned int threshold, double keepValue, int channels,
                                 long long inner, long long n, int nhwc, const T* scaleShift)
{
    T keep = (T)keepValue;
    offset += *offsetBase;
    GRID_STRIDE(i, n)
    {
        T v = x[i];
        if (scaleShift)
        {
            int c = (int)(i % channels);
            v = affine(v, scaleShift[c], scaleShift[channels + c], 1);
        }
        y[i] = v * ((dropout_word(seed, offset, i, channels, inner, nhwc) >> 8) >= threshold ? keep : (T)0);
    }
}
EXPORT_FLOAT_KERNELS(dropout_multiply,
                     (const T* x, T* y, unsigned long long seed, const unsigned long long* offsetBase,
                      unsigned long long offset, unsigned int threshold, double keepValue, int channels,
                      long long inner, long long n, int nhwc, const T* scaleShift),
                     (x, y, seed, offsetBase, offset, threshold, keepValue, channels, inner, n, nhwc, scaleShift))

// *word += by, one thread: a graph's dropout offset word moves on by the draws of one replay. T is unused (every
// entry point comes as _f32 and _f64; the backend launches _f64).
template <typename T>
__device__ void advance_offset(unsigned long long* word, unsigned long long by)
{
    if (blockIdx.x == 0 && threadIdx.x == 0) *word += by;
}
EXPORT_FLOAT_KERNELS(advance_offset, (unsigned long long* word, unsigned long long by), (word, by))

// ---- optimiser ----

// RMSprop (Lasagne's convention) with a gradient scale s (−1 ascends):
// g = s·grad; meanSquare = ρ·meanSquare + (1 − ρ)·g²; param −= lr·g/√(meanSquare + eps).
template <typename T>
__device__ void rmsprop_step(T* param, const T* grad, T* meanSquare, double lr, double rho, double eps,
                             double gradScale, long long n)
{
    T tlr = (T)lr, trho = (T)rho, teps = (T)eps, ts = (T)gradScale;
    T oneMinusRho = (T)1 - trho;
    GRID_STRIDE(i, n)
    {
        T g = ts * grad[i];
        T ms = trho * meanSquare[i] + oneMinusRho * g * g;
        meanSquare[i] = ms;
        param[i] -= tlr * g / sqrt_t(ms + teps);
    }
}
EXPORT_FLOAT_KERNELS(rmsprop_step,
                     (T* param, const T* grad, T* meanSquare, double lr, double rho, double eps, double gradScale,
                      long long n),
                     (param, grad, meanSquare, lr, rho, eps, gradScale, n))
