using Parity.Backends;

namespace Parity.Running;

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
