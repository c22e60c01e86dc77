using BrainSeg.Cuda;
using NUnit.Framework;

namespace BrainSeg.Tests.CudaRuntime;

public class KernelCacheTests
{
    private static readonly (string, string)[] Headers = [("philox.cuh", "#pragma once\n")];
    private static readonly string[] Options = ["-default-device", "-std=c++17", "--gpu-architecture=sm_90"];

    private static string Key(string source = "k", (string, string)[]? headers = null, string[]? options = null, string arch = "sm_90", string nvrtc = "12.4") =>
        KernelCache.CacheKey("elementwise", source, headers ?? Headers, options ?? Options, arch, nvrtc);

    [Test]
    public void TheCacheKeyIsStableAndChangesWithEveryInput()
    {
        string key = Key();
        Assert.That(key, Has.Length.EqualTo(64).And.EqualTo(Key()));
        Assert.That(Key(source: "k2"), Is.Not.EqualTo(key));
        Assert.That(Key(headers: [("philox.cuh", "#pragma once\n// changed\n")]), Is.Not.EqualTo(key));
        Assert.That(Key(options: ["-default-device", "-std=c++20", "--gpu-architecture=sm_90"]), Is.Not.EqualTo(key));
        Assert.That(Key(arch: "sm_80"), Is.Not.EqualTo(key));
        Assert.That(Key(nvrtc: "12.5"), Is.Not.EqualTo(key));
        Assert.That(KernelCache.CacheKey("other", "k", Headers, Options, "sm_90", "12.4"), Is.Not.EqualTo(key));
    }

    [Test]
    public void FastMathIsNotUsed() => Assert.That(KernelCache.BaseOptions, Has.None.Contains("fast_math"));

    [Test]
    public void TheTargetIsRealCodeForAKnownArchitectureAndPtxOtherwise()
    {
        int[] supported = [75, 80, 86, 89, 90];
        Assert.That(KernelCache.ChooseTarget(90, supported, "12.4"), Is.EqualTo(new KernelCache.Target("--gpu-architecture=sm_90", true, "12.4")));
        Assert.That(KernelCache.ChooseTarget(100, supported, "12.4"), Is.EqualTo(new KernelCache.Target("--gpu-architecture=compute_90", false, "12.4")));
        Assert.Throws<CudaUnavailableException>(() => KernelCache.ChooseTarget(70, supported, "12.4"));
    }

    [Test]
    public void TheCacheFolderFollowsTheVariable()
    {
        string? saved = Environment.GetEnvironmentVariable(KernelCache.CacheVariable);
        try
        {
            Environment.SetEnvironmentVariable(KernelCache.CacheVariable, "/tmp/brainseg-kernels-test");
            Assert.That(KernelCache.CacheFolder(), Is.EqualTo("/tmp/brainseg-kernels-test"));
            Environment.SetEnvironmentVariable(KernelCache.CacheVariable, null);
            Assert.That(KernelCache.CacheFolder(), Does.EndWith(Path.Combine(".cache", "brainseg", "kernels")));
        }
        finally { Environment.SetEnvironmentVariable(KernelCache.CacheVariable, saved); }
    }

    [TestCase(1, 256)]
    [TestCase(256, 256)]
    [TestCase(257, 512)]
    [TestCase(1000, 1024)]
    [TestCase(1 << 20, 1 << 20)]
    [TestCase((1 << 20) + 1, 2 << 20)]
    [TestCase(5L << 20, 6L << 20)]
    [TestCase(6L << 20, 6L << 20)]
    public void PoolBucketsArePowersOfTwoThenTwoMebibyteGranules(long bytes, long bucket)
    {
        Assert.That(DeviceMemoryPool.BucketSize(bytes), Is.EqualTo(bucket));
        Assert.That(DeviceMemoryPool.BucketSize(bucket), Is.EqualTo(bucket), "a bucket size is its own bucket");
    }
}
