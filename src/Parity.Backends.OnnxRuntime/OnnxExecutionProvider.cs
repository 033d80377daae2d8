using Microsoft.ML.OnnxRuntime;

namespace Parity.Backends.OnnxRuntime;

/// <summary>
/// The execution provider an arbiter session ran on, and why it was not CUDA when it was not (docs/onnx.md). The arbiter
/// asks for CUDA unless the CPU is requested; the CPU package, a GPU package without the CUDA libraries, and a machine
/// without a usable GPU all end on the CPU provider with ONNX Runtime's own message as the reason.
/// </summary>
/// <param name="Name">ONNX Runtime's name: <see cref="Cuda"/> or <see cref="Cpu"/>.</param>
/// <param name="CudaNotUsed">Why the CUDA provider did not run (ONNX Runtime's message, or the request for the CPU); null when it ran.</param>
public sealed record OnnxExecutionProvider(string Name, string? CudaNotUsed)
{
    /// <summary>ONNX Runtime's name of its CUDA execution provider.</summary>
    public const string Cuda = "CUDAExecutionProvider";

    /// <summary>ONNX Runtime's name of its CPU execution provider.</summary>
    public const string Cpu = "CPUExecutionProvider";

    /// <summary>The runtime entry naming the provider that ran.</summary>
    public const string ProviderKey = "executionProvider";

    /// <summary>The runtime entry, present on the CPU only, saying why CUDA did not run.</summary>
    public const string CudaNotUsedKey = "cudaNotUsed";

    /// <summary>The runtime entries of an arbitration: ONNX Runtime's version, the provider and, on the CPU, why not CUDA.</summary>
    public IReadOnlyDictionary<string, string> RuntimeInfo
    {
        get
        {
            var info = new Dictionary<string, string> { ["onnxruntime"] = OnnxArbiter.RuntimeVersion, [ProviderKey] = Name };
            if (CudaNotUsed is not null) info[CudaNotUsedKey] = CudaNotUsed;
            return info;
        }
    }

    /// <summary>One line for tables: the provider, and on the CPU why not CUDA.</summary>
    public string Summary => CudaNotUsed is null ? Name : $"{Name} (CUDA not used: {CudaNotUsed})";

    /// <summary>
    /// Opens <paramref name="model"/> on CUDA when <paramref name="device"/> allows it (null or <c>cuda</c>) and the CUDA
    /// provider loads and starts, otherwise on the CPU provider. <paramref name="configure"/> sets the options both share.
    /// </summary>
    /// <exception cref="BackendException"><paramref name="device"/> is neither cpu nor cuda.</exception>
    /// <exception cref="OnnxRuntimeException">The CPU session cannot be created either (a bad model).</exception>
    internal static (InferenceSession Session, OnnxExecutionProvider Provider) Open(byte[] model, string? device, Action<SessionOptions> configure)
    {
        string reason;
        if (WantsCuda(device))
        {
            try
            {
                using var options = CudaOptions(configure);
                return (new InferenceSession(model, options), new OnnxExecutionProvider(Cuda, null));
            }
            catch (OnnxRuntimeException e)
            {
                // The provider library did not load (no CUDA build, a missing libcublasLt...) or found no usable GPU.
                reason = OneLine(e.Message);
            }
        }
        else
        {
            reason = "the CPU was requested (--device cpu)";
        }
        using var cpuOptions = new SessionOptions();
        configure(cpuOptions);
        return (new InferenceSession(model, cpuOptions), new OnnxExecutionProvider(Cpu, reason));
    }

    /// <summary>
    /// Whether the CUDA provider loads in this process (its library and the CUDA libraries it links), without opening a
    /// session: a machine without a usable GPU passes this and fails at the first session, which <see cref="Open"/> records.
    /// Returns null when it loads, otherwise ONNX Runtime's reason.
    /// </summary>
    internal static string? CudaLoadFailure()
    {
        try
        {
            using var options = CudaOptions(_ => { });
            return null;
        }
        catch (OnnxRuntimeException e)
        {
            return OneLine(e.Message);
        }
    }

    private static bool WantsCuda(string? device) => device?.ToLowerInvariant() switch
    {
        null or "" or "cuda" => true,
        "cpu" => false,
        _ => throw new BackendException($"onnxruntime: unknown device '{device}'; use cpu or cuda"),
    };

    // TF32 off: the arbiter checks float32 eval outputs, and TF32 matrix products round the inputs to 10 mantissa bits.
    private static SessionOptions CudaOptions(Action<SessionOptions> configure)
    {
        var options = new SessionOptions();
        try
        {
            configure(options);
            using var cuda = new OrtCUDAProviderOptions();
            cuda.UpdateOptions(new Dictionary<string, string> { ["device_id"] = "0", ["use_tf32"] = "0" });
            options.AppendExecutionProvider_CUDA(cuda);
            return options;
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }

    // ONNX Runtime's messages carry the source location and status code on the same line; keep them, drop line breaks.
    private static string OneLine(string message) => string.Join(' ', message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
