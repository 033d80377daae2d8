using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Diagnostics;

/// <summary>A record with the state (parameters, running statistics) in force before it was produced.</summary>
/// <param name="Record">A train or eval record.</param>
/// <param name="State">For a train record, the state before its update; for an eval record, the state it evaluated with.</param>
internal sealed record WalkStep(StepRecord Record, StateSnapshot State);

/// <summary>The last known value of each state tensor (parameters, running statistics, optimizer state) and the step it was recorded at.</summary>
internal sealed class StateSnapshot
{
    private readonly Dictionary<TensorKey, (int Step, Tensor Value)> _values = [];

    /// <summary>The value of <paramref name="kind"/>:<paramref name="site"/> when it was recorded at exactly <paramref name="step"/>; else null.</summary>
    public Tensor? At(TensorKind kind, string site, int step) =>
        _values.TryGetValue(new TensorKey(kind, site), out var v) && v.Step == step ? v.Value : null;

    /// <summary>The last recorded value and its step, or null.</summary>
    public (int Step, Tensor Value)? Last(TensorKind kind, string site) =>
        _values.TryGetValue(new TensorKey(kind, site), out var v) ? v : null;

    public void Update(StepRecord record)
    {
        foreach (var e in record.Entries)
            if (e.Key.Kind.IsState()) _values[e.Key] = (record.Step, e.Value);
    }

    public StateSnapshot Copy()
    {
        var copy = new StateSnapshot();
        foreach (var (k, v) in _values) copy._values[k] = v;
        return copy;
    }
}

/// <summary>Streams a trace with the state before each record: memory holds one record and one copy of the state.</summary>
internal static class TraceWalk
{
    /// <summary>Train and eval records in order, each with its state; the initial record only seeds the state.</summary>
    public static IEnumerable<WalkStep> Steps(TraceReader trace)
    {
        var state = new StateSnapshot();
        foreach (var record in trace.Records())
        {
            if (record.Phase == RecordPhase.Initial)
            {
                state.Update(record);
                continue;
            }
            // The snapshot is copied (parameters only: small) so a consumer may hold it while the walk advances.
            yield return new WalkStep(record, state.Copy());
            if (record.Phase == RecordPhase.Train) state.Update(record);
        }
    }

    /// <summary>The first record of <paramref name="phase"/> at <paramref name="step"/>, or null.</summary>
    public static StepRecord? Find(TraceReader trace, int step, RecordPhase phase)
    {
        foreach (var r in trace.Records())
        {
            if (r.Step == step && r.Phase == phase) return r;
            if (r.Step > step) break;
        }
        return null;
    }
}
