using System.Diagnostics;
using Parity.Backends;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Running;

/// <summary>The phases of a run, in the order they happen.</summary>
public enum RunPhase
{
    /// <summary>Backends train, each into its trace (those that may run at once side by side, the others one at a time).</summary>
    Train,

    /// <summary>Each backend's trace is compared with the reference (trajectory, step checks), then every pair.</summary>
    Compare,

    /// <summary>The detectors read the traces and the comparisons.</summary>
    Diagnose,

    /// <summary>Arbitration and the report files.</summary>
    Report,
}

/// <summary>Progress of a run, for terminals: a backend's training step, or where a later phase stands.</summary>
/// <param name="Backend">The backend trained or compared; empty when the phase is about the whole run.</param>
/// <param name="Step">Steps done of this item.</param>
/// <param name="TotalSteps">Steps of this item; 0 when the item has no steps.</param>
/// <param name="Elapsed">Time spent on this item so far.</param>
public readonly record struct RunProgress(string Backend, int Step, int TotalSteps, TimeSpan Elapsed)
{
    /// <summary>The phase of the run.</summary>
    public RunPhase Phase { get; init; }

    /// <summary>Which item of the phase this is, from 1 (e.g. backend 2 of 5); 0 when not counted.</summary>
    public int Item { get; init; }

    /// <summary>How many items the phase has; 0 when not counted.</summary>
    public int Items { get; init; }

    /// <summary>What the item does within its phase (<c>step checks</c>, <c>pairwise matrix</c>), or null.</summary>
    public string? Task { get; init; }
}

/// <summary>
/// Drives one backend through a plan and streams its trace to disk: step 0 state, then each step's
/// record (full on captured steps, scalars otherwise) and the evaluations on the eval cadence. Every
/// failure (an exception, a crash of a worker, a non-finite loss) ends as a <see cref="BackendRun"/>
/// value with what was computed before it kept on disk.
/// </summary>
public static class ScenarioRunner
{
    /// <summary>Runs <paramref name="backend"/> and writes its trace under <paramref name="traceDirectory"/>.</summary>
    /// <param name="plan">The plan.</param>
    /// <param name="backend">The backend.</param>
    /// <param name="options">Dtype, device, timeout.</param>
    /// <param name="traceDirectory">Where the trace goes.</param>
    /// <param name="progress">Step progress, or null.</param>
    /// <param name="displayName">Name in the trace and result (e.g. <c>torchsharp@float64</c>); the backend's name when null.</param>
    /// <param name="compression">How the trace stores its values (docs/trace.md, "Compression").</param>
    /// <param name="cancel">Stops the run between steps.</param>
    public static BackendRun Run(Plan plan, IBackend backend, BackendOptions options, string traceDirectory,
        IProgress<RunProgress>? progress = null, string? displayName = null, TraceCompression compression = TraceCompressions.Default,
        CancellationToken cancel = default)
    {
        string name = displayName ?? backend.Name;
        var clock = Stopwatch.StartNew();
        var description = backend.DescribeSafely();
        var header = new TraceHeader
        {
            Backend = name,
            DType = options.DType.Name(),
            Scenario = plan.Spec.Name,
            SpecHash = SpecLoader.Hash(plan.Spec),
            Runtime = new Dictionary<string, string>(description.Versions),
        };
        using var writer = TraceWriter.Create(traceDirectory, header, compression);
        if (!description.Available)
            return Finish(writer, name, RunStatus.Unavailable, description.Reason, 0, clock, [], header.Runtime);

        IBackendSession? session = null;
        int step = 0;
        try
        {
            session = backend.Open(plan, options);
            var mismatches = session.Mismatches.ToList();
            var runtime = new Dictionary<string, string>(header.Runtime);
            foreach (var (k, v) in session.RuntimeInfo) runtime[k] = v;
            writer.UpdateHeader(h => h with { Mismatches = mismatches, Runtime = runtime });

            var layout = TraceLayout.Of(plan);
            // A backend that does not report its optimizer state is not asked for it (it is then judged on its trajectory).
            CaptureRequest Supported(CaptureRequest capture) => description.Capabilities.OptimizerState ? capture
                : capture with { Kinds = new HashSet<TensorKind>(capture.Kinds.Where(k => !k.IsOptimizerState())) };
            StepRecord Checked(StepRecord record, int at, RecordPhase phase, CaptureRequest capture, int rows)
            {
                if (record.Step != at || record.Phase != phase)
                    throw new BackendException($"the backend returned a {record.Phase} record for step {record.Step}; expected {phase} for step {at}");
                if (layout.Problem(record, capture, rows) is { } problem)
                    throw new BackendException($"its {phase.ToString().ToLowerInvariant()} record for step {at} does not fit the trace layout: {problem}");
                return layout.Canonical(plan.Filter is null ? record : Narrowed(record, layout.Required(phase, capture)));
            }

            // Each record goes to the writer whole, which reads it on its own thread and then releases it: its pooled arrays
            // serve the next steps' captures. The runner owns the canonical records and, through them, every tensor the
            // backend returned, and reads nothing of a record once handed over.
            writer.WriteOwned(Checked(session.ReadState(0), 0, RecordPhase.Initial, Supported(CaptureRequest.StateOnly), 0));
            for (step = 1; step <= plan.TotalSteps; step++)
            {
                cancel.ThrowIfCancellationRequested();
                var batch = plan.BatchFor(step);
                var capture = Supported(plan.CaptureFor(step));
                var record = Checked(session.Step(step, batch, capture), step, RecordPhase.Train, capture, batch.Size);
                double loss = record.Find(TensorKind.Loss) is { } l ? l.Data[0] : 0;
                writer.WriteOwned(record);
                if (plan.IsEvalStep(step))
                    writer.WriteOwned(ChunkedEvaluation.Evaluate(session, plan, step, capture,
                        (chunk, rows) => Checked(chunk, step, RecordPhase.Eval, capture, rows)));
                progress?.Report(new RunProgress(name, step, plan.TotalSteps, clock.Elapsed));
                if (!double.IsFinite(loss))
                    return Finish(writer, name, RunStatus.Completed, $"stopped after step {step}: the loss is {loss}", step, clock, mismatches, runtime);
            }
            return Finish(writer, name, RunStatus.Completed, null, plan.TotalSteps, clock, mismatches, runtime);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            string where = session is null ? "while building the model" : step == 0 ? "while reading the initial state" : $"at step {step}";
            string message = $"{where}: {(e is BackendException ? e.Message : $"{e.GetType().Name}: {e.Message}")}";
            return Finish(writer, name, RunStatus.Failed, message, Math.Max(0, step - 1), clock,
                SafeMismatches(session), header.Runtime);
        }
        finally
        {
            try
            {
                session?.Dispose();
            }
            catch (Exception)
            {
                // A session that fails to shut down has already produced its trace; the run's result stands.
            }
        }
    }

    // Under a capture filter, what a backend sent beyond what it was asked (a worker answers whole kinds) is not written:
    // those tensors are released here (unless a kept entry is the same tensor), the kept ones with the narrowed record.
    private static StepRecord Narrowed(StepRecord record, IEnumerable<TensorKey> wanted)
    {
        var keep = wanted.ToHashSet();
        var narrowed = new StepRecord(record.Step, record.Phase);
        foreach (var e in record.Entries.Where(e => keep.Contains(e.Key))) narrowed.Add(e.Key.Kind, e.Key.Site, e.Value);
        var kept = narrowed.Entries.Select(e => e.Value).ToHashSet(ReferenceEqualityComparer.Instance);
        foreach (var e in record.Entries.Where(e => !kept.Contains(e.Value))) e.Value.Release();
        return narrowed;
    }

    private static BackendRun Finish(TraceWriter writer, string backend, RunStatus status, string? message, int steps, Stopwatch clock,
        IReadOnlyList<ConventionMismatch> mismatches, IReadOnlyDictionary<string, string> runtime)
    {
        writer.UpdateHeader(h => h with
        {
            Status = status,
            Message = message,
            StepsCompleted = steps,
            Seconds = clock.Elapsed.TotalSeconds,
        });
        return new BackendRun(backend, status, message, writer.Directory, steps, clock.Elapsed, mismatches, runtime);
    }

    private static IReadOnlyList<ConventionMismatch> SafeMismatches(IBackendSession? session)
    {
        try
        {
            return session?.Mismatches ?? [];
        }
        catch (Exception)
        {
            return [];
        }
    }
}
