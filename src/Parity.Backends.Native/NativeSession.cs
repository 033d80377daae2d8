using Parity.Tracing;

namespace Parity.Backends.Native;

/// <summary>
/// A native training session: the model's parameters, optimizer state and running statistics live in device
/// memory across steps; a step enqueues its kernels and copies back only the captured kinds.
/// </summary>
public abstract class NativeSession : IBackendSession
{
    /// <summary>The device this session runs on and why.</summary>
    public abstract NativeDeviceChoice Device { get; }

    /// <summary>Kernel launches enqueued since the session opened (divide by steps for launches per step).</summary>
    public abstract long KernelLaunches { get; }

    /// <summary>Waits until every enqueued kernel and copy has finished (for timing on CUDA).</summary>
    public abstract void Synchronize();

    /// <inheritdoc />
    public abstract IReadOnlyList<ConventionMismatch> Mismatches { get; }

    /// <inheritdoc />
    public abstract IReadOnlyDictionary<string, string> RuntimeInfo { get; }

    /// <inheritdoc />
    public abstract StepRecord ReadState(int step);

    /// <inheritdoc />
    public abstract StepRecord Step(int step, Data.Batch batch, CaptureRequest capture);

    /// <inheritdoc />
    public abstract StepRecord Evaluate(int step, Data.Batch data, CaptureRequest capture);

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases device memory, the accelerator and the context.</summary>
    protected abstract void Dispose(bool disposing);
}
