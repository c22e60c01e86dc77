using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace BrainSeg.Engine.Cpu;

// Linear algebra and convolution: forward and backward side by side.
public sealed partial class CpuBackend
{
    // ---- GEMM ----

    public void Gemm(bool transposeA, bool transposeB, double alpha, Tensor a, Tensor b, double beta, Tensor c)
    {
        var (dt, m, n, k) = OpChecks.Gemm(this, transposeA, transposeB, a, b, c);
        if (dt == DType.Float32)
            Sgemm.Multiply(this, transposeA, transposeB, m, n, k, (float)alpha, a.HostArray<float>(), b.HostArray<float>(), (float)beta, c.HostArray<float>());
        else
            GemmSimple(transposeA, transposeB, m, n, k, alpha, a.HostArray<double>(), b.HostArray<double>(), beta, c.HostArray<double>());
    }

    /// <summary>c[cOff..] += alpha·A·B with strided operands, cut across threads when <paramref name="parallel"/>.</summary>
    internal unsafe void GemmAccumulate<TB>(bool parallel, int m, int n, int k, float alpha,
        float[] a, long aOff, int rsA, int csA, TB b, float[] c, long cOff, int ldc) where TB : struct, IPanelSource
    {
        if (m == 0 || n == 0 || k == 0 || alpha == 0) return;
        var (tasks, byColumns) = parallel ? Sgemm.Split(Threads, m, n, k) : (1, true);
        For(tasks, t =>
        {
            int i0 = 0, i1 = m, j0 = 0, j1 = n;
            if (byColumns) (j0, j1) = Sgemm.Range(n, Sgemm.NR, tasks, t);
            else (i0, i1) = Sgemm.Range(m, Sgemm.MR, tasks, t);
            if (i1 <= i0 || j1 <= j0) return;
            fixed (float* pa = a, pc = c)
                Sgemm.Accumulate(i1 - i0, j1 - j0, k, alpha, pa + aOff + (long)i0 * rsA, rsA, csA, b, j0,
                    pc + cOff + (long)i0 * ldc + j0, ldc);
        });
    }

    internal void GemmSimpleFloat(bool ta, bool tb, int m, int n, int k, float alpha, float[] a, float[] b, float beta, float[] c) =>
        GemmSimple(ta, tb, m, n, k, alpha, a, b, beta, c);

    /// <summary>Row-parallel GEMM built on vectorised axpy and dot products (the Float64 path).</summary>
    private void GemmSimple<T>(bool ta, bool tb, int m, int n, int k, T alpha, T[] a, T[] b, T beta, T[] c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        For(m, i =>
        {
            var crow = c.AsSpan(i * n, n);
            if (beta == T.Zero) crow.Clear();
            else if (beta != T.One) TensorPrimitives.Multiply(crow, beta, crow);
            if (k == 0 || alpha == T.Zero) return;
            var rented = ta ? ArrayPool<T>.Shared.Rent(k) : null;
            ReadOnlySpan<T> arow;
            if (ta)
            {
                for (var p = 0; p < k; p++) rented![p] = a[p * m + i];
                arow = rented.AsSpan(0, k);
            }
            else arow = a.AsSpan(i * k, k);

            if (tb)
                for (var j = 0; j < n; j++) crow[j] += alpha * TensorPrimitives.Dot(arow, b.AsSpan(j * k, k));
            else
                for (var p = 0; p < k; p++)
                    TensorPrimitives.MultiplyAdd(b.AsSpan(p * n, n), alpha * arow[p], crow, crow);
            if (rented is not null) ArrayPool<T>.Shared.Return(rented);
        });
    }

    // ---- convolution ----

    /// <summary>Sizes of one stride-1 convolution, validated once.</summary>
    private readonly record struct ConvGeometry(int N, int C, int H, int W, int K, int R, int S, int Ho, int Wo, int Dilation, int Pad)
    {
        /// <summary>Output columns j whose input column j + q·d − pad lies inside [0, W).</summary>
        public (int J0, int J1, int Shift) Columns(int q)
        {
            var shift = q * Dilation - Pad;
            return (Math.Max(0, -shift), Math.Min(Wo, W - shift), shift);
        }

        public long Flops => 2L * N * K * C * R * S * Ho * Wo;
    }

    /// <summary>The geometry of input x, filter w and output y, once OpChecks has validated them.</summary>
    private static ConvGeometry Geometry(Tensor x, Tensor w, Tensor y, Conv2dSpec spec) =>
        new(x.Shape.N, x.Shape.C, x.Shape.H, x.Shape.W, w.Shape.N, w.Shape.H, w.Shape.W, y.Shape.H, y.Shape.W, spec.Dilation, spec.Padding);

    public void Conv2dForward(Tensor x, Tensor w, Tensor y, Conv2dSpec spec, Tensor? bias = null, bool relu = false)
    {
        var dt = OpChecks.Conv2dForward(this, x, w, y, spec, bias);
        var g = Geometry(x, w, y, spec);
        if (dt == DType.Float32)
            ConvForwardFast(g, x.HostArray<float>(), w.HostArray<float>(), y.HostArray<float>(), bias?.HostArray<float>(), relu);
        else
        {
            ConvForwardDirect(g, x.HostArray<double>(), w.HostArray<double>(), y.HostArray<double>());
            BiasAndRelu(y.HostArray<double>(), bias?.HostArray<double>(), g.N, g.K, g.Ho * g.Wo, relu);
        }
    }

    public void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, Conv2dSpec spec, Tensor? x = null)
    {
        var dt = OpChecks.Conv2dBackwardData(this, dy, w, dx, spec);
        var g = Geometry(dx, w, dy, spec);
        if (dt == DType.Float32) ConvBackwardDataFast(g, dy.HostArray<float>(), w.HostArray<float>(), dx.HostArray<float>());
        else ConvBackwardDataDirect(g, dy.HostArray<double>(), w.HostArray<double>(), dx.HostArray<double>());
    }

    public void Conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Conv2dSpec spec)
    {
        var dt = OpChecks.Conv2dBackwardFilter(this, x, dy, dw, spec);
        var g = Geometry(x, dw, dy, spec);
        if (dt == DType.Float32) ConvBackwardFilterFast(g, x.HostArray<float>(), dy.HostArray<float>(), dw.HostArray<float>());
        else ConvBackwardFilterDirect(g, x.HostArray<double>(), dy.HostArray<double>(), dw.HostArray<double>());
    }

    // Direct convolution: each (filter tap, output row) pair is one vectorised axpy over a row segment.

    /// <summary>y[n,k] = Σ_c,p,q w[k,c,p,q] · shifted x[n,c], one (n,k) output plane per task.</summary>
    private void ConvForwardDirect<T>(ConvGeometry g, T[] x, T[] w, T[] y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        For(g.N * g.K, nk =>
        {
            int n = nk / g.K, k = nk % g.K;
            var yPlane = y.AsSpan(nk * g.Ho * g.Wo, g.Ho * g.Wo);
            yPlane.Clear();
            for (var c = 0; c < g.C; c++)
                for (var p = 0; p < g.R; p++)
                    for (var q = 0; q < g.S; q++)
                    {
                        var wv = w[((k * g.C + c) * g.R + p) * g.S + q];
                        var (j0, j1, shift) = g.Columns(q);
                        if (j0 >= j1) continue;
                        for (var i = 0; i < g.Ho; i++)
                        {
                            var xi = i + p * g.Dilation - g.Pad;
                            if ((uint)xi >= (uint)g.H) continue;
                            var xr = x.AsSpan(((n * g.C + c) * g.H + xi) * g.W + j0 + shift, j1 - j0);
                            var yr = yPlane.Slice(i * g.Wo + j0, j1 - j0);
                            TensorPrimitives.MultiplyAdd(xr, wv, yr, yr);
                        }
                    }
        });
    }

    /// <summary>dx[n,c] = Σ_k,p,q w[k,c,p,q] · dy[n,k] shifted back, one (n,c) input plane per task.</summary>
    private void ConvBackwardDataDirect<T>(ConvGeometry g, T[] dy, T[] w, T[] dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        For(g.N * g.C, nc =>
        {
            int n = nc / g.C, c = nc % g.C;
            var dxPlane = dx.AsSpan(nc * g.H * g.W, g.H * g.W);
            dxPlane.Clear();
            for (var k = 0; k < g.K; k++)
                for (var p = 0; p < g.R; p++)
                    for (var q = 0; q < g.S; q++)
                    {
                        var wv = w[((k * g.C + c) * g.R + p) * g.S + q];
                        var (j0, j1, shift) = g.Columns(q);
                        if (j0 >= j1) continue;
                        for (var i = 0; i < g.Ho; i++)
                        {
                            var xi = i + p * g.Dilation - g.Pad;
                            if ((uint)xi >= (uint)g.H) continue;
                            var dyr = dy.AsSpan(((n * g.K + k) * g.Ho + i) * g.Wo + j0, j1 - j0);
                            var dxr = dxPlane.Slice(xi * g.W + j0 + shift, j1 - j0);
                            TensorPrimitives.MultiplyAdd(dyr, wv, dxr, dxr);
                        }
                    }
        });
    }

    /// <summary>dw[k,c,p,q] = Σ_n,i,j x[n,c,i+p·d−pad,j+q·d−pad] · dy[n,k,i,j], one (k,c) filter slice per task.</summary>
    private void ConvBackwardFilterDirect<T>(ConvGeometry g, T[] x, T[] dy, T[] dw) where T : unmanaged, IFloatingPointIeee754<T>
    {
        For(g.K * g.C, kc =>
        {
            int k = kc / g.C, c = kc % g.C;
            for (var p = 0; p < g.R; p++)
                for (var q = 0; q < g.S; q++)
                {
                    var (j0, j1, shift) = g.Columns(q);
                    var sum = T.Zero;
                    if (j0 < j1)
                        for (var n = 0; n < g.N; n++)
                            for (var i = 0; i < g.Ho; i++)
                            {
                                var xi = i + p * g.Dilation - g.Pad;
                                if ((uint)xi >= (uint)g.H) continue;
                                var xr = x.AsSpan(((n * g.C + c) * g.H + xi) * g.W + j0 + shift, j1 - j0);
                                var dyr = dy.AsSpan(((n * g.K + k) * g.Ho + i) * g.Wo + j0, j1 - j0);
                                sum += TensorPrimitives.Dot(xr, dyr);
                            }
                    dw[((k * g.C + c) * g.R + p) * g.S + q] = sum;
                }
        });
    }

    // ---- bias ----

    public void AddChannelBias(Tensor y, Tensor bias)
    {
        var (dt, channels, plane) = OpChecks.AddChannelBias(this, y, bias);
        if (dt == DType.Float32) AddChannelBias(y.HostArray<float>(), bias.HostArray<float>(), y.Shape[0], channels, (int)plane);
        else AddChannelBias(y.HostArray<double>(), bias.HostArray<double>(), y.Shape[0], channels, (int)plane);
    }

    private void AddChannelBias<T>(T[] y, T[] bias, int batch, int channels, int plane) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (plane == 1)
        {
            for (var n = 0; n < batch; n++)
                TensorPrimitives.Add(y.AsSpan(n * channels, channels), bias.AsSpan(0, channels), y.AsSpan(n * channels, channels));
            return;
        }
        BiasAndRelu(y, bias, batch, channels, plane, relu: false);
    }

    /// <summary>y[n,c] += bias[c] (when given), then ReLU (when asked), in place, plane by plane.</summary>
    private void BiasAndRelu<T>(T[] y, T[]? bias, int batch, int channels, int plane, bool relu) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (bias is null && !relu) return;
        For(batch * channels, nc =>
        {
            var yp = y.AsSpan(nc * plane, plane);
            if (bias is not null) TensorPrimitives.Add(yp, bias[nc % channels], yp);
            if (relu) Relu<T>(yp, yp);
        });
    }

    public void ChannelSum(Tensor dy, Tensor db)
    {
        var (dt, channels, inner) = OpChecks.ChannelSum(this, dy, db);
        int batch = dy.Shape[0], plane = (int)inner;
        if (dt == DType.Float32)
        {
            float[] src = dy.HostArray<float>(), dst = db.HostArray<float>();
            For(channels, c =>
            {
                double sum = 0;
                for (var n = 0; n < batch; n++) sum += SumAsDouble(src.AsSpan((n * channels + c) * plane, plane));
                dst[c] = (float)sum;
            });
        }
        else
        {
            double[] src = dy.HostArray<double>(), dst = db.HostArray<double>();
            For(channels, c =>
            {
                double sum = 0;
                for (var n = 0; n < batch; n++) sum += TensorPrimitives.Sum<double>(src.AsSpan((n * channels + c) * plane, plane));
                dst[c] = sum;
            });
        }
    }

    /// <summary>A float sum accumulated in double (in fixed order, so deterministic).</summary>
    private static double SumAsDouble(ReadOnlySpan<float> values)
    {
        double sum = 0;
        foreach (var v in values) sum += v;
        return sum;
    }
}
