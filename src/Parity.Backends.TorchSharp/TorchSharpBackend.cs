using System.Reflection;
using Parity.Planning;
using Parity.Tensors;
using TorchSharp;

namespace Parity.Backends.TorchSharp;

/// <summary>
/// The <c>torchsharp</c> backend: the spec's model built from TorchSharp modules (Linear, BatchNorm1d,
/// LayerNorm, ReLU, Identity) running on libtorch, float32 or float64, on CUDA where TorchSharp finds a
/// CUDA build and a GPU, else on the CPU. The native library is loaded on first use; on Debian 12 it only
/// loads after scripts/torchsharp-fix has patched the build output's copy (docs/torchsharp.md).
/// </summary>
public sealed class TorchSharpBackend : IBackend
{
    /// <summary>The name used in <c>--backends</c>, traces and reports.</summary>
    public const string BackendName = "torchsharp";

    // Loading libtorch happens once per process whatever the outcome, so the probe is done once too.
    private static readonly Lazy<NativeProbe> s_probe = new(ProbeNative, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <inheritdoc />
    public string Name => BackendName;

    /// <summary>The TorchSharp assembly version, e.g. <c>0.107.0</c>.</summary>
    public static string TorchSharpVersion
    {
        get
        {
            var assembly = typeof(torch).Assembly;
            string? informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
            // The informational version may carry a "+commit" suffix; the package version is what users know.
            return informational?.Split('+')[0] ?? assembly.GetName().Version?.ToString(3) ?? "unknown";
        }
    }

    /// <summary>True when libtorch loaded in this process; the reason when it did not.</summary>
    public static (bool Loaded, string Reason) NativeStatus => (s_probe.Value.Loaded, s_probe.Value.Reason);

    /// <inheritdoc />
    public BackendDescription Describe()
    {
        var probe = s_probe.Value;
        var versions = new Dictionary<string, string> { ["TorchSharp"] = TorchSharpVersion };
        if (probe.LibTorchVersion is { } libtorch) versions["libtorch"] = libtorch;
        var devices = new HashSet<string> { "cpu" };
        if (probe.CudaAvailable) devices.Add("cuda");
        var capabilities = new BackendCapabilities(
            new HashSet<DType> { DType.Float32, DType.Float64 }, devices,
            Training: true, SharedInstances: true, FrameworkInit: true, OptimizerState: true);
        string reason = probe.Loaded
            ? $"libtorch {probe.LibTorchVersion} on {(probe.CudaAvailable ? "cuda" : "cpu (no CUDA build or GPU found)")}"
            : probe.Reason;
        return new BackendDescription(Name, probe.Loaded, reason, versions, capabilities);
    }

    /// <inheritdoc />
    public IBackendSession Open(Plan plan, BackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(options);
        var probe = s_probe.Value;
        if (!probe.Loaded) throw new BackendException(probe.Reason);
        ApplyThreadSetting();
        return new TorchSharpSession(plan, options, ChooseDevice(options.Device, probe.CudaAvailable));
    }

    /// <summary>
    /// <c>PARITY_TORCH_THREADS=N</c> sets libtorch's intra-op thread count (process-wide). On a loaded 2-core
    /// machine its spinning OpenMP workers made a step 30x slower with 2 threads than with 1 (docs/torchsharp.md).
    /// </summary>
    private static void ApplyThreadSetting()
    {
        string? text = Environment.GetEnvironmentVariable("PARITY_TORCH_THREADS");
        if (string.IsNullOrWhiteSpace(text)) return;
        if (!int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int threads) || threads < 1)
            throw new BackendException($"PARITY_TORCH_THREADS='{text}': expected a whole number of threads, 1 or more");
        if (torch.get_num_threads() != threads) torch.set_num_threads(threads);
    }

    private static torch.Device ChooseDevice(string? requested, bool cudaAvailable) => requested?.ToLowerInvariant() switch
    {
        null or "" => cudaAvailable ? torch.CUDA : torch.CPU,
        "cpu" => torch.CPU,
        "cuda" when cudaAvailable => torch.CUDA,
        "cuda" => throw new BackendException("device 'cuda' requested, but TorchSharp found no CUDA build of libtorch or no GPU (this build uses the TorchSharp-cpu package)"),
        _ => throw new BackendException($"unknown device '{requested}' for torchsharp; use cpu or cuda"),
    };

    private static NativeProbe ProbeNative()
    {
        // Loading TorchSharp's libtorch beside the one PyTorch for Python loaded crashes the process (measured: SIGSEGV).
        if (LoadedLibraries.Find(LoadedLibraries.PyTorch) is string pytorch)
            return new NativeProbe(false, $"PyTorch for Python is loaded in this process ({pytorch}, by torch-pythonnet) and its libtorch crashes "
                + "beside TorchSharp's: run torchsharp in a run without torch-pythonnet, or use the torch-python worker", null, false);
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
            // A real op proves the library and its libtorch dependencies resolve, not only the first entry point.
            using (torch.NewDisposeScope())
            {
                if (torch.ones(2, 2).matmul(torch.ones(2, 2)).sum().item<float>() != 8f)
                    return new NativeProbe(false, "libtorch loaded but a 2x2 matrix product gave a wrong result", null, false);
            }
            return new NativeProbe(true, "", torch.__version__, torch.cuda.is_available());
        }
        catch (Exception e)
        {
            return new NativeProbe(false, OneLine(e), null, false);
        }
    }

    /// <summary>The innermost message of <paramref name="e"/> on one line, with where to look for the fix.</summary>
    private static string OneLine(Exception e)
    {
        var inner = e;
        while (inner.InnerException is not null) inner = inner.InnerException;
        string message = string.Join(' ', inner.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        if (message.Length > 240) message = message[..240] + "...";
        return $"libtorch did not load ({message}); rebuild so scripts/torchsharp-fix patches the output, see docs/torchsharp.md";
    }

    private sealed record NativeProbe(bool Loaded, string Reason, string? LibTorchVersion, bool CudaAvailable);
}
