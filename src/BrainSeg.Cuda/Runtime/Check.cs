using System.Runtime.InteropServices;

namespace BrainSeg.Cuda;

/// <summary>Turns a library status into a CudaException that names the call and carries the library's own error text.</summary>
internal static unsafe class Check
{
    public static void Cu(int status, string call)
    {
        if (status != Driver.CUDA_SUCCESS) throw CuError(status, call);
    }

    public static CudaException CuError(int status, string call) =>
        new(call, status, CuErrorName(status), CuErrorString(status));

    public static string CuErrorName(int status)
    {
        byte* text = null;
        try
        {
            if (Driver.cuGetErrorName(status, &text) == 0 && text != null) return Marshal.PtrToStringUTF8((nint)text) ?? "";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
        return $"CUresult {status}";
    }

    private static string CuErrorString(int status)
    {
        byte* text = null;
        try
        {
            if (Driver.cuGetErrorString(status, &text) == 0 && text != null) return Marshal.PtrToStringUTF8((nint)text) ?? "";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
        return "";
    }

    public static void Nvrtc(int status, string call)
    {
        if (status == 0) return;
        string name;
        try { name = Marshal.PtrToStringUTF8((nint)global::BrainSeg.Cuda.Nvrtc.nvrtcGetErrorString(status)) ?? $"nvrtcResult {status}"; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { name = $"nvrtcResult {status}"; }
        throw new CudaException(call, status, name, "");
    }

    public static void Cublas(int status, string call)
    {
        if (status == 0) return;
        string detail = "";
        try
        {
            byte* text = global::BrainSeg.Cuda.Cublas.cublasGetStatusString(status);
            if (text != null) detail = Marshal.PtrToStringUTF8((nint)text) ?? "";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
        throw new CudaException(call, status, global::BrainSeg.Cuda.Cublas.StatusName(status), detail);
    }

    public static void Cudnn(int status, string call)
    {
        if (status == 0) return;
        string name = $"cudnnStatus_t {status}", detail = "";
        try
        {
            byte* text = global::BrainSeg.Cuda.Cudnn.cudnnGetErrorString(status);
            if (text != null) name = Marshal.PtrToStringUTF8((nint)text) ?? name;
            // cuDNN 9 keeps a message that says which parameter was wrong; far more useful than the status name.
            const int size = 1024;
            byte* buffer = stackalloc byte[size];
            buffer[0] = 0;
            global::BrainSeg.Cuda.Cudnn.cudnnGetLastErrorString(buffer, size);
            buffer[size - 1] = 0;
            detail = (Marshal.PtrToStringUTF8((nint)buffer) ?? "").Trim();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
        throw new CudaException(call, status, name, detail);
    }
}
