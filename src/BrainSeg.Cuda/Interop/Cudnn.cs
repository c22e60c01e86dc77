using System.Runtime.InteropServices;

namespace BrainSeg.Cuda;

// cuDNN 9 legacy API (cudnn_graph.h, cudnn_ops.h, cudnn_cnn.h), all exported by the dispatcher libcudnn.so.9.
// Functions return cudnnStatus_t (0 = CUDNN_STATUS_SUCCESS); check with Check.Cudnn.
// Descriptors and the handle are pointers (nint); device buffers are passed as ulong (CUdeviceptr);
// alpha/beta are host pointers to float for float data and to double for double data.
internal static unsafe partial class Cudnn
{
    private const string Lib = "cudnn";

    // Library and handle (cudnn_graph.h)
    [LibraryImport(Lib)] public static partial nuint cudnnGetVersion();
    [LibraryImport(Lib)] public static partial byte* cudnnGetErrorString(int status);
    [LibraryImport(Lib)] public static partial void cudnnGetLastErrorString(byte* message, nuint maxSize);
    [LibraryImport(Lib)] public static partial int cudnnCreate(nint* handle);
    [LibraryImport(Lib)] public static partial int cudnnDestroy(nint handle);
    [LibraryImport(Lib)] public static partial int cudnnSetStream(nint handle, nint streamId);

    // Tensor descriptors (cudnn_ops.h): note format BEFORE data type here ...
    [LibraryImport(Lib)] public static partial int cudnnCreateTensorDescriptor(nint* tensorDesc);
    [LibraryImport(Lib)] public static partial int cudnnDestroyTensorDescriptor(nint tensorDesc);
    [LibraryImport(Lib)]
    public static partial int cudnnSetTensor4dDescriptor(nint tensorDesc, cudnnTensorFormat_t format, cudnnDataType_t dataType,
        int n, int c, int h, int w);
    [LibraryImport(Lib)]
    public static partial int cudnnSetTensor4dDescriptorEx(nint tensorDesc, cudnnDataType_t dataType,
        int n, int c, int h, int w, int nStride, int cStride, int hStride, int wStride);

    // ... and data type BEFORE format for filters.
    [LibraryImport(Lib)] public static partial int cudnnCreateFilterDescriptor(nint* filterDesc);
    [LibraryImport(Lib)] public static partial int cudnnDestroyFilterDescriptor(nint filterDesc);
    [LibraryImport(Lib)]
    public static partial int cudnnSetFilter4dDescriptor(nint filterDesc, cudnnDataType_t dataType, cudnnTensorFormat_t format,
        int k, int c, int h, int w);

    // Convolution descriptor (cudnn_cnn.h)
    [LibraryImport(Lib)] public static partial int cudnnCreateConvolutionDescriptor(nint* convDesc);
    [LibraryImport(Lib)] public static partial int cudnnDestroyConvolutionDescriptor(nint convDesc);
    [LibraryImport(Lib)]
    public static partial int cudnnSetConvolution2dDescriptor(nint convDesc, int padH, int padW, int u, int v,
        int dilationH, int dilationW, cudnnConvolutionMode_t mode, cudnnDataType_t computeType);
    [LibraryImport(Lib)] public static partial int cudnnSetConvolutionMathType(nint convDesc, cudnnMathType_t mathType);
    [LibraryImport(Lib)]
    public static partial int cudnnGetConvolution2dForwardOutputDim(nint convDesc, nint inputTensorDesc, nint filterDesc,
        int* n, int* c, int* h, int* w);

    // Algorithm search (times real kernels: once per shape, never inside a graph capture)
    [LibraryImport(Lib)] public static partial int cudnnGetConvolutionForwardAlgorithmMaxCount(nint handle, int* count);
    [LibraryImport(Lib)] public static partial int cudnnGetConvolutionBackwardDataAlgorithmMaxCount(nint handle, int* count);
    [LibraryImport(Lib)] public static partial int cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(nint handle, int* count);

    [LibraryImport(Lib)]
    public static partial int cudnnFindConvolutionForwardAlgorithmEx(nint handle, nint xDesc, ulong x, nint wDesc, ulong w,
        nint convDesc, nint yDesc, ulong y, int requestedAlgoCount, int* returnedAlgoCount,
        cudnnConvolutionFwdAlgoPerf_t* perfResults, ulong workSpace, nuint workSpaceSizeInBytes);
    [LibraryImport(Lib)]
    public static partial int cudnnFindConvolutionBackwardDataAlgorithmEx(nint handle, nint wDesc, ulong w, nint dyDesc, ulong dy,
        nint convDesc, nint dxDesc, ulong dx, int requestedAlgoCount, int* returnedAlgoCount,
        cudnnConvolutionBwdDataAlgoPerf_t* perfResults, ulong workSpace, nuint workSpaceSizeInBytes);
    [LibraryImport(Lib)]
    public static partial int cudnnFindConvolutionBackwardFilterAlgorithmEx(nint handle, nint xDesc, ulong x, nint dyDesc, ulong dy,
        nint convDesc, nint dwDesc, ulong dw, int requestedAlgoCount, int* returnedAlgoCount,
        cudnnConvolutionBwdFilterAlgoPerf_t* perfResults, ulong workSpace, nuint workSpaceSizeInBytes);

    [LibraryImport(Lib)]
    public static partial int cudnnGetConvolutionForwardWorkspaceSize(nint handle, nint xDesc, nint wDesc, nint convDesc, nint yDesc,
        cudnnConvolutionFwdAlgo_t algo, nuint* sizeInBytes);
    [LibraryImport(Lib)]
    public static partial int cudnnGetConvolutionBackwardDataWorkspaceSize(nint handle, nint wDesc, nint dyDesc, nint convDesc, nint dxDesc,
        cudnnConvolutionBwdDataAlgo_t algo, nuint* sizeInBytes);
    [LibraryImport(Lib)]
    public static partial int cudnnGetConvolutionBackwardFilterWorkspaceSize(nint handle, nint xDesc, nint dyDesc, nint convDesc, nint gradDesc,
        cudnnConvolutionBwdFilterAlgo_t algo, nuint* sizeInBytes);

    // Convolution compute
    [LibraryImport(Lib)]
    public static partial int cudnnConvolutionForward(nint handle, void* alpha, nint xDesc, ulong x, nint wDesc, ulong w,
        nint convDesc, cudnnConvolutionFwdAlgo_t algo, ulong workSpace, nuint workSpaceSizeInBytes, void* beta, nint yDesc, ulong y);
    [LibraryImport(Lib)]
    public static partial int cudnnConvolutionBackwardData(nint handle, void* alpha, nint wDesc, ulong w, nint dyDesc, ulong dy,
        nint convDesc, cudnnConvolutionBwdDataAlgo_t algo, ulong workSpace, nuint workSpaceSizeInBytes, void* beta, nint dxDesc, ulong dx);
    [LibraryImport(Lib)]
    public static partial int cudnnConvolutionBackwardFilter(nint handle, void* alpha, nint xDesc, ulong x, nint dyDesc, ulong dy,
        nint convDesc, cudnnConvolutionBwdFilterAlgo_t algo, ulong workSpace, nuint workSpaceSizeInBytes, void* beta, nint dwDesc, ulong dw);
    [LibraryImport(Lib)]
    public static partial int cudnnConvolutionBackwardBias(nint handle, void* alpha, nint dyDesc, ulong dy, void* beta, nint dbDesc, ulong db);

    // Batch normalisation (cudnn_ops.h)
    [LibraryImport(Lib)]
    public static partial int cudnnDeriveBNTensorDescriptor(nint derivedBnDesc, nint xDesc, cudnnBatchNormMode_t mode);
    [LibraryImport(Lib)]
    public static partial int cudnnBatchNormalizationForwardTraining(nint handle, cudnnBatchNormMode_t mode, void* alpha, void* beta,
        nint xDesc, ulong x, nint yDesc, ulong y, nint bnScaleBiasMeanVarDesc, ulong bnScale, ulong bnBias,
        double exponentialAverageFactor, ulong resultRunningMean, ulong resultRunningVariance, double epsilon,
        ulong resultSaveMean, ulong resultSaveInvVariance);
    [LibraryImport(Lib)]
    public static partial int cudnnBatchNormalizationForwardInference(nint handle, cudnnBatchNormMode_t mode, void* alpha, void* beta,
        nint xDesc, ulong x, nint yDesc, ulong y, nint bnScaleBiasMeanVarDesc, ulong bnScale, ulong bnBias,
        ulong estimatedMean, ulong estimatedVariance, double epsilon);
    [LibraryImport(Lib)]
    public static partial int cudnnBatchNormalizationBackward(nint handle, cudnnBatchNormMode_t mode,
        void* alphaDataDiff, void* betaDataDiff, void* alphaParamDiff, void* betaParamDiff,
        nint xDesc, ulong x, nint dyDesc, ulong dy, nint dxDesc, ulong dx, nint dBnScaleBiasDesc, ulong bnScale,
        ulong dBnScaleResult, ulong dBnBiasResult, double epsilon, ulong savedMean, ulong savedInvVariance);

    // Pooling (cudnn_ops.h)
    [LibraryImport(Lib)] public static partial int cudnnCreatePoolingDescriptor(nint* poolingDesc);
    [LibraryImport(Lib)] public static partial int cudnnDestroyPoolingDescriptor(nint poolingDesc);
    [LibraryImport(Lib)]
    public static partial int cudnnSetPooling2dDescriptor(nint poolingDesc, cudnnPoolingMode_t mode, cudnnNanPropagation_t maxpoolingNanOpt,
        int windowHeight, int windowWidth, int verticalPadding, int horizontalPadding, int verticalStride, int horizontalStride);
    [LibraryImport(Lib)]
    public static partial int cudnnPoolingForward(nint handle, nint poolingDesc, void* alpha, nint xDesc, ulong x, void* beta, nint yDesc, ulong y);
    [LibraryImport(Lib)]
    public static partial int cudnnPoolingBackward(nint handle, nint poolingDesc, void* alpha, nint yDesc, ulong y, nint dyDesc, ulong dy,
        nint xDesc, ulong x, void* beta, nint dxDesc, ulong dx);

    // C = alpha * A + beta * C, A broadcast over C (e.g. a 1xCx1x1 bias)
    [LibraryImport(Lib)]
    public static partial int cudnnAddTensor(nint handle, void* alpha, nint aDesc, ulong A, void* beta, nint cDesc, ulong C);
}

// Enums (cudnn_graph.h / cudnn_ops.h / cudnn_cnn.h, cuDNN 9), values as in the headers.
internal enum cudnnDataType_t
{
    CUDNN_DATA_FLOAT = 0,
    CUDNN_DATA_DOUBLE = 1,
    CUDNN_DATA_HALF = 2,
    CUDNN_DATA_INT8 = 3,
    CUDNN_DATA_INT32 = 4,
}

internal enum cudnnTensorFormat_t
{
    CUDNN_TENSOR_NCHW = 0,
    CUDNN_TENSOR_NHWC = 1,
    CUDNN_TENSOR_NCHW_VECT_C = 2,
}

internal enum cudnnConvolutionMode_t
{
    CUDNN_CONVOLUTION = 0,
    CUDNN_CROSS_CORRELATION = 1,
}

internal enum cudnnMathType_t
{
    CUDNN_DEFAULT_MATH = 0,
    CUDNN_TENSOR_OP_MATH = 1,
    CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2,
    CUDNN_FMA_MATH = 3,
}

internal enum cudnnDeterminism_t
{
    CUDNN_NON_DETERMINISTIC = 0,
    CUDNN_DETERMINISTIC = 1,
}

internal enum cudnnBatchNormMode_t
{
    CUDNN_BATCHNORM_PER_ACTIVATION = 0,
    CUDNN_BATCHNORM_SPATIAL = 1,
    CUDNN_BATCHNORM_SPATIAL_PERSISTENT = 2,
}

internal enum cudnnPoolingMode_t
{
    CUDNN_POOLING_MAX = 0,
    CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING = 1,
    CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING = 2,
    CUDNN_POOLING_MAX_DETERMINISTIC = 3,
}

internal enum cudnnNanPropagation_t
{
    CUDNN_NOT_PROPAGATE_NAN = 0,
    CUDNN_PROPAGATE_NAN = 1,
}

internal enum cudnnConvolutionFwdAlgo_t
{
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM = 0,
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM = 1,
    CUDNN_CONVOLUTION_FWD_ALGO_GEMM = 2,
    CUDNN_CONVOLUTION_FWD_ALGO_DIRECT = 3,
    CUDNN_CONVOLUTION_FWD_ALGO_FFT = 4,
    CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING = 5,
    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD = 6,
    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED = 7,
    CUDNN_CONVOLUTION_FWD_ALGO_COUNT = 8,
}

internal enum cudnnConvolutionBwdDataAlgo_t
{
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 = 0,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 = 1,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT = 2,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING = 3,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD = 4,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED = 5,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT = 6,
}

internal enum cudnnConvolutionBwdFilterAlgo_t
{
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 = 0,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 = 1,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT = 2,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3 = 3,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD = 4,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED = 5,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING = 6,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT = 7,
}

// Algorithm perf results: { algo; status; float time; size_t memory; determinism; mathType; int reserved[3]; }
// Sequential layout gives the C offsets 0, 4, 8, 16, 24, 28, 32 and size 48 (checked in a test).
[StructLayout(LayoutKind.Sequential)]
internal struct cudnnConvolutionFwdAlgoPerf_t
{
    public cudnnConvolutionFwdAlgo_t algo;
    public int status;
    public float time;
    public nuint memory;
    public cudnnDeterminism_t determinism;
    public cudnnMathType_t mathType;
    public int reserved0, reserved1, reserved2;
}

[StructLayout(LayoutKind.Sequential)]
internal struct cudnnConvolutionBwdDataAlgoPerf_t
{
    public cudnnConvolutionBwdDataAlgo_t algo;
    public int status;
    public float time;
    public nuint memory;
    public cudnnDeterminism_t determinism;
    public cudnnMathType_t mathType;
    public int reserved0, reserved1, reserved2;
}

[StructLayout(LayoutKind.Sequential)]
internal struct cudnnConvolutionBwdFilterAlgoPerf_t
{
    public cudnnConvolutionBwdFilterAlgo_t algo;
    public int status;
    public float time;
    public nuint memory;
    public cudnnDeterminism_t determinism;
    public cudnnMathType_t mathType;
    public int reserved0, reserved1, reserved2;
}
