using BrainSeg.Engine.Cpu;
using NUnit.Framework;

/// <summary>
/// For every test in the assembly (a fixture outside any namespace): CPU tensors start as NaN, so an op
/// that reads memory it did not write, or counts on new tensors being zero, fails here and not in use.
/// </summary>
[SetUpFixture]
public sealed class PoisonedHostMemory
{
    [OneTimeSetUp]
    public void PoisonNewTensors() => HostArrayPool.Poison = true;

    [OneTimeTearDown]
    public void Restore() => HostArrayPool.Poison = false;
}
