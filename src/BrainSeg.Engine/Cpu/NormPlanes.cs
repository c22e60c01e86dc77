using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace BrainSeg.Engine.Cpu;

/// <summary>
/// The per-plane loops of batch normalisation, in double whatever the storage type (x ≫ σ must not cancel in
/// float). Each loop reads its planes once, widening four elements at a time into a vector of doubles, and the
/// scalar tails do the same operations in the same order, so an element's result does not depend on where it sits.
/// </summary>
internal static class NormPlanes
{
    private const int Lanes = 4;

    /// <summary>
    /// Σ (x − shift) and Σ (x − shift)² in one pass. With a shift near the mean (any element of the channel) the
    /// variance Σ(x − shift)²/M − (Σ(x − shift)/M)² does not cancel, so one read of x replaces the two of the
    /// textbook two-pass form.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static (double Sum, double Squares) ShiftedMoments<T>(ReadOnlySpan<T> x, double shift) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Vector256<double> s0 = default, s1 = default, q0 = default, q1 = default, k = Vector256.Create(shift);
        var i = 0;
        for (; i + 2 * Lanes <= x.Length; i += 2 * Lanes)
        {
            var d0 = Load(x, i) - k;
            var d1 = Load(x, i + Lanes) - k;
            s0 += d0;
            s1 += d1;
            q0 += d0 * d0;
            q1 += d1 * d1;
        }
        double sum = Vector256.Sum(s0 + s1), squares = Vector256.Sum(q0 + q1);
        for (; i < x.Length; i++)
        {
            var d = double.CreateTruncating(x[i]) - shift;
            sum += d;
            squares += d * d;
        }
        return (sum, squares);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Normalise<T>(ReadOnlySpan<T> x, Span<T> y, double mean, double scale, double shift) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Vector256<double> m = Vector256.Create(mean), k = Vector256.Create(scale), b = Vector256.Create(shift);
        var i = 0;
        for (; i + Lanes <= x.Length; i += Lanes) Store(y, i, (Load(x, i) - m) * k + b);
        for (; i < x.Length; i++) y[i] = T.CreateTruncating((double.CreateTruncating(x[i]) - mean) * scale + shift);
    }

    /// <summary>
    /// The fused ReLU's mask: g = dy where the forward's output T((x − mean)·scale + shift) (<see cref="Normalise{T}"/>)
    /// was positive, else 0. Rounding to T keeps the sign but sends the tiniest values to zero, so the double value must
    /// exceed <see cref="Floor"/>, the largest one that rounds to 0 in T (2⁻¹⁵⁰ for float, a tie that rounds to even;
    /// 0 for double); NaN never passes. <see cref="Open"/> (no ReLU) passes every dy.
    /// </summary>
    public readonly record struct ReluGate(bool On, double Scale, double Shift, double Floor)
    {
        public static readonly ReluGate Open = new(false, 0, 0, 0);

        public static ReluGate Of<T>(double scale, double shift) where T : unmanaged, IFloatingPointIeee754<T> =>
            new(true, scale, shift, typeof(T) == typeof(float) ? Math.ScaleB(1.0, -150) : 0);
    }

    /// <summary>Σ g and Σ g·x̂ with x̂ = (x − mean)·invStd and g = dy, masked by <paramref name="gate"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static (double SumG, double SumGXhat) GradientSums<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dy, double mean, double invStd, ReluGate gate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Vector256<double> sumG = default, sumGX = default, m = Vector256.Create(mean), s = Vector256.Create(invStd);
        var i = 0;
        for (; i + Lanes <= x.Length; i += Lanes)
        {
            var d = Load(x, i) - m;
            var g = Gradient(dy, i, d, gate);
            sumG += g;
            sumGX += g * (d * s);
        }
        double totalG = Vector256.Sum(sumG), totalGX = Vector256.Sum(sumGX);
        for (; i < x.Length; i++)
        {
            var d = double.CreateTruncating(x[i]) - mean;
            var g = ScalarGradient(dy, i, d, gate);
            totalG += g;
            totalGX += g * (d * invStd);
        }
        return (totalG, totalGX);
    }

    /// <summary>dx = k·((count·g − Σg) − x̂·Σg·x̂), each step rounded in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void InputGradient<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx,
        double mean, double invStd, double count, double sumG, double sumGXhat, double k, ReluGate gate) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Vector256<double> m = Vector256.Create(mean), s = Vector256.Create(invStd), n = Vector256.Create(count);
        Vector256<double> sg = Vector256.Create(sumG), sgx = Vector256.Create(sumGXhat), kv = Vector256.Create(k);
        var i = 0;
        for (; i + Lanes <= x.Length; i += Lanes)
        {
            var d = Load(x, i) - m;
            Store(dx, i, kv * ((n * Gradient(dy, i, d, gate) - sg) - d * s * sgx));
        }
        for (; i < x.Length; i++)
        {
            var d = double.CreateTruncating(x[i]) - mean;
            dx[i] = T.CreateTruncating(k * ((count * ScalarGradient(dy, i, d, gate) - sumG) - d * invStd * sumGXhat));
        }
    }

    /// <summary>dy at i..i+3, masked by the gate; d = x − mean there, computed as <see cref="Normalise{T}"/> computes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> Gradient<T>(ReadOnlySpan<T> dy, int i, Vector256<double> d, ReluGate gate) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = Load(dy, i);
        if (!gate.On) return g;
        var output = d * Vector256.Create(gate.Scale) + Vector256.Create(gate.Shift);
        return Vector256.ConditionalSelect(Vector256.GreaterThan(output, Vector256.Create(gate.Floor)), g, Vector256<double>.Zero);
    }

    private static double ScalarGradient<T>(ReadOnlySpan<T> dy, int i, double d, ReluGate gate) where T : unmanaged, IFloatingPointIeee754<T> =>
        !gate.On || d * gate.Scale + gate.Shift > gate.Floor ? double.CreateTruncating(dy[i]) : 0;

    /// <summary>Elements i..i+3 as doubles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> Load<T>(ReadOnlySpan<T> s, int i) where T : unmanaged
    {
        ref var first = ref MemoryMarshal.GetReference(s);
        if (typeof(T) == typeof(float))
            return Vector256.WidenLower(Vector128.LoadUnsafe(ref Unsafe.As<T, float>(ref first), (nuint)i).ToVector256Unsafe());
        return Vector256.LoadUnsafe(ref Unsafe.As<T, double>(ref first), (nuint)i);
    }

    /// <summary>Stores four doubles at i, each rounded to T.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<T>(Span<T> s, int i, Vector256<double> v) where T : unmanaged
    {
        ref var first = ref MemoryMarshal.GetReference(s);
        if (typeof(T) == typeof(float))
            Vector256.Narrow(v, v).GetLower().StoreUnsafe(ref Unsafe.As<T, float>(ref first), (nuint)i);
        else
            v.StoreUnsafe(ref Unsafe.As<T, double>(ref first), (nuint)i);
    }
}
