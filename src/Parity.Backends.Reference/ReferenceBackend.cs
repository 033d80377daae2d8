using System.Runtime.Intrinsics;
using System.Runtime.InteropServices;
using Parity.Planning;
using Parity.Tensors;

namespace Parity.Backends.Reference;

/// <summary>
/// The reference backend: the MLP written from the math (cs231n, seed 003; docs/conventions.md) in C#, on the
/// CPU. <see cref="Float64Name"/> computes in float64 and is the oracle every other backend is judged
/// against; <see cref="Float32Name"/> computes the same steps in float32 and measures float32's own
/// rounding (the noise envelope). Deterministic: bit-identical traces on every run and any thread count.
/// </summary>
public sealed class ReferenceBackend : IBackend
{
    /// <summary>Name of the float64 oracle.</summary>
    public const string Float64Name = "reference";

    /// <summary>Name of the float32 variant.</summary>
    public const string Float32Name = "reference-f32";

    private readonly int _maxDegreeOfParallelism;

    /// <summary>Creates the backend computing in <paramref name="dtype"/>.</summary>
    /// <param name="dtype">Precision of every computation.</param>
    /// <param name="maxDegreeOfParallelism">Threads for matrix products; -1 for the runtime's default. Results do not depend on it.</param>
    public ReferenceBackend(DType dtype, int maxDegreeOfParallelism = -1)
    {
        if (maxDegreeOfParallelism == 0 || maxDegreeOfParallelism < -1)
            throw new ArgumentOutOfRangeException(nameof(maxDegreeOfParallelism), maxDegreeOfParallelism, "use -1 (default) or a positive thread count");
        DType = dtype;
        _maxDegreeOfParallelism = maxDegreeOfParallelism;
    }

    /// <summary>The float64 oracle, <c>reference</c>.</summary>
    public static ReferenceBackend Float64() => new(DType.Float64);

    /// <summary>The float32 variant, <c>reference-f32</c>.</summary>
    public static ReferenceBackend Float32() => new(DType.Float32);

    /// <summary>The precision every computation runs in.</summary>
    public DType DType { get; }

    /// <inheritdoc />
    public string Name => DType == DType.Float64 ? Float64Name : Float32Name;

    /// <inheritdoc />
    public BackendDescription Describe() => new(
        Name,
        Available: true,
        Reason: $"CPU, {DType.Name()}, {ThreadText}, {SimdText}",
        Versions(),
        new BackendCapabilities(
            new HashSet<DType> { DType },
            new HashSet<string> { "cpu" },
            Training: true,
            SharedInstances: true,
            FrameworkInit: false,
            OptimizerState: true,
            ConcurrentSessions: true));

    /// <inheritdoc />
    public IBackendSession Open(Plan plan, BackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(options);
        if (options.DType != DType)
            throw new BackendException($"backend '{Name}' computes in {DType.Name()}; {options.DType.Name()} was asked for (use '{(options.DType == DType.Float64 ? Float64Name : Float32Name)}')");
        if (options.Device is { } device && !string.Equals(device, "cpu", StringComparison.OrdinalIgnoreCase))
            throw new BackendException($"backend '{Name}' runs on the cpu only; device '{device}' was asked for");
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = _maxDegreeOfParallelism };
        var runtime = new Dictionary<string, string>(Versions())
        {
            ["device"] = "cpu",
            ["threads"] = ThreadText,
            ["simd"] = SimdText,
        };
        return DType == DType.Float64
            ? new ReferenceSession<double>(plan, DType, parallel, runtime)
            : new ReferenceSession<float>(plan, DType, parallel, runtime);
    }

    private string ThreadText => _maxDegreeOfParallelism == -1
        ? $"up to {Environment.ProcessorCount} threads"
        : $"up to {_maxDegreeOfParallelism} threads";

    private static string SimdText => Vector512.IsHardwareAccelerated ? "SIMD 512-bit"
        : Vector256.IsHardwareAccelerated ? "SIMD 256-bit"
        : Vector128.IsHardwareAccelerated ? "SIMD 128-bit"
        : "no SIMD";

    private static Dictionary<string, string> Versions() => new()
    {
        ["parity-reference"] = ParityVersion.Current,
        [".net"] = RuntimeInformation.FrameworkDescription,
    };
}
