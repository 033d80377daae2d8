namespace Parity.Tracing;

/// <summary>
/// A trace as the comparison reads it: who produced it and how its run ended (<see cref="Header"/>), and its
/// records in order. A trace directory on disk (<see cref="TraceReader"/>) and records held in memory
/// (<see cref="RecordedTrace"/>) are both traces.
/// </summary>
public interface ITrace
{
    /// <summary>Backend, dtype, scenario, declared mismatches, status.</summary>
    TraceHeader Header { get; }

    /// <summary>The records in production order (step, then phase); each call starts from the first record.</summary>
    IEnumerable<StepRecord> Records();
}

/// <summary>A trace held in memory: records a test or a replay produced without writing them to disk.</summary>
/// <param name="Header">The header the trace would have on disk.</param>
/// <param name="Items">The records in production order.</param>
public sealed record RecordedTrace(TraceHeader Header, IReadOnlyList<StepRecord> Items) : ITrace
{
    /// <inheritdoc />
    public IEnumerable<StepRecord> Records() => Items;
}
