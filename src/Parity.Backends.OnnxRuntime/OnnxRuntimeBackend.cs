using Parity.Planning;
using Parity.Tensors;

namespace Parity.Backends.OnnxRuntime;

/// <summary>
/// <c>onnxruntime</c>: ONNX Runtime (CUDA execution provider when it loads, CPU otherwise) as an evaluation-only backend. Its real
/// work is <see cref="OnnxArbiter"/>, which the run uses after the training backends finish; this
/// <see cref="IBackend"/> makes it visible in <c>parity backends</c> with its version and availability,
/// and gives a run that lists it as a training backend a session that evaluates the plan's initial
/// state (step 0, through an exported model) and then stops with a clear message.
/// </summary>
public sealed class OnnxRuntimeBackend : IBackend
{
    /// <summary>The message a training step gets.</summary>
    public const string EvaluationOnlyMessage = "onnxruntime is evaluation-only: it checks the checkpoints of the training backends";

    /// <inheritdoc />
    public string Name => "onnxruntime";

    /// <inheritdoc />
    public BackendDescription Describe()
    {
        var devices = new HashSet<string> { "cpu" };
        var capabilities = new BackendCapabilities(new HashSet<DType> { DType.Float32, DType.Float64 }, devices,
            Training: false, SharedInstances: true, FrameworkInit: false);
        try
        {
            string version = OnnxArbiter.RuntimeVersion;
            string? cudaFailure = OnnxExecutionProvider.CudaLoadFailure();
            if (cudaFailure is null) devices.Add("cuda");
            // Loading proves the libraries, not a GPU: a session on a machine without one still ends on the CPU, and says so.
            string provider = cudaFailure is null
                ? $"{OnnxExecutionProvider.Cuda} (its libraries load)"
                : $"{OnnxExecutionProvider.Cpu} (CUDA not used: {cudaFailure})";
            return new BackendDescription(Name, true, $"evaluation only (arbiter of each training backend's checkpoint), execution provider: {provider}",
                new Dictionary<string, string> { ["onnxruntime"] = version }, capabilities);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The managed wrapper throws TypeInitializationException/DllNotFoundException when the native library is missing.
            string reason = (e.InnerException ?? e).Message;
            return new BackendDescription(Name, false, $"ONNX Runtime native library cannot be loaded: {reason}", new Dictionary<string, string>(), capabilities);
        }
    }

    /// <inheritdoc />
    public IBackendSession Open(Plan plan, BackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(options);
        return new OnnxRuntimeSession(plan, options.DType, options.Device);
    }
}
