using BrainSeg.Engine;

namespace BrainSeg.Cuda;

/// <summary>Choices that trade exactness for speed on the CUDA backend.</summary>
public sealed record CudaBackendOptions
{
    /// <summary>
    /// Lets float32 convolutions and GEMMs run on tensor cores in TF32 (10-bit mantissa) and through any
    /// cuDNN algorithm. Off by default: cuDNN is restricted to FMA kernels computing the convolution directly
    /// (no FFT or Winograd transform, unless nothing else runs) and cuBLAS to its default (non-TF32) math,
    /// so float32 results agree with the CPU backend within 1e-4. Float64 is unaffected.
    /// </summary>
    public bool AllowTf32 { get; init; }

    /// <summary>
    /// Prefer cuDNN algorithms that cuDNN reports as deterministic (same inputs, same bits) when choosing
    /// among the measured ones, even if a non-deterministic one is faster. On by default.
    /// </summary>
    public bool DeterministicAlgorithms { get; init; } = true;

    /// <summary>
    /// Choose convolution algorithms with the legacy cudnnFind* search instead of timing the graph API's engines
    /// (for comparison; the legacy path also serves automatically wherever the graph API fails).
    /// </summary>
    public bool LegacyConvolutionSearch { get; init; }

    /// <summary>
    /// Lets cuDNN's runtime fusion compute a convolution's bias and ReLU as the output is written, and read a channels-last
    /// training batch norm's rectified output through the norm's scale, shift and ReLU as the input is read (the output is
    /// then never written), wherever the fused graph is planned on this device and times at least as fast as the separate
    /// passes. On by default; off runs the separate passes everywhere (for comparison).
    /// </summary>
    public bool RuntimeFusion { get; init; } = true;

    /// <summary>
    /// The most device memory the one-time cuDNN algorithm search may lend each candidate as workspace;
    /// algorithms needing more are not considered. Also capped at half of the free memory.
    /// </summary>
    public long AlgorithmSearchWorkspaceBytes { get; init; } = 256L << 20;

    /// <summary>
    /// The memory order of the 4-D tensors this backend creates. Channels-last by default: cuDNN's fastest
    /// convolution engines read and write NHWC (filters KRSC), and every kernel of this backend takes either order.
    /// Host arrays stay NCHW (uploads and downloads convert).
    /// </summary>
    public TensorLayout Layout { get; init; } = TensorLayout.Nhwc;

    public static CudaBackendOptions Default { get; } = new();
}
