using Parity.Running;
using Parity.Tracing;

namespace Parity.Harness;

/// <summary>
/// A stage's progress as part of the whole run: stamps the phase, the item (backend k of n) and the task on what the stage
/// reports, so a terminal can show where the run stands and not only where one backend stands.
/// </summary>
internal sealed class PhaseProgress(IProgress<RunProgress> run, RunPhase phase, int item, int items, string? task, string? subject) : IProgress<RunProgress>
{
    /// <summary>
    /// The progress of item <paramref name="item"/> of <paramref name="items"/> in <paramref name="phase"/>, named
    /// <paramref name="subject"/> when given (else by the backend the stage reports), or null when nobody watches.
    /// </summary>
    public static PhaseProgress? Of(IProgress<RunProgress>? run, RunPhase phase, int item = 0, int items = 0, string? task = null, string? subject = null) =>
        run is null ? null : new PhaseProgress(run, phase, item, items, task, subject);

    public void Report(RunProgress value) =>
        run.Report(value with { Backend = subject ?? value.Backend, Phase = phase, Item = item, Items = items, Task = task });

    /// <summary>Reports that the item starts (step 0), so a slow start (a worker loading its framework) already shows.</summary>
    public void Start(string backend, int totalSteps) => Report(new RunProgress(backend, 0, totalSteps, TimeSpan.Zero));

    /// <summary>
    /// <paramref name="records"/>, reporting each record's step to <paramref name="progress"/> as it is read: the progress of a
    /// comparison, which reads its traces record by record.
    /// </summary>
    public static IEnumerable<StepRecord> Observe(IProgress<RunProgress>? progress, IEnumerable<StepRecord> records, string backend, int totalSteps)
    {
        if (progress is null) return records;
        return Observed();

        IEnumerable<StepRecord> Observed()
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            foreach (var record in records)
            {
                progress.Report(new RunProgress(backend, record.Step, totalSteps, clock.Elapsed));
                yield return record;
            }
        }
    }

    /// <summary><paramref name="trace"/> with its records observed (<see cref="Observe(IProgress{RunProgress}, IEnumerable{StepRecord}, string, int)"/>).</summary>
    public static ITrace Observe(IProgress<RunProgress>? progress, ITrace trace, string backend, int totalSteps) =>
        progress is null ? trace : new ObservedTrace(trace, progress, backend, totalSteps);

    private sealed class ObservedTrace(ITrace inner, IProgress<RunProgress> progress, string backend, int totalSteps) : ITrace
    {
        public TraceHeader Header => inner.Header;

        public IEnumerable<StepRecord> Records() => Observe(progress, inner.Records(), backend, totalSteps);
    }
}
