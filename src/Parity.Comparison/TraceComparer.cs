using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Parity.Running;
using Parity.Backends;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Comparison;

/// <summary>
/// Compares two traces tensor by tensor under a <see cref="TolerancePolicy"/> and localizes the first divergence:
/// <see cref="TraceAlignment"/> pairs the records, <see cref="TensorJudge"/> judges each tensor, and
/// <see cref="DivergenceLocalizer"/> assigns statuses and finds the origin. Both traces are streamed record by record:
/// memory holds one step of tensors plus one small <see cref="TensorCheck"/> per tensor compared.
/// </summary>
public static class TraceComparer
{
    /// <summary>Compares <paramref name="actual"/> against <paramref name="expected"/> with at most one envelope trace.</summary>
    /// <param name="expected">The trace judged correct (usually the float64 reference).</param>
    /// <param name="actual">The trace under test.</param>
    /// <param name="layout">The model and optimizer both traces ran.</param>
    /// <param name="policy">Tolerances.</param>
    /// <param name="envelope">
    /// The float32 reference's trace: float32 tensors are judged against a multiple of its error against
    /// <paramref name="expected"/>. Ignored when it is <paramref name="actual"/> or <paramref name="expected"/> itself
    /// (a trace cannot be its own envelope: the atol/rtol rule judges it instead).
    /// </param>
    /// <param name="declared">
    /// Convention mismatches that explain failures of the kinds they name; when null, those declared in both
    /// trace headers.
    /// </param>
    public static ComparisonResult Compare(ITrace expected, ITrace actual, TraceLayout layout, TolerancePolicy policy,
        ITrace? envelope = null, IReadOnlyList<ConventionMismatch>? declared = null) =>
        Compare(expected, actual, layout, policy, envelope is null ? [] : [envelope], declared);

    /// <summary>
    /// Compares <paramref name="actual"/> against <paramref name="expected"/> with several envelope traces: independent
    /// float32 trajectories of the same math (e.g. the float32 reference and its batch-permuted twin). A tensor's
    /// envelope error is the largest over them, so one trajectory's lucky cancellation on a scalar such as the loss
    /// does not set the bound. Envelopes that are <paramref name="actual"/> or <paramref name="expected"/> are ignored.
    /// </summary>
    /// <param name="expected">The trace judged correct.</param>
    /// <param name="actual">The trace under test.</param>
    /// <param name="layout">The model and optimizer both traces ran.</param>
    /// <param name="policy">Tolerances.</param>
    /// <param name="envelopes">Envelope traces (possibly none).</param>
    /// <param name="declared">Declared convention mismatches; when null, those of both trace headers.</param>
    public static ComparisonResult Compare(ITrace expected, ITrace actual, TraceLayout layout, TolerancePolicy policy,
        IReadOnlyList<ITrace> envelopes, IReadOnlyList<ConventionMismatch>? declared = null)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(envelopes);
        var usable = envelopes.Where(v => !SameTrace(v, actual) && !SameTrace(v, expected)).ToList();
        var mismatches = declared ?? actual.Header.Mismatches.Concat(expected.Header.Mismatches)
            .DistinctBy(m => (m.Setting, m.Spec, m.Backend, string.Join(",", m.Affects))).ToList();
        string? problem = Problem(actual, "actual") ?? Problem(expected, "expected");
        return Judge(TraceAlignment.Align(expected, actual, usable), new ComparedTraces(expected.Header.Backend, actual.Header.Backend, problem,
            usable.Count == 0 ? null : string.Join("+", usable.Select(v => v.Header.Backend))), layout, policy, mismatches, ComparisonMode.Trajectory);
    }

    /// <summary>
    /// Judges already aligned records (a step check's replays against a backend's records, or two traces' records) and
    /// localizes the first divergence.
    /// </summary>
    /// <param name="records">The aligned records, in order.</param>
    /// <param name="traces">Names of the expected, actual and envelope traces, and why the comparison is an error, if it is.</param>
    /// <param name="layout">The model and optimizer.</param>
    /// <param name="policy">Tolerances.</param>
    /// <param name="mismatches">Declared mismatches whose affected kinds are explained rather than counted.</param>
    /// <param name="mode">Trajectory or step check.</param>
    public static ComparisonResult Judge(IEnumerable<AlignedRecords> records, ComparedTraces traces, TraceLayout layout, TolerancePolicy policy,
        IReadOnlyList<ConventionMismatch> mismatches, ComparisonMode mode)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(traces);
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(mismatches);
        var dependencies = new TensorDependencies(layout);
        var judge = new TensorJudge(dependencies, policy, mode);
        var localizer = new DivergenceLocalizer(dependencies, mismatches, mode);
        int steps = 0;
        foreach (var aligned in records)
        {
            if (aligned.Expected is not null && aligned.Actual is not null && aligned.Phase == RecordPhase.Train) steps++;
            foreach (var judged in judge.Judge(aligned)) localizer.Add(judged);
        }

        var checks = localizer.Checks;
        int failed = checks.Count(c => c.CountsAsFailure);
        string? message = traces.Problem;
        var verdict = message is not null ? Verdict.Error : failed > 0 ? Verdict.Diverge : Verdict.Agree;
        int kinked = checks.Count(c => c.Status == CheckStatus.KinkInherited);
        if (message is null && kinked > 0)
        {
            var first = checks.First(c => c.Status == CheckStatus.KinkInherited);
            message = mode == ComparisonMode.StepCheck
                ? $"{kinked} tensor(s) exceed the noise only downstream of a ReLU kink flip within their own step (a value within rounding of zero "
                    + $"on opposite sides), first {first.Key} at step {first.Step}: excused"
                : $"{kinked} tensor(s) exceed the noise envelope only downstream of ReLU kink flips (values within rounding of zero on opposite "
                    + $"sides), first {first.Key} at step {first.Step}: not counted";
        }
        return new ComparisonResult(traces.Expected, traces.Actual, verdict, message, localizer.First, steps,
            checks.Count(c => c.Status != CheckStatus.Missing), failed, checks, localizer.NotIdentifiable)
        {
            Envelope = traces.Envelope,
            Policy = policy.Describe(),
            Mismatches = mismatches,
            Mode = mode,
        };
    }

    /// <summary>Why a trace makes the comparison an error (it did not finish), or null.</summary>
    public static string? Problem(ITrace trace, string role)
    {
        ArgumentNullException.ThrowIfNull(trace);
        string status = trace.Header.Status.ToString().ToLowerInvariant();
        return trace.Header.Status switch
        {
            RunStatus.Completed => null,
            RunStatus.Running => $"the {role} trace ({trace.Header.Backend}) did not finish (status running)",
            _ => role == "actual"
                ? trace.Header.Message ?? $"{trace.Header.Backend}: {status}"
                : $"the {role} trace ({trace.Header.Backend}) {status}: {trace.Header.Message ?? "no message"}",
        };
    }

    private static bool SameTrace(ITrace a, ITrace b) =>
        ReferenceEquals(a, b) || (a is TraceReader ra && b is TraceReader rb
            && string.Equals(Path.GetFullPath(ra.Directory).TrimEnd(Path.DirectorySeparatorChar), Path.GetFullPath(rb.Directory).TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal));

    /// <summary>Column-centers a [rows, columns] tensor: what a following batchnorm sees of it.</summary>
    internal static Tensor Center(Tensor t)
    {
        if (t.Shape.Length != 2 || t.Shape[0] == 0) return t;
        int rows = t.Shape[0], cols = t.Shape[1];
        // Each column's sum runs down its rows in order (one add per row, elementwise across columns).
        var means = new double[cols];
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(means, t.Data.AsSpan(r * cols, cols), means);
        TensorPrimitives.Divide(means, rows, means);
        var data = GC.AllocateUninitializedArray<double>(t.Data.Length);
        for (int r = 0; r < rows; r++) TensorPrimitives.Subtract(t.Data.AsSpan(r * cols, cols), means, data.AsSpan(r * cols, cols));
        return new Tensor((int[])t.Shape.Clone(), data, t.DType);
    }
}

/// <summary>Which traces a comparison read: names for the result, and why it is an error when a trace did not finish.</summary>
/// <param name="Expected">Backend name of the expected side.</param>
/// <param name="Actual">Backend name of the actual side.</param>
/// <param name="Problem">Why the comparison is an error (a trace that did not complete), or null.</param>
/// <param name="Envelope">Names of the envelope traces joined by '+', or null.</param>
public sealed record ComparedTraces(string Expected, string Actual, string? Problem, string? Envelope);
