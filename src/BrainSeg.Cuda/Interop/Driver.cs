using System.Runtime.InteropServices;

namespace BrainSeg.Cuda;

// CUDA driver API (cuda.h). Every function returns a CUresult (0 = CUDA_SUCCESS); check it with Check.Cu.
// Entry points are the versioned symbols that cuda.h's macros map the plain names to
// (cuMemAlloc -> cuMemAlloc_v2, cuStreamBeginCapture -> cuStreamBeginCapture_v2, ...).
// Types: CUdevice = int, CUdeviceptr = unsigned long long (ulong), handles = pointers (nint), size_t = nuint.
internal static unsafe partial class Driver
{
    private const string Lib = "cuda";

    public const int CUDA_SUCCESS = 0;
    public const int CUDA_ERROR_OUT_OF_MEMORY = 2;
    public const int CUDA_ERROR_NOT_INITIALIZED = 3;
    public const int CUDA_ERROR_NO_DEVICE = 100;
    public const int CUDA_ERROR_NOT_READY = 600;

    public const uint CU_STREAM_NON_BLOCKING = 0x1;   // CUstream_flags
    public const uint CU_EVENT_DEFAULT = 0x0;         // CUevent_flags: timing enabled
    public const uint CU_EVENT_DISABLE_TIMING = 0x2;  // CUevent_flags: ordering only, cheaper to record and wait on

    [LibraryImport(Lib)] public static partial int cuInit(uint flags);
    [LibraryImport(Lib)] public static partial int cuDriverGetVersion(int* driverVersion);
    [LibraryImport(Lib)] public static partial int cuGetErrorName(int error, byte** pStr);
    [LibraryImport(Lib)] public static partial int cuGetErrorString(int error, byte** pStr);

    // Devices
    [LibraryImport(Lib)] public static partial int cuDeviceGetCount(int* count);
    [LibraryImport(Lib)] public static partial int cuDeviceGet(int* device, int ordinal);
    [LibraryImport(Lib)] public static partial int cuDeviceGetName(byte* name, int len, int dev);
    [LibraryImport(Lib)] public static partial int cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, int dev);
    [LibraryImport(Lib)] public static partial int cuDeviceTotalMem_v2(nuint* bytes, int dev);

    // Primary context: shared with cuBLAS and cuDNN, which use whatever context is current.
    [LibraryImport(Lib)] public static partial int cuDevicePrimaryCtxRetain(nint* pctx, int dev);
    [LibraryImport(Lib)] public static partial int cuDevicePrimaryCtxRelease_v2(int dev);
    [LibraryImport(Lib)] public static partial int cuCtxSetCurrent(nint ctx);
    [LibraryImport(Lib)] public static partial int cuCtxGetCurrent(nint* pctx);
    [LibraryImport(Lib)] public static partial int cuCtxSynchronize();

    // Streams and events
    [LibraryImport(Lib)] public static partial int cuStreamCreate(nint* phStream, uint flags);
    [LibraryImport(Lib)] public static partial int cuStreamDestroy_v2(nint hStream);
    [LibraryImport(Lib)] public static partial int cuStreamSynchronize(nint hStream);
    [LibraryImport(Lib)] public static partial int cuEventCreate(nint* phEvent, uint flags);
    [LibraryImport(Lib)] public static partial int cuEventDestroy_v2(nint hEvent);
    [LibraryImport(Lib)] public static partial int cuEventRecord(nint hEvent, nint hStream);
    [LibraryImport(Lib)] public static partial int cuEventSynchronize(nint hEvent);
    [LibraryImport(Lib)] public static partial int cuEventQuery(nint hEvent);
    [LibraryImport(Lib)] public static partial int cuStreamWaitEvent(nint hStream, nint hEvent, uint flags);
    [LibraryImport(Lib)] public static partial int cuEventElapsedTime(float* pMilliseconds, nint hStart, nint hEnd);

    // Memory
    [LibraryImport(Lib)] public static partial int cuMemAlloc_v2(ulong* dptr, nuint bytesize);
    [LibraryImport(Lib)] public static partial int cuMemFree_v2(ulong dptr);
    [LibraryImport(Lib)] public static partial int cuMemAllocHost_v2(void** pp, nuint bytesize);
    [LibraryImport(Lib)] public static partial int cuMemFreeHost(void* p);
    [LibraryImport(Lib)] public static partial int cuMemGetInfo_v2(nuint* free, nuint* total);
    [LibraryImport(Lib)] public static partial int cuMemcpyHtoDAsync_v2(ulong dstDevice, void* srcHost, nuint byteCount, nint hStream);
    [LibraryImport(Lib)] public static partial int cuMemcpyDtoHAsync_v2(void* dstHost, ulong srcDevice, nuint byteCount, nint hStream);
    [LibraryImport(Lib)] public static partial int cuMemcpyDtoDAsync_v2(ulong dstDevice, ulong srcDevice, nuint byteCount, nint hStream);
    [LibraryImport(Lib)] public static partial int cuMemsetD8Async(ulong dstDevice, byte value, nuint count, nint hStream);
    [LibraryImport(Lib)] public static partial int cuMemsetD32Async(ulong dstDevice, uint value, nuint count, nint hStream);

    // Modules and kernels
    [LibraryImport(Lib)] public static partial int cuModuleLoadData(nint* module, void* image);
    [LibraryImport(Lib)] public static partial int cuModuleUnload(nint hmod);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int cuModuleGetFunction(nint* hfunc, nint hmod, string name);
    [LibraryImport(Lib)]
    public static partial int cuLaunchKernel(nint f, uint gridDimX, uint gridDimY, uint gridDimZ,
        uint blockDimX, uint blockDimY, uint blockDimZ, uint sharedMemBytes, nint hStream, void** kernelParams, void** extra);

    // Graphs via stream capture
    [LibraryImport(Lib)] public static partial int cuStreamBeginCapture_v2(nint hStream, CUstreamCaptureMode mode);
    [LibraryImport(Lib)] public static partial int cuStreamEndCapture(nint hStream, nint* phGraph);
    [LibraryImport(Lib)] public static partial int cuGraphInstantiateWithFlags(nint* phGraphExec, nint hGraph, ulong flags);
    [LibraryImport(Lib)] public static partial int cuGraphLaunch(nint hGraphExec, nint hStream);
    [LibraryImport(Lib)] public static partial int cuGraphExecDestroy(nint hGraphExec);
    [LibraryImport(Lib)] public static partial int cuGraphDestroy(nint hGraph);
}

// CUdevice_attribute (cuda.h): only the values this project reads.
internal enum CUdevice_attribute
{
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8,
    CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
}

// CUstreamCaptureMode (cuda.h).
internal enum CUstreamCaptureMode
{
    CU_STREAM_CAPTURE_MODE_GLOBAL = 0,
    CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1,
    CU_STREAM_CAPTURE_MODE_RELAXED = 2,
}
