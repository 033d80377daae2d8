using Parity.Backends;

namespace Parity.Running;

/// <summary>How one backend's run ended.</summary>
public enum RunStatus
{
    /// <summary>Every step ran (or the run stopped at a non-finite loss, see <see cref="BackendRun.Message"/>).</summary>
    Completed,

    /// <summary>The backend raised an error, crashed or hung; the trace holds the steps before it.</summary>
    Failed,

    /// <summary>The backend cannot run on this machine; nothing was attempted.</summary>
    Unavailable,
}

/// <summary>The result of running one backend: a value, never an exception (a failure is a result in the report).</summary>
public sealed record BackendRun(
    string Backend,
    RunStatus Status,
    string? Message,
    string TraceDirectory,
    int StepsCompleted,
    TimeSpan Duration,
    IReadOnlyList<ConventionMismatch> Mismatches,
    IReadOnlyDictionary<string, string> Runtime);
