using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BrainSeg.Engine.Cpu;

// Batch normalisation, activations, dropout and pooling: forward and backward side by side.
public sealed partial class CpuBackend
{
    // ---- batch normalisation: in double (NormPlanes), statistics as shifted moments in one pass ----

    public void BatchNormForwardTraining(Tensor x, Tensor? gamma, Tensor beta, Tensor y,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, double momentum, double eps, bool relu = false)
    {
        var dt = OpChecks.BatchNormForwardTraining(this, x, gamma, beta, y, runningMean, runningVar, saveMean, saveInvStd);
        var s = x.Shape;
        if (dt == DType.Float32)
            BatchNormTraining(s, x.HostArray<float>(), gamma?.HostArray<float>(), beta.HostArray<float>(), y.HostArray<float>(),
                runningMean.HostArray<float>(), runningVar.HostArray<float>(), saveMean.HostArray<float>(), saveInvStd.HostArray<float>(), momentum, eps, relu);
        else
            BatchNormTraining(s, x.HostArray<double>(), gamma?.HostArray<double>(), beta.HostArray<double>(), y.HostArray<double>(),
                runningMean.HostArray<double>(), runningVar.HostArray<double>(), saveMean.HostArray<double>(), saveInvStd.HostArray<double>(), momentum, eps, relu);
    }

    private void BatchNormTraining<T>(Shape s, T[] x, T[]? gamma, T[] beta, T[] y, T[] runningMean, T[] runningVar,
        T[] saveMean, T[] saveInvStd, double momentum, double eps, bool relu) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int batch = s.N, channels = s.C, plane = s.H * s.W;
        long count = (long)batch * plane;
        For(channels, c =>
        {
            double shift = double.CreateTruncating(x[c * plane]), sum = 0, squares = 0;
            for (var n = 0; n < batch; n++)
            {
                var (s1, s2) = NormPlanes.ShiftedMoments<T>(x.AsSpan((n * channels + c) * plane, plane), shift);
                sum += s1;
                squares += s2;
            }
            var mean = shift + sum / count;
            var variance = Math.Max(0, squares / count - sum / count * (sum / count));
            var invStd = 1 / Math.Sqrt(variance + eps);
            saveMean[c] = T.CreateTruncating(mean);
            saveInvStd[c] = T.CreateTruncating(invStd);
            runningMean[c] = T.CreateTruncating((1 - momentum) * double.CreateTruncating(runningMean[c]) + momentum * mean);
            runningVar[c] = T.CreateTruncating((1 - momentum) * double.CreateTruncating(runningVar[c]) + momentum * variance * count / (count - 1));
            var (savedMean, scale, offset) = SavedAffine(gamma, beta, saveMean, saveInvStd, c);
            Normalise(x, y, c, channels, plane, batch, savedMean, scale, offset, relu);
        });
    }

    /// <summary>
    /// The training normalisation y = (x − mean)·scale + shift from the statistics as saved in T, not their double
    /// originals: the backward has only the saved ones, and recomputes the fused ReLU's mask from them bit for bit.
    /// </summary>
    private static (double Mean, double Scale, double Shift) SavedAffine<T>(T[]? gamma, T[] beta, T[] saveMean, T[] saveInvStd, int c)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        (double.CreateTruncating(saveMean[c]), (gamma is null ? 1 : double.CreateTruncating(gamma[c])) * double.CreateTruncating(saveInvStd[c]),
            double.CreateTruncating(beta[c]));

    /// <summary>
    /// y = (x − mean)·scale + shift over every plane of channel c. The fused ReLU is <see cref="Relu{T}"/> of the
    /// rounded value, as in <see cref="ReluForward"/>, so fused and unfused agree bit for bit.
    /// </summary>
    private static void Normalise<T>(T[] x, T[] y, int c, int channels, int plane, int batch, double mean, double scale, double shift, bool relu)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (var n = 0; n < batch; n++)
        {
            var at = (n * channels + c) * plane;
            Span<T> ys = y.AsSpan(at, plane);
            NormPlanes.Normalise<T>(x.AsSpan(at, plane), ys, mean, scale, shift);
            if (relu) Relu<T>(ys, ys);
        }
    }

    public void BatchNormForwardInference(Tensor x, Tensor? gamma, Tensor beta, Tensor y, Tensor runningMean, Tensor runningVar, double eps, bool relu = false)
    {
        var dt = OpChecks.BatchNormForwardInference(this, x, gamma, beta, y, runningMean, runningVar);
        if (dt == DType.Float32)
            BatchNormInference(x.Shape, x.HostArray<float>(), gamma?.HostArray<float>(), beta.HostArray<float>(), y.HostArray<float>(),
                runningMean.HostArray<float>(), runningVar.HostArray<float>(), eps, relu);
        else
            BatchNormInference(x.Shape, x.HostArray<double>(), gamma?.HostArray<double>(), beta.HostArray<double>(), y.HostArray<double>(),
                runningMean.HostArray<double>(), runningVar.HostArray<double>(), eps, relu);
    }

    private void BatchNormInference<T>(Shape s, T[] x, T[]? gamma, T[] beta, T[] y, T[] runningMean, T[] runningVar, double eps, bool relu)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        For(s.C, c =>
        {
            var invStd = 1 / Math.Sqrt(double.CreateTruncating(runningVar[c]) + eps);
            var scale = (gamma is null ? 1 : double.CreateTruncating(gamma[c])) * invStd;
            Normalise(x, y, c, s.C, s.H * s.W, s.N, double.CreateTruncating(runningMean[c]), scale, double.CreateTruncating(beta[c]), relu);
        });
    }

    public void BatchNormBackward(Tensor x, Tensor dy, Tensor? gamma, Tensor beta, Tensor saveMean, Tensor saveInvStd, Tensor dx, Tensor? dgamma,
        Tensor dbeta, bool relu = false)
    {
        var dt = OpChecks.BatchNormBackward(this, x, dy, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta);
        if (dt == DType.Float32)
            BatchNormBackward(x.Shape, x.HostArray<float>(), dy.HostArray<float>(), gamma?.HostArray<float>(), beta.HostArray<float>(),
                saveMean.HostArray<float>(), saveInvStd.HostArray<float>(), dx.HostArray<float>(), gamma is null ? null : dgamma?.HostArray<float>(),
                dbeta.HostArray<float>(), relu);
        else
            BatchNormBackward(x.Shape, x.HostArray<double>(), dy.HostArray<double>(), gamma?.HostArray<double>(), beta.HostArray<double>(),
                saveMean.HostArray<double>(), saveInvStd.HostArray<double>(), dx.HostArray<double>(), gamma is null ? null : dgamma?.HostArray<double>(),
                dbeta.HostArray<double>(), relu);
    }

    /// <summary>
    /// With x̂ = (x − μ)·invStd: dβ = Σ dy, dγ = Σ dy·x̂, dx = γ·invStd/M · (M·dy − dβ − x̂·dγ). Behind a fused
    /// ReLU, dy is first zeroed where the forward's output was not positive (the rule of <see cref="ReluBackward"/>),
    /// that output recomputed from x exactly as <see cref="BatchNormTraining{T}"/> rounded it.
    /// </summary>
    private void BatchNormBackward<T>(Shape s, T[] x, T[] dy, T[]? gamma, T[] beta, T[] saveMean, T[] saveInvStd, T[] dx, T[]? dgamma, T[] dbeta,
        bool relu) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int batch = s.N, channels = s.C, plane = s.H * s.W;
        long count = (long)batch * plane;
        For(channels, c =>
        {
            double mean = double.CreateTruncating(saveMean[c]), invStd = double.CreateTruncating(saveInvStd[c]);
            var (_, scale, shift) = SavedAffine(gamma, beta, saveMean, saveInvStd, c);
            var gate = relu ? NormPlanes.ReluGate.Of<T>(scale, shift) : NormPlanes.ReluGate.Open;
            double sumDy = 0, sumDyXhat = 0;
            for (var n = 0; n < batch; n++)
            {
                var at = (n * channels + c) * plane;
                var (g, gx) = NormPlanes.GradientSums<T>(x.AsSpan(at, plane), dy.AsSpan(at, plane), mean, invStd, gate);
                sumDy += g;
                sumDyXhat += gx;
            }
            dbeta[c] = T.CreateTruncating(sumDy);
            if (dgamma is not null) dgamma[c] = T.CreateTruncating(sumDyXhat);
            var k = (gamma is null ? 1 : double.CreateTruncating(gamma[c])) * invStd / count;
            for (var n = 0; n < batch; n++)
            {
                var at = (n * channels + c) * plane;
                NormPlanes.InputGradient<T>(x.AsSpan(at, plane), dy.AsSpan(at, plane), dx.AsSpan(at, plane), mean, invStd, count, sumDy, sumDyXhat, k, gate);
            }
        });
    }

    // ---- ReLU ----

    public void ReluForward(Tensor x, Tensor y)
    {
        var dt = OpChecks.Elementwise(this, "ReluForward", x, y);
        if (dt == DType.Float32) ReluForward(x.HostArray<float>(), y.HostArray<float>(), (int)x.Numel);
        else ReluForward(x.HostArray<double>(), y.HostArray<double>(), (int)x.Numel);
    }

    private void ReluForward<T>(T[] x, T[] y, int count) where T : unmanaged, IFloatingPointIeee754<T> =>
        ForChunks(count, 1 << 16, (start, length) => Relu<T>(x.AsSpan(start, length), y.AsSpan(start, length)));

    /// <summary>
    /// y = max(x, 0) with IEEE maximum's rules (NaN stays NaN, −0 becomes +0), as one select per vector:
    /// TensorPrimitives.Max with a scalar runs several times slower here.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Relu<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var i = 0;
        for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
        {
            var v = new Vector<T>(x[i..]);
            var keep = Vector.BitwiseOr(Vector.GreaterThan(v, Vector<T>.Zero), Vector.OnesComplement(Vector.Equals(v, v)));
            Vector.ConditionalSelect(keep, v, Vector<T>.Zero).CopyTo(y[i..]);
        }
        for (; i < x.Length; i++) y[i] = x[i] > T.Zero || T.IsNaN(x[i]) ? x[i] : T.Zero;
    }

    public void ReluBackward(Tensor y, Tensor dy, Tensor dx)
    {
        var dt = OpChecks.Elementwise(this, "ReluBackward", y, dy, dx);
        if (dt == DType.Float32) ReluBackward(y.HostArray<float>(), dy.HostArray<float>(), dx.HostArray<float>(), (int)y.Numel);
        else ReluBackward(y.HostArray<double>(), dy.HostArray<double>(), dx.HostArray<double>(), (int)y.Numel);
    }

    private void ReluBackward<T>(T[] y, T[] dy, T[] dx, int count) where T : unmanaged, IFloatingPointIeee754<T> =>
        ForChunks(count, 1 << 16, (start, length) => ReluMask<T>(y.AsSpan(start, length), dy.AsSpan(start, length), dx.AsSpan(start, length)));

    /// <summary>
    /// dx = dy where y &gt; 0, else 0. Branch-free: the sign of y is random, and a mispredicted branch per
    /// element costs more than the select.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ReluMask<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> dy, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var i = 0;
        for (; i <= y.Length - Vector<T>.Count; i += Vector<T>.Count)
            Vector.ConditionalSelect(Vector.GreaterThan(new Vector<T>(y[i..]), Vector<T>.Zero), new Vector<T>(dy[i..]), Vector<T>.Zero)
                .CopyTo(dx[i..]);
        for (; i < y.Length; i++) dx[i] = y[i] > T.Zero ? dy[i] : T.Zero;
    }

    // ---- dropout ----

    public void DropoutMask(Tensor mask, double p, ulong seed, ulong offset)
    {
        var dt = OpChecks.FloatType(this, "DropoutMask", mask);
        var threshold = Philox.DropThreshold(p);
        if (dt == DType.Float32) DropoutMask(mask.HostArray<float>(), (int)mask.Numel, (float)(1 / (1 - p)), threshold, seed, offset);
        else DropoutMask(mask.HostArray<double>(), (int)mask.Numel, 1 / (1 - p), threshold, seed, offset);
    }

    /// <summary>The mask into a pooled temporary, then the multiply: the same values as the separate ops, by construction.</summary>
    public void DropoutMultiply(Tensor x, Tensor y, double p, ulong seed, ulong offset)
    {
        OpChecks.Elementwise(this, "DropoutMultiply", x, y);
        using var mask = Empty(x.Shape, x.DType);
        DropoutMask(mask, p, seed, offset);
        Multiply(x, mask, y);
    }

    private void DropoutMask<T>(T[] mask, int count, T keep, uint threshold, ulong seed, ulong offset) where T : unmanaged, IFloatingPointIeee754<T> =>
        ForChunks(count, 1 << 14, (start, length) =>
        {
            // One Philox block yields four consecutive words of the stream.
            var q = offset + (ulong)start;
            Span<uint> words = stackalloc uint[4];
            for (int i = start, end = start + length; i < end;)
            {
                if (typeof(T) == typeof(float) && Avx2.IsSupported && (q & 3) == 0 && end - i >= 32)
                {
                    var run = (end - i) / 32 * 32;
                    DropoutMask8Blocks(MemoryMarshal.Cast<T, float>(mask.AsSpan(i, run)), float.CreateTruncating(keep), threshold, seed, q >> 2);
                    (i, q) = (i + run, q + (ulong)run);
                    continue;
                }
                (words[0], words[1], words[2], words[3]) = Philox.Block(seed, q >> 2);
                for (var lane = (int)(q & 3); lane < 4 && i < end; lane++, i++, q++)
                    mask[i] = keep * Kept<T>(words[lane], threshold);
            }
        });

    /// <summary>
    /// mask[0..32·n) from blocks firstBlock… eight at a time: the four word vectors become kept/dropped lanes,
    /// then a 4×8 transpose puts them in stream order (element 4·L + w is word w of lane L).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DropoutMask8Blocks(Span<float> mask, float keep, uint threshold, ulong seed, ulong firstBlock)
    {
        Vector256<float> keepv = Vector256.Create(keep);
        var limit = Vector256.Create((int)threshold - 1);
        Vector256<float> Lane(Vector256<uint> word) =>
            Vector256.ConditionalSelect(Vector256.GreaterThan(Vector256.ShiftRightLogical(word, 8).AsInt32(), limit).AsSingle(), keepv, Vector256<float>.Zero);
        for (var at = 0; at < mask.Length; at += 32, firstBlock += 8)
        {
            var (w0, w1, w2, w3) = Philox.Blocks8(seed, firstBlock);
            Vector256<float> m0 = Lane(w0), m1 = Lane(w1), m2 = Lane(w2), m3 = Lane(w3);
            Vector256<float> t0 = Avx.UnpackLow(m0, m1), t1 = Avx.UnpackHigh(m0, m1), t2 = Avx.UnpackLow(m2, m3), t3 = Avx.UnpackHigh(m2, m3);
            Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
            var dst = mask[at..];
            Avx.Permute2x128(u0, u1, 0x20).CopyTo(dst);
            Avx.Permute2x128(u2, u3, 0x20).CopyTo(dst[8..]);
            Avx.Permute2x128(u0, u1, 0x31).CopyTo(dst[16..]);
            Avx.Permute2x128(u2, u3, 0x31).CopyTo(dst[24..]);
        }
    }

    /// <summary>1 when the draw keeps the element, else 0, without a branch (the outcome is a coin flip).</summary>
    private static T Kept<T>(uint word, uint threshold) where T : unmanaged, IFloatingPointIeee754<T> =>
        T.CreateTruncating(1 + (int)(((long)(word >> 8) - threshold) >> 63));

    // ---- max pooling ----

    public void MaxPoolForward(Tensor x, Tensor y, Tensor argmax, int window, int stride)
    {
        var (dt, ys) = OpChecks.MaxPoolForward(this, x, y, argmax, window, stride);
        var s = x.Shape;
        if (dt == DType.Float32) MaxPoolForward(s, ys, x.HostArray<float>(), y.HostArray<float>(), argmax.HostArray<int>(), window, stride);
        else MaxPoolForward(s, ys, x.HostArray<double>(), y.HostArray<double>(), argmax.HostArray<int>(), window, stride);
    }

    private void MaxPoolForward<T>(Shape xs, Shape ys, T[] x, T[] y, int[] argmax, int window, int stride) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = xs.H * xs.W, outPlane = ys.H * ys.W;
        For(xs.N * xs.C, nc =>
        {
            var xp = x.AsSpan(nc * inPlane, inPlane);
            for (var oi = 0; oi < ys.H; oi++)
                for (var oj = 0; oj < ys.W; oj++)
                {
                    var best = oi * stride * xs.W + oj * stride;
                    for (var a = 0; a < window; a++)
                        for (var b = 0; b < window; b++)
                        {
                            var at = (oi * stride + a) * xs.W + oj * stride + b;
                            if (xp[at] > xp[best]) best = at; // strict: the first of equal values wins
                        }
                    var o = nc * outPlane + oi * ys.W + oj;
                    y[o] = xp[best];
                    argmax[o] = best;
                }
        });
    }

    public void MaxPoolBackward(Tensor dy, Tensor argmax, Tensor dx)
    {
        var dt = OpChecks.MaxPoolBackward(this, dy, argmax, dx);
        var inPlane = dx.Shape.H * dx.Shape.W;
        foreach (var at in Span<int>(argmax))
            if ((uint)at >= (uint)inPlane)
                throw new ArgumentException($"MaxPoolBackward: argmax {at} lies outside the {dx.Shape.H}×{dx.Shape.W} input plane of dx {dx.Shape}.");
        if (dt == DType.Float32) MaxPoolBackward(dy.Shape, dx.Shape, dy.HostArray<float>(), argmax.HostArray<int>(), dx.HostArray<float>());
        else MaxPoolBackward(dy.Shape, dx.Shape, dy.HostArray<double>(), argmax.HostArray<int>(), dx.HostArray<double>());
    }

    private void MaxPoolBackward<T>(Shape ys, Shape xs, T[] dy, int[] argmax, T[] dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = xs.H * xs.W, outPlane = ys.H * ys.W;
        For(xs.N * xs.C, nc =>
        {
            var dxp = dx.AsSpan(nc * inPlane, inPlane);
            dxp.Clear();
            for (var o = nc * outPlane; o < (nc + 1) * outPlane; o++)
                dxp[argmax[o]] += dy[o];
        });
    }
}
