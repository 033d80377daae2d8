using Parity.Data;
using Parity.Tracing;

namespace Parity.Backends;

/// <summary>
/// One backend's model, optimizer and state for one plan. The runner calls <see cref="ReadState"/> once
/// for step 0, then <see cref="Step"/> for steps 1..N in order, and <see cref="Evaluate"/> on the eval
/// cadence. Every method returns a <see cref="StepRecord"/> holding at least the kinds asked for in
/// <see cref="CaptureRequest"/> (a backend may skip kinds not asked for; the loss is always present).
/// </summary>
public interface IBackendSession : IDisposable
{
    /// <summary>Where this backend cannot express the spec exactly and what it does instead.</summary>
    IReadOnlyList<ConventionMismatch> Mismatches { get; }

    /// <summary>Versions and device actually used (framework version, device name), for the report.</summary>
    IReadOnlyDictionary<string, string> RuntimeInfo { get; }

    /// <summary>Parameters and running statistics as they are now (phase Initial for step 0).</summary>
    StepRecord ReadState(int step);

    /// <summary>One training step on <paramref name="batch"/>: forward, loss, backward, optimizer update.</summary>
    StepRecord Step(int step, Batch batch, CaptureRequest capture);

    /// <summary>Eval-mode forward over <paramref name="data"/> (running statistics in batchnorm; no state change).</summary>
    StepRecord Evaluate(int step, Batch data, CaptureRequest capture);
}

/// <summary>The tensor kinds the runner wants from one call.</summary>
public sealed record CaptureRequest(IReadOnlySet<TensorKind> Kinds)
{
    /// <summary>Only the loss and accuracy scalars.</summary>
    public static readonly CaptureRequest ScalarsOnly = new(TensorKinds.AlwaysRecorded);

    /// <summary>The scalars and the state (parameters, running statistics, optimizer state): what a step check starts from.</summary>
    public static readonly CaptureRequest StateOnly = new(new HashSet<TensorKind>(TensorKinds.AlwaysRecorded.Concat(TensorKinds.State)));

    /// <summary>Everything.</summary>
    public static readonly CaptureRequest Everything = new(TensorKinds.All);

    /// <summary>True when <paramref name="kind"/> is wanted.</summary>
    public bool Wants(TensorKind kind) => Kinds.Contains(kind);

    /// <summary>The command line's narrowing of the capture, whose sites limit the keys wanted; null for every site.</summary>
    public Planning.CaptureFilter? Filter { get; init; }

    /// <summary>True when the tensor <paramref name="key"/> is wanted: its kind, and its site when <see cref="Filter"/> names sites.</summary>
    public bool Wants(TensorKey key) => Kinds.Contains(key.Kind) && (Filter?.IncludesSite(key.Kind, key.Site) ?? true);
}

/// <summary>
/// A session that can be put into any state between steps: its parameters, running statistics and optimizer state
/// (slots and step count) replaced by a record's. The step checks replay a backend's step from that backend's own state
/// in such a session (the float64 reference and its float32 envelopes).
/// </summary>
public interface IStateLoadingSession : IBackendSession
{
    /// <summary>
    /// Loads every state tensor of <paramref name="state"/> (the keys of <see cref="TraceLayout.StateKeys"/>); the next
    /// <see cref="IBackendSession.Step"/> continues from it. Throws <see cref="BackendException"/> naming a missing or
    /// misshapen tensor.
    /// </summary>
    void LoadState(StepRecord state);

    /// <summary>
    /// One training step like <see cref="IBackendSession.Step"/>, whose ReLU (and LeakyReLU, ELU) derivatives follow the
    /// signs that <paramref name="followSigns"/> (another backend's record of the same step) gives each such call's input: where a
    /// pre-activation lies within rounding of zero, the two backends may put it on opposite sides of the kink, and the
    /// replay then takes the other backend's side, so everything after compares without inheriting that flip. A ReLU whose
    /// input the record does not hold uses this session's own signs.
    /// </summary>
    StepRecord Step(int step, Data.Batch batch, CaptureRequest capture, StepRecord followSigns);
}

/// <summary>
/// A session that knows how long its framework itself took for the last step (a worker's own <c>computeMs</c>, an
/// in-process adapter's step), so a benchmark can tell the framework's time from what carrying the step to and from
/// it costs.
/// </summary>
public interface IFrameworkTimedSession : IBackendSession
{
    /// <summary>The framework's own time for the last <see cref="IBackendSession.Step"/>, in milliseconds; NaN when it did not say.</summary>
    double LastFrameworkMs { get; }
}
