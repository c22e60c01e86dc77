namespace BrainSeg.Cuda;

/// <summary>A CUDA, NVRTC, cuBLAS or cuDNN call failed. Message: "&lt;call&gt; failed: &lt;ERROR_NAME&gt;: &lt;library's error string&gt;".</summary>
public class CudaException : Exception
{
    public CudaException(string message) : base(message) { }
    public CudaException(string message, Exception inner) : base(message, inner) { }

    internal CudaException(string call, int status, string errorName, string detail)
        : base(string.IsNullOrWhiteSpace(detail) ? $"{call} failed: {errorName}" : $"{call} failed: {errorName}: {detail}")
    {
        Call = call;
        Status = status;
        ErrorName = errorName;
    }

    /// <summary>The native call that failed (null when thrown with a plain message).</summary>
    public string? Call { get; }
    /// <summary>The library's status code (0 when thrown with a plain message).</summary>
    public int Status { get; }
    /// <summary>The status's name, e.g. CUDA_ERROR_OUT_OF_MEMORY.</summary>
    public string? ErrorName { get; }
}

/// <summary>
/// No CUDA driver, no device, or a missing NVIDIA library: the message names what is missing, where it was looked for,
/// and what to do (install the driver, set BRAINSEG_CUDA_LIBS, or use --device cpu).
/// </summary>
public sealed class CudaUnavailableException : Exception
{
    public CudaUnavailableException(string message) : base(message) { }
    public CudaUnavailableException(string message, Exception inner) : base(message, inner) { }
}
