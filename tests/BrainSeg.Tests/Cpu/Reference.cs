using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;

namespace BrainSeg.Tests.Cpu;

/// <summary>Naive float64 loops that restate the op contracts, and helpers for the CPU tests.</summary>
internal static class Reference
{
    public static readonly CpuBackend Backend = CpuBackend.Instance;

    public static Tensor F32(float[] data, params int[] shape) => Tensor.FromHost(Backend, data, shape);
    public static Tensor F64(double[] data, params int[] shape) => Tensor.FromHost(Backend, data, shape);
    public static Tensor I32(int[] data, params int[] shape) => Tensor.FromHost(Backend, data, shape);

    public static Tensor Make(double[] values, DType dt, params int[] shape) =>
        dt == DType.Float32 ? F32(ToFloat(values), shape) : F64(values, shape);

    /// <summary>For float32 inputs the reference must see the same rounded inputs, so compare on the float values.</summary>
    public static double[] Values(Tensor t) => t.ToHostDoubles();

    public static double[] Random(int count, int seed, double scale = 1)
    {
        var rng = new System.Random(seed);
        var v = new double[count];
        for (var i = 0; i < count; i++) v[i] = (rng.NextDouble() * 2 - 1) * scale;
        return v;
    }

    public static float[] ToFloat(double[] v) => Array.ConvertAll(v, x => (float)x);
    public static double[] ToDouble(float[] v) => Array.ConvertAll(v, x => (double)x);

    public static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (var i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>max |a − b| / max |b|: the error relative to the result's scale.</summary>
    public static double RelativeError(double[] a, double[] b)
    {
        double diff = 0, scale = 0;
        for (var i = 0; i < a.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs(a[i] - b[i]));
            scale = Math.Max(scale, Math.Abs(b[i]));
        }
        return diff / Math.Max(scale, 1e-300);
    }

    /// <summary>The convolution contract, term by term: y[n,k,i,j] = Σ x[n,c,i+p·d−pad,j+q·d−pad]·w[k,c,p,q].</summary>
    public static double[] Conv(double[] x, double[] w, int n, int c, int h, int wd, int k, int r, int s, Conv2dSpec spec)
    {
        int ho = spec.OutputSize(h, r), wo = spec.OutputSize(wd, s);
        var y = new double[n * k * ho * wo];
        for (var b = 0; b < n; b++)
            for (var o = 0; o < k; o++)
                for (var i = 0; i < ho; i++)
                    for (var j = 0; j < wo; j++)
                    {
                        double sum = 0;
                        for (var ch = 0; ch < c; ch++)
                            for (var p = 0; p < r; p++)
                                for (var q = 0; q < s; q++)
                                {
                                    int xi = i + p * spec.Dilation - spec.Padding, xj = j + q * spec.Dilation - spec.Padding;
                                    if (xi < 0 || xi >= h || xj < 0 || xj >= wd) continue;
                                    sum += x[((b * c + ch) * h + xi) * wd + xj] * w[((o * c + ch) * r + p) * s + q];
                                }
                        y[((b * k + o) * ho + i) * wo + j] = sum;
                    }
        return y;
    }

    /// <summary>c = alpha·op(a)·op(b) + beta·c.</summary>
    public static double[] Gemm(bool ta, bool tb, int m, int n, int k, double alpha, double[] a, double[] b, double beta, double[] c)
    {
        var result = new double[m * n];
        for (var i = 0; i < m; i++)
            for (var j = 0; j < n; j++)
            {
                double sum = 0;
                for (var p = 0; p < k; p++)
                    sum += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
                result[i * n + j] = alpha * sum + (beta == 0 ? 0 : beta * c[i * n + j]);
            }
        return result;
    }
}
