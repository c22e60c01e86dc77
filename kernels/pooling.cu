// Valid max pooling with a square window and stride, matching the CPU reference exactly: the first
// maximum in row-major window order wins (strict >), and the backward pass is a gather per input
// element that adds its windows' gradients in row-major output order, so sums are deterministic and
// bit-identical to the CPU's scatter.
#include "common.cuh"

// x: [P, H, W] planes, y and argmax: [P, Ho, Wo]; argmax holds the winner's flat index h·W + w.
template <typename T>
__device__ void maxpool_forward(const T* x, T* y, int* argmax, int h, int w, int ho, int wo, int window, int stride,
                                long long n)
{
    GRID_STRIDE(i, n)
    {
        int oj = (int)(i % wo);
        long long rest = i / wo;
        int oi = (int)(rest % ho);
        long long plane = rest / ho;
        const T* xp = x + plane * h * w;
        int r0 = oi * stride, c0 = oj * stride;
        int best = r0 * w + c0;
        T bestValue = xp[best];
        for (int p = 0; p < window; p++)
            for (int q = 0; q < window; q++)
            {
                int at = (r0 + p) * w + (c0 + q);
                T v = xp[at];
                if (v > bestValue) { bestValue = v; best = at; }
            }
        y[i] = bestValue;
        argmax[i] = best;
    }
}
EXPORT_FLOAT_KERNELS(maxpool_forward,
                     (const T* x, T* y, int* argmax, int h, int w, int ho, int wo, int window, int stride, long long n),
                     (x, y, argmax, h, w, ho, wo, window, stride, n))

// dx[p, r, c] = Σ dy[p, i, j] over the windows (i, j) that contain (r, c) and chose it, in row-major
// (i, j) order. n = numel(dx).
template <typename T>
__device__ void maxpool_backward(const T* dy, const int* argmax, T* dx, int h, int w, int ho, int wo, int window,
                                 int stride, long long n)
{
    GRID_STRIDE(i, n)
    {
        int c = (int)(i % w);
        long long rest = i / w;
        int r = (int)(rest % h);
        long long plane = rest / h;
        int self = r * w + c;
        // Windows i with i·stride ≤ r ≤ i·stride + window − 1.
        int iFirst = r >= window ? (r - window) / stride + 1 : 0;
        int iLast = r / stride < ho - 1 ? r / stride : ho - 1;
        int jFirst = c >= window ? (c - window) / stride + 1 : 0;
        int jLast = c / stride < wo - 1 ? c / stride : wo - 1;
        const T* dyp = dy + plane * ho * wo;
        const int* ap = argmax + plane * ho * wo;
        T sum = (T)0;
        for (int oi = iFirst; oi <= iLast; oi++)
            for (int oj = jFirst; oj <= jLast; oj++)
            {
                int at = oi * wo + oj;
                if (ap[at] == self) sum += dyp[at];
            }
        dx[i] = sum;
    }
}
EXPORT_FLOAT_KERNELS(maxpool_backward,
                     (const T* dy, const int* argmax, T* dx, int h, int w, int ho, int wo, int window, int stride,
                      long long n),
                     (dy, argmax, dx, h, w, ho, wo, window, stride, n))

// Fallback when the pooling geometry of `argmax` is unknown: one thread per plane scatters in
// row-major output order (the CPU's order). dx must be zeroed first. n = number of planes.
template <typename T>
__device__ void maxpool_backward_scatter(const T* dy, const int* argmax, T* dx, long long planeIn, long long planeOut,
                                         long long n)
{
    GRID_STRIDE(p, n)
    {
        const T* dyp = dy + p * planeOut;
        const int* ap = argmax + p * planeOut;
        T* dxp = dx + p * planeIn;
        for (long long o = 0; o < planeOut; o++)
            if (ap[o] >= 0 && ap[o] < planeIn) dxp[ap[o]] += dyp[o];
    }
}
EXPORT_FLOAT_KERNELS(maxpool_backward_scatter,
                     (const T* dy, const int* argmax, T* dx, long long planeIn, long long planeOut, long long n),
                     (dy, argmax, dx, planeIn, planeOut, n))
