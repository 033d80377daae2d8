using TorchSharp;

namespace Parity.Backends.TorchSharp.Tests;

/// <summary>Process-wide libtorch settings for the test run.</summary>
[SetUpFixture]
public sealed class LibTorchSetUp
{
    [OneTimeSetUp]
    public void OneThread()
    {
        // The test machines are 2-core and shared: libtorch's OpenMP workers spin-wait and ran a step 30x
        // slower with 2 threads than with 1 under that load (measured here). Results do not depend on it.
        if (TorchSharpBackend.NativeStatus.Loaded) torch.set_num_threads(1);
    }
}
