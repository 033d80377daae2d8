using Parity.Backends;
using Parity.Comparison;
using Parity.Models;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics;

/// <summary>One backend's trace as the detectors see it.</summary>
/// <param name="Name">Backend name as in the run (e.g. <c>reference-f32</c>).</param>
/// <param name="Trace">The trace, read record by record (memory stays bounded whatever its length).</param>
/// <param name="Mismatches">Convention mismatches the backend declared.</param>
public sealed record BackendTrace(string Name, TraceReader Trace, IReadOnlyList<ConventionMismatch> Mismatches)
{
    /// <summary>Opens the trace in <paramref name="directory"/> with the mismatches its header declares.</summary>
    public static BackendTrace Open(string directory)
    {
        var trace = TraceReader.Open(directory);
        return new BackendTrace(trace.Header.Backend, trace, trace.Header.Mismatches);
    }

    /// <summary>True when the backend's run reached its end (a failed run's trace is still read up to where it stopped).</summary>
    public bool Completed => Trace.Header.Status == Running.RunStatus.Completed;
}

/// <summary>Everything a detector may read: the spec, its model, every backend's trace and the comparisons with the reference.</summary>
public sealed class DiagnosisContext
{
    /// <summary>Creates a context.</summary>
    /// <param name="spec">The spec the traces ran.</param>
    /// <param name="graph">Its resolved model.</param>
    /// <param name="reference">Name of the reference backend (its trace is among <paramref name="backends"/> when it ran).</param>
    /// <param name="backends">The traces to diagnose (auxiliary envelope runs left out).</param>
    /// <param name="judgements">Each backend judged against the reference: step checks and trajectory.</param>
    public DiagnosisContext(ScenarioSpec spec, ModelGraph graph, string reference, IReadOnlyList<BackendTrace> backends, IReadOnlyList<BackendJudgement> judgements)
    {
        Spec = spec;
        Graph = graph;
        Reference = reference;
        Backends = backends;
        Judgements = judgements;
    }

    /// <summary>The spec.</summary>
    public ScenarioSpec Spec { get; }

    /// <summary>The model: call sites, parameters, shared instances.</summary>
    public ModelGraph Graph { get; }

    /// <summary>Name of the reference backend.</summary>
    public string Reference { get; }

    /// <summary>Every diagnosed trace, the reference's included.</summary>
    public IReadOnlyList<BackendTrace> Backends { get; }

    /// <summary>Each backend judged against the reference: its step checks and its trajectory.</summary>
    public IReadOnlyList<BackendJudgement> Judgements { get; }

    /// <summary>The comparison that decides each backend's verdict: its step checks when they ran, else its trajectory.</summary>
    public IEnumerable<ComparisonResult> Comparisons => Judgements.Select(j => j.Deciding);

    /// <summary>Each backend's free-running trajectory against the reference's.</summary>
    public IEnumerable<ComparisonResult> Trajectories => Judgements.Select(j => j.Trajectory);

    /// <summary>Findings of the detectors that ran before this one (read by <c>unexplained-divergence</c>).</summary>
    public IReadOnlyList<Finding> Earlier { get; init; } = [];

    /// <summary>The plan the traces ran (the batches, for detectors that recompute a call from its input), when known.</summary>
    public Planning.Plan? Plan { get; init; }

    /// <summary>
    /// The first step worth checking in <paramref name="backend"/>'s trace: the step of its first divergence in the comparison
    /// that decides its verdict (so a convention that changes at step K is tested at step K, not only over the first steps),
    /// or 1 when it does not diverge.
    /// </summary>
    public int FirstStepToCheck(string backend) =>
        Judgements.FirstOrDefault(j => j.Backend == backend)?.Deciding.FirstDivergence is { } d ? Math.Max(1, d.Step) : 1;

    /// <summary>The reference's trace, or null when it did not run.</summary>
    public BackendTrace? ReferenceTrace => Backends.FirstOrDefault(b => b.Name == Reference);

    /// <summary>The trace of <paramref name="backend"/>, or null.</summary>
    public BackendTrace? TraceOf(string backend) => Backends.FirstOrDefault(b => b.Name == backend);

    /// <summary>
    /// The trace a comparison's expected side stands for: the expected backend's own, or the reference's for a step check
    /// (whose expected side is the reference replaying the actual backend's state: equal to the reference's trace in the
    /// initial state, and a fair stand-in for tests that only ask whether the actual tensor is the expected one
    /// transformed).
    /// </summary>
    public BackendTrace? ExpectedTraceOf(ComparisonResult comparison)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        return TraceOf(comparison.Expected) ?? (comparison.Expected.StartsWith(Reference + " ", StringComparison.Ordinal) ? ReferenceTrace : null);
    }

    /// <summary>Batch size: the N of N/(N-1).</summary>
    public int BatchSize => Spec.Data.BatchSize;
}
