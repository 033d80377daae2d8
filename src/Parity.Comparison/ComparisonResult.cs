using Parity.Running;
using Parity.Tracing;

namespace Parity.Comparison;

/// <summary>How a tensor entered the comparison.</summary>
public enum CheckStatus
{
    /// <summary>Compared and counted in the verdict.</summary>
    Checked,

    /// <summary>
    /// Compared but kept out of the verdict: the loss does not depend on it (a linear bias whose every call
    /// feeds batchnorm, the batch means and running mean that carry it), or an eval output whose only
    /// failing upstream tensors are such.
    /// </summary>
    NotIdentifiable,

    /// <summary>Failed, and its kind is named by a convention mismatch the backend declared.</summary>
    ExplainedByMismatch,

    /// <summary>Present in one trace only while both captured that step: a failure.</summary>
    Missing,

    /// <summary>
    /// A tensor failing only downstream of ReLU kink flips (an upstream output gradient with
    /// <see cref="TensorCheck.KinkFlips"/>, or an upstream tensor itself kink-inherited): the trajectories separated at
    /// rounding of the kink and this is inherited from it; kept out of the verdict, counted in the result's message.
    /// </summary>
    KinkInherited,
}

/// <summary>One tensor at one step compared. Small on purpose: a result keeps one per tensor per step.</summary>
/// <param name="Step">Step (0 for the initial state).</param>
/// <param name="Phase">Initial, train or eval.</param>
/// <param name="Key">Kind and site.</param>
/// <param name="Metrics">Metrics of actual against expected (column-centered when <see cref="Centered"/>).</param>
/// <param name="Passed">True when <see cref="Score"/> is at most 1.</param>
/// <param name="Score">Observed error / allowed error (above 1 fails): the cell of the report's layer x step heatmap.</param>
/// <param name="Status">Whether and how the tensor counts in the verdict.</param>
public sealed record TensorCheck(int Step, RecordPhase Phase, TensorKey Key, TensorMetrics Metrics, bool Passed, double Score, CheckStatus Status)
{
    /// <summary>The rule that judged it.</summary>
    public JudgementRule Rule { get; init; }

    /// <summary>The RMSE allowed.</summary>
    public double Allowed { get; init; }

    /// <summary>The atol/rtol in force (grown with the step); <see cref="TensorMetrics.Mismatched"/> was counted under it.</summary>
    public Tolerance? Tolerance { get; init; }

    /// <summary>E(s) under the envelope rule: the largest envelope RMSE of this tensor so far; null otherwise.</summary>
    public double? EnvelopeError { get; init; }

    /// <summary>
    /// Elements of an output gradient left out because the two traces put the ReLU's input on opposite sides of zero
    /// there (a value within rounding of the kink; the gradient element then differs by its whole size in exact
    /// arithmetic too). Reported, never hidden: the count is in the check and its note.
    /// </summary>
    public int KinkFlips { get; init; }

    /// <summary>True when both tensors were column-centered first (the output of a linear call with a not-identifiable bias).</summary>
    public bool Centered { get; init; }

    /// <summary>Why the status is what it is, when that is not obvious (e.g. the trace that lacks the tensor).</summary>
    public string? Note { get; init; }

    /// <summary>
    /// True for an eval tensor computed, directly or through other eval tensors, from a not-identifiable tensor
    /// that differs (the running mean a drifting bias fed): its error includes that drift.
    /// </summary>
    public bool ThroughNotIdentifiable { get; init; }

    /// <summary>
    /// For a failing check: true when every tensor it was computed from was compared and passed (the difference
    /// starts here), false when it is inherited from a failing upstream tensor or an upstream tensor was not
    /// captured. Null for a passing check.
    /// </summary>
    public bool? IsOrigin { get; init; }

    /// <summary>True when this check fails and counts in the verdict (checked and failed, explained by a mismatch, or missing).</summary>
    public bool CountsAsFailure => Status switch
    {
        CheckStatus.Checked => !Passed,
        CheckStatus.ExplainedByMismatch or CheckStatus.Missing => true,
        _ => false,
    };

    /// <summary>Where the check sits: step, phase, key.</summary>
    public TensorAt At => new(Step, Phase, Key);
}

/// <summary>A tensor at a step and phase.</summary>
public readonly record struct TensorAt(int Step, RecordPhase Phase, TensorKey Key)
{
    /// <inheritdoc />
    public override string ToString() => $"{Key}@{Phase.ToString().ToLowerInvariant()}{Step}";
}

/// <summary>The first failing tensor and whether the difference started there.</summary>
/// <param name="Origin">The first failing check in comparison order.</param>
/// <param name="IsOrigin">
/// True when every tensor it was computed from was compared and passed: the difference started here.
/// False when an upstream tensor failed or was not captured (<see cref="UpstreamUnknown"/>): inherited, or
/// not provably the origin.
/// </param>
/// <param name="UpstreamPassed">Upstream tensors that were compared and passed.</param>
/// <param name="UpstreamUnknown">Upstream tensors not captured at that step in one of the traces (or missing).</param>
/// <param name="ExplainedBy">Settings of declared convention mismatches that name the failing kind.</param>
public sealed record Divergence(TensorCheck Origin, bool IsOrigin, IReadOnlyList<TensorKey> UpstreamPassed,
    IReadOnlyList<TensorKey> UpstreamUnknown, IReadOnlyList<string> ExplainedBy)
{
    /// <summary>Upstream tensors that failed (empty for an origin).</summary>
    public IReadOnlyList<TensorKey> UpstreamFailed { get; init; } = [];

    /// <summary>Upstream tensors left out because they are not identifiable.</summary>
    public IReadOnlyList<TensorKey> UpstreamNotIdentifiable { get; init; } = [];

    /// <summary>Step of the first failing tensor.</summary>
    public int Step => Origin.Step;

    /// <summary>Kind and site of the first failing tensor.</summary>
    public TensorKey Key => Origin.Key;
}

/// <summary>One trace compared with another, tensor by tensor.</summary>
/// <param name="Expected">Backend name of the expected trace (usually the float64 reference).</param>
/// <param name="Actual">Backend name of the actual trace.</param>
/// <param name="Verdict">Agree, diverge or error.</param>
/// <param name="Message">Why the verdict is error (the failed trace's message), or a note; null when there is nothing to say.</param>
/// <param name="FirstDivergence">The first counted failure and its localization; null when none.</param>
/// <param name="StepsCompared">Training steps whose records were matched (the initial state not counted).</param>
/// <param name="TensorsCompared">Tensors compared in both traces.</param>
/// <param name="TensorsFailed">Checks that count as failures.</param>
/// <param name="Checks">Every check in comparison order.</param>
/// <param name="NotIdentifiable">Tensor keys (kind:site) kept out of the verdict as not identifiable.</param>
public sealed record ComparisonResult(
    string Expected,
    string Actual,
    Verdict Verdict,
    string? Message,
    Divergence? FirstDivergence,
    int StepsCompared,
    int TensorsCompared,
    int TensorsFailed,
    IReadOnlyList<TensorCheck> Checks,
    IReadOnlyList<string> NotIdentifiable)
{
    /// <summary>Backend name of the envelope trace used, or null when the atol/rtol rule judged everything.</summary>
    public string? Envelope { get; init; }

    /// <summary>The policy in force.</summary>
    public PolicyDescription? Policy { get; init; }

    /// <summary>Convention mismatches taken into account (declared by the caller or read from the trace headers).</summary>
    public IReadOnlyList<Backends.ConventionMismatch> Mismatches { get; init; } = [];

    /// <summary>What was compared: two free-running trajectories, or each step replayed from the actual backend's own state.</summary>
    public ComparisonMode Mode { get; init; } = ComparisonMode.Trajectory;
}
