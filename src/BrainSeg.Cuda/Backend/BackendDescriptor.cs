namespace BrainSeg.Cuda;

/// <summary>
/// One descriptor of cuDNN's graph API: created with a type, given attributes, finalized, then used or queried.
/// Every call is checked and names the attribute, so a refusal says what cuDNN did not accept.
/// </summary>
internal sealed unsafe class BackendDescriptor : IDisposable
{
    private BackendDescriptor(cudnnBackendDescriptorType_t type, nint handle)
    {
        Type = type;
        Handle = handle;
    }

    public cudnnBackendDescriptorType_t Type { get; }
    public nint Handle { get; private set; }

    public static BackendDescriptor Create(cudnnBackendDescriptorType_t type)
    {
        nint handle = 0;
        Check.Cudnn(CudnnGraph.cudnnBackendCreateDescriptor(type, &handle), $"cudnnBackendCreateDescriptor({type})");
        return new BackendDescriptor(type, handle);
    }

    public BackendDescriptor Set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, long count, void* values)
    {
        Check.Cudnn(CudnnGraph.cudnnBackendSetAttribute(Handle, name, type, count, values), $"cudnnBackendSetAttribute({Type}, {name})");
        return this;
    }

    public BackendDescriptor Set(cudnnBackendAttributeName_t name, params ReadOnlySpan<long> values)
    {
        fixed (long* p = values) return Set(name, cudnnBackendAttributeType_t.CUDNN_TYPE_INT64, values.Length, p);
    }

    public BackendDescriptor Set(cudnnBackendAttributeName_t name, params ReadOnlySpan<BackendDescriptor> values)
    {
        var handles = stackalloc nint[values.Length];
        for (var i = 0; i < values.Length; i++) handles[i] = values[i].Handle;
        return Set(name, cudnnBackendAttributeType_t.CUDNN_TYPE_BACKEND_DESCRIPTOR, values.Length, handles);
    }

    /// <summary>An enumeration-valued attribute (data type, convolution mode, heuristics mode, knob type): a 32-bit value.</summary>
    public BackendDescriptor SetEnum(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int value) => Set(name, type, 1, &value);

    /// <summary>The cuDNN handle an operation graph or execution plan belongs to.</summary>
    public BackendDescriptor SetHandle(cudnnBackendAttributeName_t name, nint handle) =>
        Set(name, cudnnBackendAttributeType_t.CUDNN_TYPE_HANDLE, 1, &handle);

    public BackendDescriptor Finish()
    {
        Check.Cudnn(CudnnGraph.cudnnBackendFinalize(Handle), $"cudnnBackendFinalize({Type})");
        return this;
    }

    public long GetInt64(cudnnBackendAttributeName_t name)
    {
        long value = 0, count = 0;
        Check.Cudnn(CudnnGraph.cudnnBackendGetAttribute(Handle, name, cudnnBackendAttributeType_t.CUDNN_TYPE_INT64, 1, &count, &value),
            $"cudnnBackendGetAttribute({Type}, {name})");
        return value;
    }

    /// <summary>The 32-bit enumeration values of an array attribute (numerical notes), at most <paramref name="max"/>.</summary>
    public int[] GetEnums(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int max)
    {
        var values = new int[max];
        long count = 0;
        fixed (int* p = values)
            Check.Cudnn(CudnnGraph.cudnnBackendGetAttribute(Handle, name, type, max, &count, p), $"cudnnBackendGetAttribute({Type}, {name})");
        return values[..(int)Math.Min(count, max)];
    }

    /// <summary>
    /// A descriptor-valued array attribute. cuDNN copies into descriptors the caller created, so first the count is
    /// asked, then that many descriptors of <paramref name="elementType"/> are created and filled (at most <paramref name="max"/>).
    /// </summary>
    public BackendDescriptor[] GetDescriptors(cudnnBackendAttributeName_t name, cudnnBackendDescriptorType_t elementType, int max)
    {
        long available = 0;
        Check.Cudnn(CudnnGraph.cudnnBackendGetAttribute(Handle, name, cudnnBackendAttributeType_t.CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &available, null),
            $"cudnnBackendGetAttribute({Type}, {name}, count)");
        int n = (int)Math.Clamp(available, 0, max);
        var result = new BackendDescriptor[n];
        var handles = stackalloc nint[Math.Max(1, n)];
        try
        {
            for (var i = 0; i < n; i++)
            {
                result[i] = Create(elementType);
                handles[i] = result[i].Handle;
            }
            long returned = 0;
            Check.Cudnn(CudnnGraph.cudnnBackendGetAttribute(Handle, name, cudnnBackendAttributeType_t.CUDNN_TYPE_BACKEND_DESCRIPTOR, n, &returned, handles),
                $"cudnnBackendGetAttribute({Type}, {name})");
            for (var i = (int)Math.Max(0, returned); i < n; i++) result[i].Dispose();
            return result[..(int)Math.Clamp(returned, 0, n)];
        }
        catch
        {
            foreach (var d in result) d?.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        // Teardown never throws: a descriptor that cannot be destroyed is only leaked host memory.
        if (Handle != 0) CudnnGraph.cudnnBackendDestroyDescriptor(Handle);
        Handle = 0;
    }
}
