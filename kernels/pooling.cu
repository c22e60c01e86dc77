// Valid max pooling with a square window and stride, matching the CPU reference exactly: the first
// maximum in row-major window order wins (strict >), and the backward pass is a gather per input
// element that adds its windows' gradients in row-major output order, so sums are deterministic and
// bit-identical to the CPU's scatter.
#include "common.cuh"

// x: [N, C, H, W], y and argmax: [N, C, Ho, Wo], all in one layout (nhwc: channels-last); argmax holds the
// winner's index h·W + w within its plane, whatever the layout. n = numel(y), walked in y's memory order.
template <typename T>
__device__ void maxpool_forward(const T* x, T* y, int* argmax, int channels, int h, int w, int ho, int wo, int window, int stride,
                                long long n, int nhwc)
{
    GRID_STRIDE(i, n)
    {
        Ncs at = unravel_ncs(i, channels, (long long)ho * wo, nhwc);
        int oi = (int)(at.s / wo), oj = (int)(at.s - (long long)oi * wo);
        long long plane = (long long)h * w;
        int r0 = oi * stride, c0 = oj * stride;
        int best = r0 * w + c0;
        T bestValue = x[ravel_ncs(at.n, at.c, best, channels, plane, nhwc)];
        for (int p = 0; p < window; p++)
            for (int q = 0; q < window; q++)
            {
                int s = (r0 + p) * w + (c0 + q);
                T v = x[ravel_ncs(at.n, at.c, s, channels, plane, nhwc)];
                if (v > bestValue) { bestValue = v; best = s; }
            }
        y[i] = bestValue;
        argmax[i] = best;
    }
}
EXPORT_FLOAT_KERNELS(maxpool_forward,
                     (const T* x, T* y, int* argmax, int channels, int h, int w, int ho, int wo, int window, int stride, long long n,
                      int nhwc),
                     (x, y, argmax, channels, h, w, ho, wo, window, stride, n, nhwc))

// dx[n, c, r, col] = Σ dy[n, c, i, j] over the windows (i, j) that contain (r, col) and chose it, in row-major
// (i, j) order. n = numel(dx), walked in dx's memory order.
template <typename T>
__device__ void maxpool_backward(const T* dy, const int* argmax, T* dx, int channels, int h, int w, int ho, int wo, int window,
                                 int stride, long long n, int nhwc)
{
    GRID_STRIDE(i, n)
    {
        Ncs at = unravel_ncs(i, channels, (long long)h * w, nhwc);
        int r = (int)(at.s / w), c = (int)(at.s - (long long)r * w);
        int self = r * w + c;
        // Windows i with i·stride ≤ r ≤ i·stride + window − 1.
        int iFirst = r >= window ? (r - window) / stride + 1 : 0;
        int iLast = r / stride < ho - 1 ? r / stride : ho - 1;
        int jFirst = c >= window ? (c - window) / stride + 1 : 0;
        int jLast = c / stride < wo - 1 ? c / stride : wo - 1;
        T sum = (T)0;
        for (int oi = iFirst; oi <= iLast; oi++)
            for (int oj = jFirst; oj <= jLast; oj++)
            {
                long long o = ravel_ncs(at.n, at.c, (long long)oi * wo + oj, channels, (long long)ho * wo, nhwc);
                if (argmax[o] == self) sum += dy[o];
            }
        dx[i] = sum;
    }
}
EXPORT_FLOAT_KERNELS(maxpool_backward,
                     (const T* dy, const int* argmax, T* dx, int channels, int h, int w, int ho, int wo, int window, int stride,
                      long long n, int nhwc),
                     (dy, argmax, dx, channels, h, w, ho, wo, window, stride, n, nhwc))

// Fallback when the pooling geometry of `argmax` is unknown: one thread per plane (n, c) scatters in row-major
// output order (the CPU's order). dx must be zeroed first. n = number of planes.
template <typename T>
__device__ void maxpool_backward_scatter(const T* dy, const int* argmax, T* dx, int channels, long long planeIn, long long planeOut,
                                         long long n, int nhwc)
{
    GRID_STRIDE(p, n)
    {
        long long batch = p / channels;
        int c = (int)(p - batch * channels);
        for (long long o = 0; o < planeOut; o++)
        {
            long long from = ravel_ncs(batch, c, o, channels, planeOut, nhwc);
            int a = argmax[from];
            if (a >= 0 && a < planeIn) dx[ravel_ncs(batch, c, a, channels, planeIn, nhwc)] += dy[from];
        }
    }
}
EXPORT_FLOAT_KERNELS(maxpool_backward_scatter,
                     (const T* dy, const int* argmax, T* dx, int channels, long long planeIn, long long planeOut, long long n,
                      int nhwc),
                     (dy, argmax, dx, channels, planeIn, planeOut, n, nhwc))
