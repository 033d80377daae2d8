using Parity.Tensors;

namespace Parity.Backends;

/// <summary>What a backend can do and whether it can run here.</summary>
/// <param name="Name">Backend name.</param>
/// <param name="Available">True when it can run on this machine now.</param>
/// <param name="Reason">One line: why it is unavailable, or what it runs on (device, mode).</param>
/// <param name="Versions">Framework and library versions (e.g. TorchSharp, libtorch), empty when unknown.</param>
/// <param name="Capabilities">Dtypes, devices and features.</param>
public sealed record BackendDescription(
    string Name,
    bool Available,
    string Reason,
    IReadOnlyDictionary<string, string> Versions,
    BackendCapabilities Capabilities);

/// <summary>Features a backend supports.</summary>
/// <param name="DTypes">Dtypes it can train in.</param>
/// <param name="Devices">Devices it can use (cpu, cuda).</param>
/// <param name="Training">False for inference-only backends (onnxruntime).</param>
/// <param name="SharedInstances">True when one instance can be called at several sites.</param>
/// <param name="FrameworkInit">True when it has its own seeded initializers (<c>init: framework</c>).</param>
/// <param name="OptimizerState">
/// True when it reports its optimizer state (the update count and every slot, <see cref="Tracing.TensorKind.OptimizerSlot"/>):
/// only then can its steps be checked one by one from its own state; otherwise it is judged on its free-running trajectory.
/// </param>
/// <param name="ConcurrentSessions">
/// True when sessions of it may run at the same time in one process and each computes exactly what it computes alone: no
/// process-wide state (a framework's global random generator, an interpreter, a thread pool) is shared between sessions.
/// The reference has it, and every worker backend (each session is a process of its own). A run trains such backends beside
/// the others (<c>--jobs</c>) and a study runs such arms at once (<c>Parity.Harness.Seeds.Study</c>); a backend without it
/// runs one session at a time.
/// </param>
public sealed record BackendCapabilities(
    IReadOnlySet<DType> DTypes,
    IReadOnlySet<string> Devices,
    bool Training = true,
    bool SharedInstances = true,
    bool FrameworkInit = false,
    bool OptimizerState = false,
    bool ConcurrentSessions = false)
{
    /// <summary>
    /// Why a backend with these capabilities cannot run <paramref name="plan"/> with <paramref name="options"/> (a phrase
    /// that follows the backend's name, e.g. "cannot train in float64; it supports float32"), or null when it can.
    /// </summary>
    public string? Refusal(Planning.Plan plan, BackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(options);
        if (!DTypes.Contains(options.DType))
            return $"cannot train in {options.DType.Name()}; it supports {string.Join(", ", DTypes.Select(d => d.Name()))}";
        if (options.Device is string device && !Devices.Contains(device)) return $"has no device '{device}'; it offers {string.Join(", ", Devices)}";
        if (plan.Spec.Init.Mode == Specs.InitMode.Framework && !FrameworkInit)
            return "has no seeded initializers of its own (init: framework); use init: injected";
        if (plan.Graph.Shared.Count > 0 && !SharedInstances)
            return $"cannot call one layer instance at several sites ({string.Join(", ", plan.Graph.Shared)})";
        return null;
    }
}

/// <summary>Options chosen on the command line for one backend.</summary>
/// <param name="DType">Precision to train in.</param>
/// <param name="Device">Requested device (<c>cpu</c>, <c>cuda</c>), or null for the backend's choice.</param>
/// <param name="Timeout">Per-request time limit for out-of-process backends.</param>
public sealed record BackendOptions(DType DType, string? Device = null, TimeSpan? Timeout = null);

/// <summary>
/// A convention the backend cannot express as the spec asks, declared instead of silently approximated.
/// </summary>
/// <param name="Setting">The spec setting, e.g. <c>layers[bn].runningVariance</c>.</param>
/// <param name="Spec">What the spec asks for.</param>
/// <param name="Backend">What the backend does instead.</param>
/// <param name="Affects">Tensor kinds whose values are expected to differ because of it (camelCase names).</param>
public sealed record ConventionMismatch(string Setting, string Spec, string Backend, IReadOnlyList<string> Affects)
{
    /// <summary>
    /// What the backend computes instead, as the canonical spec value of <see cref="Setting"/> (e.g. <c>"biased"</c> for a
    /// runningVariance, <c>"sqrtVHat"</c> for an epsilonForm, a number for a momentum); null when no spec value describes
    /// it. With a value, the step checks replay the backend's steps under that convention and judge the affected kinds
    /// strictly against it (docs/tolerances.md); without one, the affected kinds can only be excused.
    /// </summary>
    public System.Text.Json.Nodes.JsonNode? Value { get; init; }
}

/// <summary>An expected backend failure with a message meant for the user.</summary>
public class BackendException : Exception
{
    /// <summary>Creates the exception.</summary>
    public BackendException(string message, Exception? inner = null) : base(message, inner) { }
}
