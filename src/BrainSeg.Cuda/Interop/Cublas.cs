using System.Runtime.InteropServices;

namespace BrainSeg.Cuda;

// cuBLAS v2 API (cublas_api.h; cublas_v2.h maps cublasCreate -> cublasCreate_v2 etc.).
// Functions return cublasStatus_t (0 = CUBLAS_STATUS_SUCCESS); check with Check.Cublas.
// Matrices are column-major; device pointers are passed as ulong (CUdeviceptr), scalars alpha/beta as host pointers
// (the default CUBLAS_POINTER_MODE_HOST).
internal static unsafe partial class Cublas
{
    private const string Lib = "cublas";

    [LibraryImport(Lib)] public static partial int cublasCreate_v2(nint* handle);
    [LibraryImport(Lib)] public static partial int cublasDestroy_v2(nint handle);
    [LibraryImport(Lib)] public static partial int cublasGetVersion_v2(nint handle, int* version);
    [LibraryImport(Lib)] public static partial int cublasGetProperty(libraryPropertyType type, int* value);
    [LibraryImport(Lib)] public static partial int cublasSetStream_v2(nint handle, nint streamId);
    [LibraryImport(Lib)] public static partial int cublasSetWorkspace_v2(nint handle, ulong workspace, nuint workspaceSizeInBytes);
    [LibraryImport(Lib)] public static partial int cublasSetMathMode(nint handle, cublasMath_t mode);
    [LibraryImport(Lib)] public static partial byte* cublasGetStatusString(int status);

    [LibraryImport(Lib)]
    public static partial int cublasSgemm_v2(nint handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
        float* alpha, ulong A, int lda, ulong B, int ldb, float* beta, ulong C, int ldc);

    [LibraryImport(Lib)]
    public static partial int cublasDgemm_v2(nint handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
        double* alpha, ulong A, int lda, ulong B, int ldb, double* beta, ulong C, int ldc);

    /// <summary>cublasStatus_t values by name (cublas_api.h).</summary>
    public static string StatusName(int status) => status switch
    {
        0 => "CUBLAS_STATUS_SUCCESS",
        1 => "CUBLAS_STATUS_NOT_INITIALIZED",
        3 => "CUBLAS_STATUS_ALLOC_FAILED",
        7 => "CUBLAS_STATUS_INVALID_VALUE",
        8 => "CUBLAS_STATUS_ARCH_MISMATCH",
        11 => "CUBLAS_STATUS_MAPPING_ERROR",
        13 => "CUBLAS_STATUS_EXECUTION_FAILED",
        14 => "CUBLAS_STATUS_INTERNAL_ERROR",
        15 => "CUBLAS_STATUS_NOT_SUPPORTED",
        16 => "CUBLAS_STATUS_LICENSE_ERROR",
        _ => $"CUBLAS_STATUS_{status}",
    };
}

// cublasOperation_t (cublas_api.h).
internal enum cublasOperation_t
{
    CUBLAS_OP_N = 0,
    CUBLAS_OP_T = 1,
    CUBLAS_OP_C = 2,
}

// cublasMath_t (cublas_api.h).
internal enum cublasMath_t
{
    CUBLAS_DEFAULT_MATH = 0,
    CUBLAS_TENSOR_OP_MATH = 1,
    CUBLAS_PEDANTIC_MATH = 2,
    CUBLAS_TF32_TENSOR_OP_MATH = 3,
    CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16,
}

// libraryPropertyType (library_types.h).
internal enum libraryPropertyType
{
    MAJOR_VERSION = 0,
    MINOR_VERSION = 1,
    PATCH_LEVEL = 2,
}
