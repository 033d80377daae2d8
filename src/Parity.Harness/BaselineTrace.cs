using Parity.Running;
using Parity.Tracing;

namespace Parity.Harness;

/// <summary>
/// The trace of an approved baseline, opened only when it still is what was approved: a completed trace whose files
/// match its seal (<see cref="TraceReader.Open"/>), produced for the scenario, backend and spec hash its
/// <c>baseline.json</c> names. Anything else is a damaged baseline (<see cref="InvalidDataException"/>), never a
/// trace to compare with.
/// </summary>
internal static class BaselineTrace
{
    /// <summary>Lock file of a baseline root, held while <c>approve</c> checks for and writes baselines.</summary>
    public const string ApproveLock = ".approve.lock";

    /// <summary>Opens the trace of the baseline in <paramref name="directory"/>, checked against <paramref name="info"/>.</summary>
    public static TraceReader Open(string directory, BaselineInfo info)
    {
        var trace = TraceReader.Open(directory);
        var h = trace.Header;
        if (h.Status != RunStatus.Completed)
            throw new InvalidDataException($"{directory}: its trace has status {h.Status.Name()}; an approved baseline is a completed trace");
        foreach (var (field, inTrace, inInfo) in new[] { ("specHash", h.SpecHash, info.SpecHash), ("scenario", h.Scenario, info.Scenario), ("backend", h.Backend, info.Backend), ("dType", h.DType, info.DType) })
        {
            if (inTrace != inInfo)
                throw new InvalidDataException($"{directory}: its {TraceFiles.Header} says {field} '{inTrace}' but its {Baselines.InfoFile} says '{inInfo}' (edited or mixed up)");
        }
        return trace;
    }

    /// <summary>
    /// Why the run's trace cannot become a baseline, or null when it can: it must be completed, sealed, and of the
    /// backend and spec hash the run's report names.
    /// </summary>
    public static string? NotApprovable(TraceReader trace, string backend, string specHash) =>
        trace.Header.Status != RunStatus.Completed ? $"{trace.Directory}: its trace has status {trace.Header.Status.Name()}; only a completed trace can be approved"
        : trace.Header.Backend != backend || trace.Header.SpecHash != specHash
            ? $"{trace.Directory}: its trace is of backend '{trace.Header.Backend}' under spec hash {trace.Header.SpecHash}; the report says '{backend}' under {specHash}"
        : trace.Unsealed;
}
