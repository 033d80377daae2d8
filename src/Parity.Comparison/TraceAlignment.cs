using Parity.Running;
using Parity.Tracing;

namespace Parity.Comparison;

/// <summary>
/// The records of one (step, phase) from each trace of a comparison: the expected record, the actual record, and each
/// envelope's record. A side is null when its trace lacks that record.
/// </summary>
/// <param name="Step">Step (0 for the initial state).</param>
/// <param name="Phase">Initial, train or eval.</param>
/// <param name="Expected">The expected trace's record, or null.</param>
/// <param name="Actual">The actual trace's record, or null.</param>
/// <param name="Envelopes">The envelope traces' records of the same (step, phase) that exist.</param>
public sealed record AlignedRecords(int Step, RecordPhase Phase, StepRecord? Expected, StepRecord? Actual, IReadOnlyList<StepRecord> Envelopes)
{
    /// <summary>
    /// In a step check, more independent envelope draws of this same step, replayed on demand (each enumerated record
    /// is a fresh replay): a tensor that fails against the usual draws is judged again against these
    /// (<see cref="TensorJudge"/>). Null where no more can be drawn.
    /// </summary>
    public Func<int, IEnumerable<StepRecord>>? MoreDraws { get; init; }
}

/// <summary>
/// Merges the record streams of an expected trace, an actual trace and envelope traces by (step, phase), streaming:
/// memory holds one record of each. A record that only one side has is yielded with the other side null, except past
/// the end of a trace that did not complete (its run failed there; the comparison's error verdict says why).
/// </summary>
public static class TraceAlignment
{
    /// <summary>The aligned records of <paramref name="expected"/>, <paramref name="actual"/> and <paramref name="envelopes"/>.</summary>
    public static IEnumerable<AlignedRecords> Align(ITrace expected, ITrace actual, IReadOnlyList<ITrace> envelopes)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(envelopes);
        var streams = envelopes.Select(v => new Stream(v.Records().GetEnumerator())).ToList();
        try
        {
            using var e = expected.Records().GetEnumerator();
            using var a = actual.Records().GetEnumerator();
            var ce = Advance(e);
            var ca = Advance(a);
            while (ce is not null || ca is not null)
            {
                int order = ce is null ? 1 : ca is null ? -1 : Order(ce).CompareTo(Order(ca));
                if (order == 0)
                {
                    yield return new AlignedRecords(ce!.Step, ce.Phase, ce, ca, EnvelopesAt(streams, ce.Step, ce.Phase));
                    ce = Advance(e);
                    ca = Advance(a);
                }
                else if (order < 0)
                {
                    if (ca is null && actual.Header.Status != RunStatus.Completed) yield break;
                    yield return new AlignedRecords(ce!.Step, ce.Phase, ce, null, EnvelopesAt(streams, ce.Step, ce.Phase));
                    ce = Advance(e);
                }
                else
                {
                    if (ce is null && expected.Header.Status != RunStatus.Completed) yield break;
                    yield return new AlignedRecords(ca!.Step, ca.Phase, null, ca, EnvelopesAt(streams, ca.Step, ca.Phase));
                    ca = Advance(a);
                }
            }
        }
        finally
        {
            foreach (var s in streams) s.Records.Dispose();
        }
    }

    /// <summary>The order of records within a trace: step, then phase (initial, train, eval).</summary>
    public static (int Step, int Phase) Order(StepRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return (record.Step, (int)record.Phase);
    }

    private static StepRecord? Advance(IEnumerator<StepRecord> records) => records.MoveNext() ? records.Current : null;

    // Each envelope's record for (step, phase), advancing each stream past earlier records.
    private static List<StepRecord> EnvelopesAt(List<Stream> streams, int step, Tracing.RecordPhase phase)
    {
        var found = new List<StepRecord>();
        foreach (var s in streams)
        {
            if (!s.Started)
            {
                s.Current = Advance(s.Records);
                s.Started = true;
            }
            while (s.Current is not null && Order(s.Current).CompareTo((step, (int)phase)) < 0) s.Current = Advance(s.Records);
            if (s.Current is not null && Order(s.Current) == (step, (int)phase)) found.Add(s.Current);
        }
        return found;
    }

    private sealed class Stream(IEnumerator<StepRecord> records)
    {
        public IEnumerator<StepRecord> Records { get; } = records;

        public StepRecord? Current { get; set; }

        public bool Started { get; set; }
    }
}
