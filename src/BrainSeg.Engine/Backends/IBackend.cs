namespace BrainSeg.Engine;

/// <summary>Geometry of a stride-1 2-D convolution: dilation and symmetric zero padding ("valid" is padding 0).</summary>
public readonly record struct Conv2dSpec(int Dilation = 1, int Padding = 0)
{
    public static readonly Conv2dSpec Valid = new(1, 0);

    /// <summary>Output size along one axis for an input of <paramref name="input"/> and a kernel of <paramref name="kernel"/>.</summary>
    public int OutputSize(int input, int kernel) => input + 2 * Padding - Dilation * (kernel - 1);
}

/// <summary>
/// The primitive operations every backend implements with identical semantics. The CPU backend is the
/// reference; the CUDA backend must agree with it (float32: relative error ≤ 1e-4, float64: ≤ 1e-10).
/// <para>
/// Rules for every method: all tensors live on this backend, are contiguous NCHW (or the stated shape),
/// and share one floating-point dtype (Float32 or Float64) unless an argument is documented as Int32.
/// Outputs are OVERWRITTEN, never accumulated; outputs never alias inputs unless stated. Shapes are
/// validated and a mismatch throws <see cref="ArgumentException"/> naming the op and the shapes.
/// Methods are asynchronous with respect to the host on a GPU: only <see cref="Download{T}"/> and
/// <see cref="Synchronize"/> wait.
/// </para>
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>"cpu", or e.g. "cuda:0 NVIDIA H100 80GB HBM3".</summary>
    string Name { get; }

    bool IsGpu { get; }

    /// <summary>How float32 work is computed: "fp32", or on a GPU "tf32", with "/deterministic" when only deterministic engines run.</summary>
    string Precision => "fp32";

    // ---- memory ----

    /// <summary>A new tensor whose contents are unspecified.</summary>
    Tensor Empty(Shape shape, DType dtype);

    /// <summary>Copies host values into <paramref name="dst"/> (element type must match its dtype).</summary>
    void Upload<T>(ReadOnlySpan<T> src, Tensor dst) where T : unmanaged;

    /// <summary>Copies <paramref name="src"/> to host memory, waiting for pending work.</summary>
    void Download<T>(Tensor src, Span<T> dst) where T : unmanaged;

    /// <summary>dst = src (same shape and dtype).</summary>
    void Copy(Tensor src, Tensor dst);

    /// <summary>
    /// dst[dstFirst + i] = src[srcFirst + i] for the <paramref name="count"/> images i of the leading axis (same dtype,
    /// same trailing dimensions and memory order): the batch is outermost in every layout, so this is one block copy.
    /// </summary>
    void CopyBatch(Tensor src, int srcFirst, Tensor dst, int dstFirst, int count);

    /// <summary>
    /// dst takes src's elements in NCHW order, whatever the two shapes (same element count) and memory orders: the
    /// reshape of a tensor whose memory is not in that order (channels-last), which a view cannot be.
    /// </summary>
    void CopyReshaped(Tensor src, Tensor dst);

    /// <summary>Sets every element to <paramref name="value"/> (any dtype).</summary>
    void Fill(Tensor t, double value);

    /// <summary>Waits until all queued work has finished.</summary>
    void Synchronize();

    // ---- transfers that do not wait (a training loop's inputs and losses) ----

    /// <summary>
    /// As <see cref="Upload{T}"/>, for inputs that change every step: a GPU stages the values in page-locked memory and
    /// copies them on a copy stream, so the call returns once they are staged and the copy overlaps the work queued
    /// before it; work queued after the call sees the new values. A backend without such a path uploads at once.
    /// </summary>
    void UploadAsync<T>(ReadOnlySpan<T> src, Tensor dst) where T : unmanaged => Upload(src, dst);

    /// <summary>A reusable copy of up to <paramref name="capacity"/> values to the host that waits only for its own work (<see cref="HostReadback"/>).</summary>
    HostReadback CreateReadback(int capacity) => new ImmediateReadback(capacity);

    // ---- elementwise ----

    /// <summary>y = a + b, elementwise, all the same shape.</summary>
    void Add(Tensor a, Tensor b, Tensor y);

    /// <summary>y = a * b, elementwise, all the same shape (dropout applies its mask with this).</summary>
    void Multiply(Tensor a, Tensor b, Tensor y);

    /// <summary>y += alpha * x, in place on y (gradient accumulation). Same shape.</summary>
    void AddScaled(Tensor y, Tensor x, double alpha);

    /// <summary>y *= alpha, in place.</summary>
    void Scale(Tensor y, double alpha);

    // ---- linear algebra ----

    /// <summary>
    /// c = alpha · op(a) · op(b) + beta · c for rank-2 row-major tensors, op(m) = mᵀ when the flag is set.
    /// With beta = 0 the old contents of c are ignored (NaN included).
    /// </summary>
    void Gemm(bool transposeA, bool transposeB, double alpha, Tensor a, Tensor b, double beta, Tensor c);

    // ---- convolution (stride 1, cross-correlation as in every DL framework) ----

    /// <summary>
    /// y[n,k,i,j] = Σ_c Σ_p Σ_q x[n,c, i + p·d − pad, j + q·d − pad] · w[k,c,p,q] (+ bias[k]), zero outside x; with
    /// <paramref name="relu"/> the same pass writes max(that, 0) by <see cref="ReluForward"/>'s rule. The result is
    /// exactly the convolution followed by <see cref="AddChannelBias"/> and <see cref="ReluForward"/>, one write of y
    /// instead of three passes: a batch norm in inference mode folds into w and bias, so conv → BN → ReLU is this op.
    /// x: [N,C,H,W], w: [K,C,R,S], bias: [K], y: [N,K,spec.OutputSize(H,R),spec.OutputSize(W,S)].
    /// </summary>
    void Conv2dForward(Tensor x, Tensor w, Tensor y, Conv2dSpec spec, Tensor? bias = null, bool relu = false);

    /// <summary>
    /// dx = ∂L/∂x given dy = ∂L/∂y for <see cref="Conv2dForward"/>. <paramref name="x"/>, the forward's input, changes
    /// nothing in dx; a backend may use it to prepare the backward of the op that made x (the CUDA backend's batch-norm
    /// sums, when x is a batch norm's output it never wrote).
    /// </summary>
    void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, Conv2dSpec spec, Tensor? x = null);

    /// <summary>dw = ∂L/∂w given x and dy for <see cref="Conv2dForward"/>.</summary>
    void Conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Conv2dSpec spec);

    /// <summary>y[n,c,…] += bias[c], in place. y: [N,C,H,W] or [N,C]; bias: [C].</summary>
    void AddChannelBias(Tensor y, Tensor bias);

    /// <summary>db[c] = Σ_{n,h,w} dy[n,c,h,w] (the bias gradient). dy: [N,C,H,W] or [N,C]; db: [C].</summary>
    void ChannelSum(Tensor dy, Tensor db);

    // ---- batch normalisation over (N,H,W) per channel ----

    /// <summary>
    /// Training mode. For each channel c with batch mean μ and biased variance σ² over N·H·W values:
    /// y = γ·(x − μ)/√(σ² + eps) + β (γ = 1 when <paramref name="gamma"/> is null);
    /// saveMean = μ, saveInvStd = 1/√(σ² + eps);
    /// runningMean = (1 − momentum)·runningMean + momentum·μ;
    /// runningVar = (1 − momentum)·runningVar + momentum·σ²·M/(M − 1), M = N·H·W (unbiased, as cuDNN and PyTorch).
    /// With <paramref name="relu"/> the same pass writes y = max(that, 0), exactly what <see cref="ReluForward"/>
    /// would make of it, so a BN → ReLU pair keeps one activation instead of two.
    /// x, y: [N,C,H,W]; gamma, beta, runningMean, runningVar, saveMean, saveInvStd: [C].
    /// </summary>
    void BatchNormForwardTraining(Tensor x, Tensor? gamma, Tensor beta, Tensor y,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, double momentum, double eps, bool relu = false);

    /// <summary>Inference mode: y = γ·(x − runningMean)/√(runningVar + eps) + β, then max(y, 0) with <paramref name="relu"/>.</summary>
    void BatchNormForwardInference(Tensor x, Tensor? gamma, Tensor beta, Tensor y,
        Tensor runningMean, Tensor runningVar, double eps, bool relu = false);

    /// <summary>
    /// Gradients of training-mode batch norm as a function of the whole batch (the batch statistics
    /// depend on x). dgamma is written only when gamma is given. Behind the fused ReLU (<paramref name="relu"/>) dy
    /// counts only where the forward's output was positive, as after <see cref="ReluBackward"/>; that mask is
    /// recomputed from x, β and the saved statistics exactly as the forward rounded it (the forward normalises with
    /// the statistics it saves), so the output itself is never read.
    /// </summary>
    void BatchNormBackward(Tensor x, Tensor dy, Tensor? gamma, Tensor beta, Tensor saveMean, Tensor saveInvStd,
        Tensor dx, Tensor? dgamma, Tensor dbeta, bool relu = false);

    // ---- activations and regularisation ----

    /// <summary>y = max(x, 0).</summary>
    void ReluForward(Tensor x, Tensor y);

    /// <summary>dx = dy where y &gt; 0, else 0 (the derivative at 0 is taken as 0).</summary>
    void ReluBackward(Tensor y, Tensor dy, Tensor dx);

    /// <summary>
    /// Writes an inverted-dropout mask: mask[i] = 1/(1 − p) when kept, 0 when dropped. Element i is kept
    /// when u_i ≥ p, where u_i is drawn by <see cref="Philox"/> from (seed, offset + i); the same
    /// (seed, offset) gives the same mask on every backend. Consumes <see cref="Philox.CountersFor"/> counters.
    /// </summary>
    void DropoutMask(Tensor mask, double p, ulong seed, ulong offset);

    /// <summary>
    /// y = x ⊙ mask with the mask <see cref="DropoutMask"/> would write for the same p, seed and offset, generated
    /// inside the multiply and never stored: dropout's forward (x) and backward (the output gradient) are both this.
    /// </summary>
    void DropoutMultiply(Tensor x, Tensor y, double p, ulong seed, ulong offset);

    // ---- pooling ----

    /// <summary>
    /// Valid max pooling with a square window and stride: y: [N,C,(H−k)/s+1,(W−k)/s+1]. argmax (Int32, same
    /// shape as y) holds the flat index h·W+w within the input plane of the winner; among equal values the
    /// first in row-major window order wins.
    /// </summary>
    void MaxPoolForward(Tensor x, Tensor y, Tensor argmax, int window, int stride);

    /// <summary>dx = 0 except dx[argmax] += dy (windows may overlap when stride &lt; window).</summary>
    void MaxPoolBackward(Tensor dy, Tensor argmax, Tensor dx);

    // ---- shape ops ----

    /// <summary>y = [a, b] along channels. a: [N,Ca,H,W], b: [N,Cb,H,W], y: [N,Ca+Cb,H,W].</summary>
    void ConcatChannels(Tensor a, Tensor b, Tensor y);

    /// <summary>The adjoint of <see cref="ConcatChannels"/>: da, db = the two channel ranges of dy (either may be null).</summary>
    void SplitChannels(Tensor dy, Tensor? da, Tensor? db);

    /// <summary>
    /// y = the centre of x: y[n,c,i,j] = x[n,c,i+oh,j+ow], oh = (Hx−Hy)/2, ow = (Wx−Wy)/2 (integer division).
    /// N and C must match.
    /// </summary>
    void CenterCrop(Tensor x, Tensor y);

    /// <summary>The adjoint of <see cref="CenterCrop"/>: y = x placed at the same offsets in a zero field (zero padding).</summary>
    void CenterPad(Tensor x, Tensor y);

    // ---- classification ----

    /// <summary>probs = softmax over channels, per voxel. [N,C,H,W] or [N,C].</summary>
    void SoftmaxForward(Tensor logits, Tensor probs);

    /// <summary>
    /// probs = softmax(logits) over channels and loss[0] = −(1/M)·Σ_voxels Σ_c target·log(probs), M = N·H·W,
    /// computed stably from the logits (log-sum-exp). target holds per-voxel class probabilities (one-hot
    /// for hard labels), same shape as logits. loss: shape [1]. Serves both the segmentation loss and the
    /// discriminator's two-class loss ([N,2]).
    /// </summary>
    void SoftmaxCrossEntropyForward(Tensor logits, Tensor target, Tensor probs, Tensor loss);

    /// <summary>dlogits = dloss[0]·(probs·Σ_c target − target)/M; dloss: shape [1] (the loss's upstream gradient).</summary>
    void SoftmaxCrossEntropyBackward(Tensor probs, Tensor target, Tensor dloss, Tensor dlogits);

    /// <summary>labels[n,h,w] (Int32) = the channel of the largest value; ties go to the lowest channel. x: [N,C,H,W].</summary>
    void ArgmaxChannels(Tensor x, Tensor labels);

    /// <summary>y[n,c,h,w] = 1 where labels[n,h,w] == c, else 0. labels: Int32 [N,H,W] with values in [0,C).</summary>
    void OneHot(Tensor labels, Tensor y);

    // ---- optimiser ----

    /// <summary>
    /// One RMSprop step (Lasagne's convention) with an explicit gradient scale s (−1 ascends the loss):
    /// g' = s·grad; meanSquare = ρ·meanSquare + (1 − ρ)·g'²; param −= lr·g'/√(meanSquare + eps).
    /// param, grad, meanSquare: same shape.
    /// </summary>
    void RmsPropStep(Tensor param, Tensor grad, Tensor meanSquare, double lr, double rho, double eps, double gradScale);
}
