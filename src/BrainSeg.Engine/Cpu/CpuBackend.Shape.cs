using System.Numerics;

namespace BrainSeg.Engine.Cpu;

// Shape ops, classification and the optimiser step.
public sealed partial class CpuBackend
{
    // ---- concatenation along channels and its adjoint ----

    public void ConcatChannels(Tensor a, Tensor b, Tensor y)
    {
        var dt = OpChecks.ConcatChannels(this, a, b, y);
        if (dt == DType.Float32) MoveChannels(y.Shape, a.HostArray<float>(), b.HostArray<float>(), y.HostArray<float>(), a.Shape.C, split: false);
        else MoveChannels(y.Shape, a.HostArray<double>(), b.HostArray<double>(), y.HostArray<double>(), a.Shape.C, split: false);
    }

    public void SplitChannels(Tensor dy, Tensor? da, Tensor? db)
    {
        var (dt, ca) = OpChecks.SplitChannels(this, dy, da, db);
        if (da is null && db is null) return;
        var s = dy.Shape;
        if (dt == DType.Float32) MoveChannels(s, da?.HostArray<float>(), db?.HostArray<float>(), dy.HostArray<float>(), ca, split: true);
        else MoveChannels(s, da?.HostArray<double>(), db?.HostArray<double>(), dy.HostArray<double>(), ca, split: true);
    }

    /// <summary>Copies [a, b] into whole (concatenate) or whole into [a, b] (split); a holds the first ca channels.</summary>
    private static void MoveChannels<T>(Shape whole, T[]? a, T[]? b, T[] all, int ca, bool split) where T : unmanaged
    {
        int plane = whole.H * whole.W, blockA = ca * plane, blockB = (whole.C - ca) * plane, blockAll = whole.C * plane;
        for (var n = 0; n < whole.N; n++)
        {
            if (a is not null)
            {
                if (split) all.AsSpan(n * blockAll, blockA).CopyTo(a.AsSpan(n * blockA, blockA));
                else a.AsSpan(n * blockA, blockA).CopyTo(all.AsSpan(n * blockAll, blockA));
            }
            if (b is not null)
            {
                if (split) all.AsSpan(n * blockAll + blockA, blockB).CopyTo(b.AsSpan(n * blockB, blockB));
                else b.AsSpan(n * blockB, blockB).CopyTo(all.AsSpan(n * blockAll + blockA, blockB));
            }
        }
    }

    // ---- centre crop and its adjoint ----

    public void CenterCrop(Tensor x, Tensor y) => CropOrPad("CenterCrop", x, y, crop: true);

    public void CenterPad(Tensor x, Tensor y) => CropOrPad("CenterPad", x, y, crop: false);

    private void CropOrPad(string op, Tensor x, Tensor y, bool crop)
    {
        var (dt, big, small) = OpChecks.CropOrPad(this, op, x, y, crop);
        if (dt == DType.Float32) CropOrPad(big, small, x.HostArray<float>(), y.HostArray<float>(), crop);
        else CropOrPad(big, small, x.HostArray<double>(), y.HostArray<double>(), crop);
    }

    private static void CropOrPad<T>(Shape big, Shape small, T[] x, T[] y, bool crop) where T : unmanaged
    {
        int oh = (big.H - small.H) / 2, ow = (big.W - small.W) / 2;
        if (!crop) y.AsSpan(0, (int)big.Numel).Clear();
        for (var nc = 0; nc < big.N * big.C; nc++)
            for (var i = 0; i < small.H; i++)
            {
                var bigRow = (nc * big.H + i + oh) * big.W + ow;
                var smallRow = (nc * small.H + i) * small.W;
                if (crop) x.AsSpan(bigRow, small.W).CopyTo(y.AsSpan(smallRow, small.W));
                else x.AsSpan(smallRow, small.W).CopyTo(y.AsSpan(bigRow, small.W));
            }
    }

    // ---- softmax and cross-entropy over channels (per voxel, in double, stable) ----

    /// <summary>Voxels per block of the softmax loops: fixed, so the loss sums in the same order on any thread count.</summary>
    private const int VoxelBlock = 2048;

    public void SoftmaxForward(Tensor logits, Tensor probs)
    {
        var (dt, layout) = OpChecks.SoftmaxForward(this, logits, probs);
        if (dt == DType.Float32) Softmax(layout, logits.HostArray<float>(), null, probs.HostArray<float>());
        else Softmax(layout, logits.HostArray<double>(), null, probs.HostArray<double>());
    }

    public void SoftmaxCrossEntropyForward(Tensor logits, Tensor target, Tensor probs, Tensor loss)
    {
        var (dt, layout) = OpChecks.SoftmaxCrossEntropyForward(this, logits, target, probs, loss);
        if (dt == DType.Float32) loss.HostArray<float>()[0] = (float)Softmax(layout, logits.HostArray<float>(), target.HostArray<float>(), probs.HostArray<float>());
        else loss.HostArray<double>()[0] = Softmax(layout, logits.HostArray<double>(), target.HostArray<double>(), probs.HostArray<double>());
    }

    /// <summary>Writes probs and returns the mean cross-entropy against target (0 when target is null).</summary>
    private double Softmax<T>(OpChecks.ClassLayout layout, T[] logits, T[]? target, T[] probs)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (batch, channels, plane) = (layout.Batch, layout.Channels, (int)layout.Plane);
        var voxels = batch * plane;
        var blocks = (voxels + VoxelBlock - 1) / VoxelBlock;
        var partial = new double[blocks];
        For(blocks, block =>
        {
            double loss = 0;
            for (var v = block * VoxelBlock; v < Math.Min(voxels, (block + 1) * VoxelBlock); v++)
            {
                var first = v / plane * channels * plane + v % plane;
                var max = double.NegativeInfinity;
                for (var c = 0; c < channels; c++) max = Math.Max(max, double.CreateTruncating(logits[first + c * plane]));
                double sum = 0;
                for (var c = 0; c < channels; c++) sum += Math.Exp(double.CreateTruncating(logits[first + c * plane]) - max);
                var logSumExp = max + Math.Log(sum);
                for (var c = 0; c < channels; c++)
                {
                    var at = first + c * plane;
                    var logProb = double.CreateTruncating(logits[at]) - logSumExp;
                    probs[at] = T.CreateTruncating(Math.Exp(logProb));
                    if (target is not null)
                    {
                        var t = double.CreateTruncating(target[at]);
                        if (t != 0) loss -= t * logProb;
                    }
                }
            }
            partial[block] = loss;
        });
        double total = 0;
        foreach (var p in partial) total += p;
        return total / voxels;
    }

    public void SoftmaxCrossEntropyBackward(Tensor probs, Tensor target, Tensor dloss, Tensor dlogits)
    {
        var (dt, layout) = OpChecks.SoftmaxCrossEntropyBackward(this, probs, target, dloss, dlogits);
        if (dt == DType.Float32)
            CrossEntropyBackward(layout, probs.HostArray<float>(), target.HostArray<float>(), dloss.HostArray<float>()[0], dlogits.HostArray<float>());
        else
            CrossEntropyBackward(layout, probs.HostArray<double>(), target.HostArray<double>(), dloss.HostArray<double>()[0], dlogits.HostArray<double>());
    }

    private void CrossEntropyBackward<T>(OpChecks.ClassLayout layout, T[] probs, T[] target, T dloss, T[] dlogits)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (batch, channels, plane) = (layout.Batch, layout.Channels, (int)layout.Plane);
        var voxels = batch * plane;
        var scale = double.CreateTruncating(dloss) / voxels;
        ForChunks(voxels, VoxelBlock, (start, length) =>
        {
            for (var v = start; v < start + length; v++)
            {
                var first = v / plane * channels * plane + v % plane;
                double targetSum = 0;
                for (var c = 0; c < channels; c++) targetSum += double.CreateTruncating(target[first + c * plane]);
                for (var c = 0; c < channels; c++)
                {
                    var at = first + c * plane;
                    dlogits[at] = T.CreateTruncating(scale * (double.CreateTruncating(probs[at]) * targetSum - double.CreateTruncating(target[at])));
                }
            }
        });
    }

    // ---- labels ----

    public void ArgmaxChannels(Tensor x, Tensor labels)
    {
        var dt = OpChecks.ArgmaxChannels(this, x, labels);
        if (dt == DType.Float32) Argmax(x.Shape, x.HostArray<float>(), labels.HostArray<int>());
        else Argmax(x.Shape, x.HostArray<double>(), labels.HostArray<int>());
    }

    private void Argmax<T>(Shape s, T[] x, int[] labels) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int plane = s.H * s.W, channels = s.C;
        ForChunks(s.N * plane, VoxelBlock, (start, length) =>
        {
            for (var v = start; v < start + length; v++)
            {
                var first = v / plane * channels * plane + v % plane;
                var best = 0;
                for (var c = 1; c < channels; c++)
                    if (x[first + c * plane] > x[first + best * plane]) best = c; // strict: ties keep the lowest channel
                labels[v] = best;
            }
        });
    }

    public void OneHot(Tensor labels, Tensor y)
    {
        var dt = OpChecks.OneHot(this, labels, y);
        var s = y.Shape;
        foreach (var label in Span<int>(labels))
            if ((uint)label >= (uint)s.C)
                throw new ArgumentException($"OneHot: label {label} is outside [0, {s.C}) for y {s}; remap the label map to class indices first.");
        if (dt == DType.Float32) OneHot(s, labels.HostArray<int>(), y.HostArray<float>());
        else OneHot(s, labels.HostArray<int>(), y.HostArray<double>());
    }

    private static void OneHot<T>(Shape s, int[] labels, T[] y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int plane = s.H * s.W;
        y.AsSpan(0, (int)s.Numel).Clear();
        for (var v = 0; v < s.N * plane; v++)
            y[(v / plane * s.C + labels[v]) * plane + v % plane] = T.One;
    }

    // ---- optimiser ----

    public void RmsPropStep(Tensor param, Tensor grad, Tensor meanSquare, double lr, double rho, double eps, double gradScale)
    {
        var dt = OpChecks.Elementwise(this, "RmsPropStep", param, grad, meanSquare);
        if (dt == DType.Float32)
            RmsProp(param.HostArray<float>(), grad.HostArray<float>(), meanSquare.HostArray<float>(), (int)param.Numel, (float)lr, (float)rho, (float)eps, (float)gradScale);
        else
            RmsProp(param.HostArray<double>(), grad.HostArray<double>(), meanSquare.HostArray<double>(), (int)param.Numel, lr, rho, eps, gradScale);
    }

    private void RmsProp<T>(T[] param, T[] grad, T[] meanSquare, int count, T lr, T rho, T eps, T gradScale)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        ForChunks(count, 1 << 15, (start, length) =>
        {
            for (var i = start; i < start + length; i++)
            {
                var g = gradScale * grad[i];
                var ms = rho * meanSquare[i] + (T.One - rho) * g * g;
                meanSquare[i] = ms;
                param[i] -= lr * g / T.Sqrt(ms + eps);
            }
        });
}
