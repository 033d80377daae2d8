using ILGPU;
using Parity.Planning;
using Parity.Tensors;

namespace Parity.Backends.Native;

/// <summary>
/// The <c>native</c> backend: the MLP's training step as C# kernels compiled by ILGPU, on a CUDA GPU when one is
/// present and on ILGPU's CPU accelerator otherwise (<see cref="NativeDevices"/>). float32 and float64.
/// </summary>
public sealed class NativeBackend : IBackend
{
    private static readonly Lazy<IReadOnlyList<string>> CudaDevices = new(NativeDevices.CudaDeviceNames);

    /// <summary>The backend's name.</summary>
    public const string BackendName = "native";

    /// <inheritdoc />
    public string Name => BackendName;

    /// <inheritdoc />
    public BackendDescription Describe()
    {
        var cuda = CudaDevices.Value;
        string reason = cuda.Count > 0
            ? new NativeDeviceChoice(NativeDevices.Cuda, cuda[0], "CUDA device found").Summary
            : new NativeDeviceChoice(NativeDevices.Cpu, "CPU", "no CUDA device found").Summary;
        var devices = new HashSet<string> { NativeDevices.Cpu };
        if (cuda.Count > 0) devices.Add(NativeDevices.Cuda);
        return new BackendDescription(Name, true, reason,
            new Dictionary<string, string> { ["ILGPU"] = typeof(Context).Assembly.GetName().Version?.ToString(3) ?? "unknown" },
            new BackendCapabilities(new HashSet<DType> { DType.Float32, DType.Float64 }, devices, OptimizerState: true));
    }

    /// <inheritdoc />
    public IBackendSession Open(Plan plan, BackendOptions options) => OpenNative(plan, options);

    /// <summary>Opens a session typed as <see cref="NativeSession"/> (for <see cref="NativeSession.Synchronize"/> and launch counts).</summary>
    public static NativeSession OpenNative(Plan plan, BackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(options);
        var context = NativeDevices.CreateContext();
        try
        {
            var (device, choice) = NativeDevices.Choose(context, options.Device);
            return options.DType == DType.Float32
                ? new NativeSession<float>(plan, context, device, choice, DType.Float32)
                : new NativeSession<double>(plan, context, device, choice, DType.Float64);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }
}
