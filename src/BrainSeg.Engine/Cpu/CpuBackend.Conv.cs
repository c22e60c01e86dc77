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
        var dt = FloatType("Gemm", a, b, c);
        ExpectRank("Gemm", a, "a", 2);
        ExpectRank("Gemm", b, "b", 2);
        ExpectRank("Gemm", c, "c", 2);
        int m = transposeA ? a.Shape[1] : a.Shape[0], k = transposeA ? a.Shape[0] : a.Shape[1];
        int kb = transposeB ? b.Shape[1] : b.Shape[0], n = transposeB ? b.Shape[0] : b.Shape[1];
        if (k != kb || c.Shape[0] != m || c.Shape[1] != n)
            throw new ArgumentException($"Gemm: op(a) is [{m}, {k}] and op(b) is [{kb}, {n}], which do not multiply into c {c.Shape}.");
        if (dt == DType.Float32)
            Sgemm.Multiply(this, transposeA, transposeB, m, n, k, (float)alpha, a.HostArray<float>(), b.HostArray<float>(), (float)beta, c.HostArray<float>());
        else
            GemmSimple(transposeA, transposeB, m, n, k, alpha, a.HostArray<double>(), b.HostArray<double>(), beta, c.HostArray<double>());
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

    private static ConvGeometry Geometry(string op, Tensor x, Tensor w, Tensor y, Conv2dSpec spec)
    {
        ExpectRank(op, x, "input", 4);
        ExpectRank(op, w, "filter", 4);
        ExpectRank(op, y, "output", 4);
        if (spec.Dilation < 1 || spec.Padding < 0)
            throw new ArgumentException($"{op}: dilation must be ≥ 1 and padding ≥ 0, got {spec}.");
        if (w.Shape.C != x.Shape.C)
            throw new ArgumentException($"{op}: input {x.Shape} has {x.Shape.C} channels but filter {w.Shape} expects {w.Shape.C}.");
        int ho = spec.OutputSize(x.Shape.H, w.Shape.H), wo = spec.OutputSize(x.Shape.W, w.Shape.W);
        if (ho <= 0 || wo <= 0)
            throw new ArgumentException($"{op}: input {x.Shape} is smaller than the dilated filter {w.Shape} ({spec}).");
        ExpectShape(op, y, new Shape(x.Shape.N, w.Shape.N, ho, wo), "output");
        return new ConvGeometry(x.Shape.N, x.Shape.C, x.Shape.H, x.Shape.W, w.Shape.N, w.Shape.H, w.Shape.W, ho, wo, spec.Dilation, spec.Padding);
    }

    public void Conv2dForward(Tensor x, Tensor w, Tensor y, Conv2dSpec spec)
    {
        var dt = FloatType("Conv2dForward", x, w, y);
        var g = Geometry("Conv2dForward", x, w, y, spec);
        if (dt == DType.Float32) ConvForwardFast(g, x.HostArray<float>(), w.HostArray<float>(), y.HostArray<float>());
        else ConvForwardDirect(g, x.HostArray<double>(), w.HostArray<double>(), y.HostArray<double>());
    }

    public void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, Conv2dSpec spec)
    {
        var dt = FloatType("Conv2dBackwardData", dy, w, dx);
        var g = Geometry("Conv2dBackwardData", dx, w, dy, spec);
        if (dt == DType.Float32) ConvBackwardDataFast(g, dy.HostArray<float>(), w.HostArray<float>(), dx.HostArray<float>());
        else ConvBackwardDataDirect(g, dy.HostArray<double>(), w.HostArray<double>(), dx.HostArray<double>());
    }

    public void Conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Conv2dSpec spec)
    {
        var dt = FloatType("Conv2dBackwardFilter", x, dy, dw);
        var g = Geometry("Conv2dBackwardFilter", x, dw, dy, spec);
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

    private static (int Channels, int Plane) ChannelLayout(string op, Tensor t, Tensor perChannel, string role)
    {
        ExpectRank(op, t, "data", 2, 4);
        ExpectRank(op, perChannel, role, 1);
        var channels = t.Shape[1];
        if (perChannel.Shape[0] != channels)
            throw new ArgumentException($"{op}: {role} {perChannel.Shape} does not match the {channels} channels of {t.Shape}.");
        return (channels, t.Shape.Rank == 4 ? t.Shape.H * t.Shape.W : 1);
    }

    public void AddChannelBias(Tensor y, Tensor bias)
    {
        var dt = FloatType("AddChannelBias", y, bias);
        var (channels, plane) = ChannelLayout("AddChannelBias", y, bias, "bias");
        if (dt == DType.Float32) AddChannelBias(y.HostArray<float>(), bias.HostArray<float>(), y.Shape[0], channels, plane);
        else AddChannelBias(y.HostArray<double>(), bias.HostArray<double>(), y.Shape[0], channels, plane);
    }

    private void AddChannelBias<T>(T[] y, T[] bias, int batch, int channels, int plane) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (plane == 1)
        {
            for (var n = 0; n < batch; n++)
                TensorPrimitives.Add(y.AsSpan(n * channels, channels), bias.AsSpan(0, channels), y.AsSpan(n * channels, channels));
            return;
        }
        For(batch * channels, nc =>
        {
            var yp = y.AsSpan(nc * plane, plane);
            TensorPrimitives.Add(yp, bias[nc % channels], yp);
        });
    }

    public void ChannelSum(Tensor dy, Tensor db)
    {
        var dt = FloatType("ChannelSum", dy, db);
        var (channels, plane) = ChannelLayout("ChannelSum", dy, db, "db");
        int batch = dy.Shape[0];
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
