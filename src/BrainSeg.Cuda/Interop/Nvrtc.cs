using System.Runtime.InteropServices;

namespace BrainSeg.Cuda;

// NVRTC (nvrtc.h). Functions return nvrtcResult (0 = NVRTC_SUCCESS); check with Check.Nvrtc.
// Strings are passed as NUL-terminated UTF-8 (byte*) because CreateProgram/CompileProgram take arrays of them.
internal static unsafe partial class Nvrtc
{
    private const string Lib = "nvrtc";

    public const int NVRTC_SUCCESS = 0;
    public const int NVRTC_ERROR_INVALID_OPTION = 5;
    public const int NVRTC_ERROR_COMPILATION = 6;

    [LibraryImport(Lib)] public static partial byte* nvrtcGetErrorString(int result);
    [LibraryImport(Lib)] public static partial int nvrtcVersion(int* major, int* minor);
    [LibraryImport(Lib)] public static partial int nvrtcGetNumSupportedArchs(int* numArchs);
    [LibraryImport(Lib)] public static partial int nvrtcGetSupportedArchs(int* supportedArchs);

    [LibraryImport(Lib)]
    public static partial int nvrtcCreateProgram(nint* prog, byte* src, byte* name, int numHeaders, byte** headers, byte** includeNames);
    [LibraryImport(Lib)] public static partial int nvrtcDestroyProgram(nint* prog);
    [LibraryImport(Lib)] public static partial int nvrtcCompileProgram(nint prog, int numOptions, byte** options);
    [LibraryImport(Lib)] public static partial int nvrtcGetProgramLogSize(nint prog, nuint* logSizeRet);
    [LibraryImport(Lib)] public static partial int nvrtcGetProgramLog(nint prog, byte* log);
    [LibraryImport(Lib)] public static partial int nvrtcGetCUBINSize(nint prog, nuint* cubinSizeRet);
    [LibraryImport(Lib)] public static partial int nvrtcGetCUBIN(nint prog, byte* cubin);
    [LibraryImport(Lib)] public static partial int nvrtcGetPTXSize(nint prog, nuint* ptxSizeRet);
    [LibraryImport(Lib)] public static partial int nvrtcGetPTX(nint prog, byte* ptx);
}
