using Parity.Backends;
using Parity.Comparison;
using Parity.Diagnostics;
using Parity.Harness.StepChecks;
using Parity.IO;
using Parity.Planning;
using Parity.Reporting;
using Parity.Running;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Harness;

/// <summary>What a run is asked to do.</summary>
/// <param name="Spec">The validated spec.</param>
/// <param name="SpecPath">Where it was read from, for the report.</param>
/// <param name="Backends">Backend selections (NAME or NAME@dtype) judged against the reference; <c>onnxruntime</c> asks for arbitration.</param>
/// <param name="Reference">The backend every other is compared with.</param>
/// <param name="OutDirectory">Run directory: traces/ and the report files.</param>
/// <param name="Steps">Steps instead of the spec's schedule.</param>
/// <param name="Device">cpu or cuda for backends that have a choice.</param>
/// <param name="Timeout">Per-request limit for worker backends.</param>
/// <param name="Tolerances">Command-line tolerance overrides (applied after the spec's).</param>
public sealed record RunRequest(
    ScenarioSpec Spec,
    string? SpecPath,
    IReadOnlyList<string> Backends,
    string Reference,
    string OutDirectory,
    int? Steps = null,
    string? Device = null,
    TimeSpan? Timeout = null,
    ToleranceOverrides? Tolerances = null)
{
    /// <summary>True when the reference alone may run (a study of one backend): nothing is compared then.</summary>
    public bool ReferenceAlone { get; init; }

    /// <summary>The spec the detectors judge the traces against, when it is not the one run (a seed study of a deliberately broken run); null for the spec.</summary>
    public ScenarioSpec? DiagnoseAs { get; init; }

    /// <summary>Where the trace of a backend (by display name) goes; null for <c>OutDirectory/traces/NAME</c>.</summary>
    public Func<string, string>? TraceDirectoryFor { get; init; }

    /// <summary>True to judge every backend on its free-running trajectory alone: no step is replayed.</summary>
    public bool TrajectoryOnly { get; init; }

    /// <summary>Which traces stay once the report files are written.</summary>
    public TraceRetention KeepTraces { get; init; }

    /// <summary>How the traces store their values (docs/trace.md, "Compression").</summary>
    public TraceCompression TraceCompression { get; init; } = TraceCompressions.Default;

    /// <summary>The command line's narrowing of the capture (kinds, sites, step range); null for what the spec says.</summary>
    public CaptureFilter? Filter { get; init; }

    /// <summary>
    /// How many things may run at once (<c>--jobs</c>): backends whose sessions may run at once (the reference, workers) train
    /// beside the others (which train one at a time), each backend's step checks and trajectory start as soon as the traces
    /// they read are written, and the comparisons, step checks and detectors share out the cores. 1 runs everything one after
    /// another, so each backend's time is its own. Results do not depend on it. A run takes no more lanes than its
    /// memory estimate fits in the budget (<see cref="MemoryEstimate.LanesWithin"/>).
    /// </summary>
    public int Jobs { get; init; } = Lanes.Default;
}

/// <summary>One backend's part in a session: as selected, its run, and whether it is an envelope run added by the session.</summary>
/// <param name="Display">The selection as written (e.g. <c>torchsharp@float64</c>): the name in traces and reports.</param>
/// <param name="DType">The dtype it trained in.</param>
/// <param name="Auxiliary">True for a noise-envelope run the session added.</param>
/// <param name="Run">How its run ended and where its trace is.</param>
public sealed record SessionRun(string Display, DType DType, bool Auxiliary, BackendRun Run);

/// <summary>
/// The run pipeline, once: spec -> plan -> every backend's trace -> judgement of each backend against the reference (step
/// checks and trajectory, with the noise envelopes chosen here) -> diagnosis -> arbitration -> one report. Every workflow
/// (<c>run</c>, <c>verify</c>, <c>metamorphic</c>, <c>seed</c>, <c>diagnose</c>, ParityAssert) composes this class; none
/// wires the stages itself. Each backend trains into its own trace directory: in-process backends one after another, worker
/// backends whose sessions may run at once (<see cref="BackendCapabilities.ConcurrentSessions"/>: the reference, workers) beside them
/// (<see cref="RunRequest.Jobs"/>), and each backend is judged as soon as it and what it is compared with have trained
/// (<see cref="RunAndJudge"/>); a backend that fails is a result, and the others still run.
/// </summary>
public sealed class RunSession
{
    private readonly List<SessionRun> _runs = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Expected, string Actual), ComparisonResult> _compared = new();

    private RunSession(RunRequest request, Plan plan, TolerancePolicy policy)
    {
        Request = request;
        Plan = plan;
        Layout = TraceLayout.Of(plan);
        Policy = policy;
    }

    /// <summary>What the session was asked to do.</summary>
    public RunRequest Request { get; }

    /// <summary>The plan every backend ran.</summary>
    public Plan Plan { get; }

    /// <summary>The trace layout of the plan.</summary>
    public TraceLayout Layout { get; }

    /// <summary>The tolerance policy in force (defaults, then the spec's, then the command line's).</summary>
    public TolerancePolicy Policy { get; }

    /// <summary>Every run of the session, the reference first, envelope runs last.</summary>
    public IReadOnlyList<SessionRun> Runs => _runs;

    /// <summary>When the session started, for the report.</summary>
    public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;

    /// <summary>
    /// Plans <paramref name="request"/> (data loaded, initial state drawn) and builds its tolerance policy; the run gets no
    /// more lanes than its memory estimate fits in <paramref name="memoryBudget"/> (null: <see cref="MemoryBudget.Current"/>).
    /// </summary>
    public static RunSession Start(RunRequest request, long? memoryBudget = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        TolerancePolicy policy;
        try
        {
            policy = TolerancePolicy.Create(request.Spec.Tolerances, request.Tolerances);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
        long budget = memoryBudget ?? MemoryBudget.Current;
        var plan = Planner.Build(request.Spec, request.Steps, budget);
        // Each lane holds a backend's state, activations and records: no more lanes than the budget holds.
        if (plan.Memory?.LanesWithin(budget, request.Jobs) is int lanes && lanes < request.Jobs) request = request with { Jobs = lanes };
        return new RunSession(request, request.Filter is null ? plan : plan.WithFilter(CaptureFilters.Checked(request.Filter, plan)), policy);
    }

    /// <summary>
    /// The whole pipeline: plan, run, judge, diagnose, arbitrate, report; the report files are written into the out directory.
    /// <paramref name="progress"/> hears every phase: each backend's steps (backend k of n), then the comparisons, the
    /// diagnosis and the report.
    /// </summary>
    public static RunReport Execute(RunRequest request, BackendRegistry registry, IProgress<RunProgress>? progress = null)
    {
        var session = Start(request);
        using var directoryLock = RunManifest.Lock(request);
        var report = session.Report(session.RunAndJudge(registry, progress), progress);
        foreach (var exporter in ReportExporters.All)
        {
            PhaseProgress.Of(progress, RunPhase.Report, task: "writing report files")?.Start(exporter.Name, 0);
            exporter.Export(report, request.OutDirectory);
        }
        TraceRetentions.Apply(report, request.OutDirectory, request.KeepTraces);
        return report;
    }

    /// <summary>
    /// Runs the reference, then the requested backends, then, for float32 backends judged against a float64 reference,
    /// their noise envelopes (<see cref="NoiseEnvelope"/>) unless they were requested, each into <c>traces/NAME</c>. Backends
    /// without <see cref="BackendCapabilities.ConcurrentSessions"/> run in that order, one at a time; the others run beside them
    /// when <see cref="RunRequest.Jobs"/> allows.
    /// </summary>
    public void RunBackends(BackendRegistry registry, IProgress<RunProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        Schedule(registry, judge: false, progress);
    }

    /// <summary>
    /// <see cref="RunBackends"/> and <see cref="Judge"/> in one schedule: each backend's step checks start as soon as it has
    /// trained, and its trajectory as soon as it, the reference and its noise envelopes have, while slower backends still
    /// train beside them (<see cref="RunRequest.Jobs"/> lanes). The judgements are the ones <see cref="Judge"/> gives.
    /// </summary>
    public IReadOnlyList<BackendJudgement> RunAndJudge(BackendRegistry registry, IProgress<RunProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        return Schedule(registry, judge: true, progress);
    }

    // The work of a run as items on the lanes: training each selection (item i trains selection i), then, when judging, each
    // judged backend's trajectory and its step checks, each waiting only for the trainings it reads.
    private List<BackendJudgement> Schedule(BackendRegistry registry, bool judge, IProgress<RunProgress>? progress)
    {
        var selections = Select(registry);
        var backends = selections.Select(s => s.Create()).ToList();
        var runs = new SessionRun[selections.Count];
        // The reference is the first selection; envelope runs come after the backends they serve.
        var judged = Enumerable.Range(1, judge ? selections.Count - 1 : 0).Where(i => !selections[i].Auxiliary).ToList();
        var trajectories = new ComparisonResult[judged.Count];
        var checks = new (ComparisonResult? StepChecks, string? Gap)[judged.Count];
        var items = Enumerable.Range(0, selections.Count).Select(i => new WorkItem(WorkKind.Train, i))
            .Concat(judged.SelectMany((_, j) => new[] { new WorkItem(WorkKind.Trajectory, j), new WorkItem(WorkKind.StepChecks, j) }))
            .ToList();

        IEnumerable<int> After(WorkItem item)
        {
            if (item.Kind == WorkKind.Train) return [];
            int trained = judged[item.Index];
            if (item.Kind == WorkKind.StepChecks) return [trained]; // replayed from its own trace alone
            var envelopes = NoiseEnvelope.EnvelopesOf(selections[trained].Display).ToHashSet();
            return Enumerable.Range(0, selections.Count).Where(i => i == 0 || i == trained || envelopes.Contains(selections[i].Display));
        }

        void Work(WorkItem item)
        {
            int k = item.Index;
            switch (item.Kind)
            {
                case WorkKind.Train:
                    var s = selections[k];
                    var options = new BackendOptions(s.DType, Request.Device, Request.Timeout);
                    var stage = PhaseProgress.Of(progress, RunPhase.Train, k + 1, selections.Count, s.Auxiliary ? "noise envelope" : null);
                    stage?.Start(s.Display, Plan.TotalSteps);
                    var run = ScenarioRunner.Run(Plan, backends[k], options, TraceDirectoryOf(s.Display), stage, s.Display, compression: Request.TraceCompression);
                    runs[k] = new SessionRun(s.Display, s.DType, s.Auxiliary, run);
                    break;
                case WorkKind.Trajectory:
                    trajectories[k] = CompareAmong(runs[0], runs[judged[k]], runs,
                        PhaseProgress.Of(progress, RunPhase.Compare, k + 1, judged.Count, "trajectory"));
                    break;
                default:
                    checks[k] = StepChecks(runs[judged[k]], selections[0].Display, selections[0].DType, PhaseProgress.Of(progress, RunPhase.Compare, k + 1, judged.Count, "step checks"));
                    break;
            }
        }

        // Backends whose sessions may run beside others (the reference, workers) share the lanes; the rest train one at a time.
        var alone = backends.Select(b => !b.RunsBesideOthers()).ToList();
        try
        {
            Lanes.Run(items, Request.Jobs, item => item.Kind == WorkKind.Train && alone[item.Index], Work, After);
        }
        finally
        {
            _runs.AddRange(runs.Where(r => r is not null)); // what trained stays, even when judging one of them failed
        }
        return judged.Select((i, j) => new BackendJudgement(runs[i].Display, checks[j].StepChecks, trajectories[j], checks[j].Gap)).ToList();
    }

    private enum WorkKind
    {
        Train,
        Trajectory,
        StepChecks,
    }

    // Train: Index is the selection; Trajectory and StepChecks: Index is the judged backend's position among the judged.
    private sealed record WorkItem(WorkKind Kind, int Index);

    /// <summary>Adds runs that already happened (their traces on disk): <c>parity diagnose</c> reads a run directory this way.</summary>
    public void Attach(IEnumerable<SessionRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        _runs.AddRange(runs);
    }

    /// <summary>Where the trace of the backend named <paramref name="display"/> goes.</summary>
    public string TraceDirectoryOf(string display) => Request.TraceDirectoryFor?.Invoke(display) ?? PathNames.Under(Path.Combine(Request.OutDirectory, "traces"), display);

    /// <summary>
    /// Judges every judged (not auxiliary, not reference) backend against the reference: the step checks of its captured
    /// steps, replayed from its own state, and its free-running trajectory against the reference's (with its noise envelopes).
    /// </summary>
    public IReadOnlyList<BackendJudgement> Judge(IProgress<RunProgress>? progress = null)
    {
        if (Reference is not { } reference) return [];
        var judged = _runs.Where(r => !r.Auxiliary && r != reference).ToList();
        // Each backend's trajectory and its step checks are separate pieces of work, so the cores share them out evenly.
        var trajectories = new ComparisonResult[judged.Count];
        var checks = new (ComparisonResult? StepChecks, string? Gap)[judged.Count];
        Lanes.Map(Enumerable.Range(0, 2 * judged.Count).ToList(), Request.Jobs, (part, _) =>
        {
            int i = part / 2;
            if (part % 2 == 0)
                trajectories[i] = Compare(reference, judged[i], PhaseProgress.Of(progress, RunPhase.Compare, i + 1, judged.Count, "trajectory"));
            else
                checks[i] = StepChecks(judged[i], reference.Display, reference.DType, PhaseProgress.Of(progress, RunPhase.Compare, i + 1, judged.Count, "step checks"));
            return part;
        });
        return judged.Select((run, i) => new BackendJudgement(run.Display, checks[i].StepChecks, trajectories[i], checks[i].Gap)).ToList();
    }

    /// <summary>
    /// <paramref name="actual"/>'s trace against <paramref name="expected"/>'s as two free-running trajectories, with the noise
    /// envelopes of <paramref name="actual"/> when a float32 trace is judged against a float64 one (the one rule of envelope
    /// choice, used by the table and the pairwise matrix alike). <paramref name="progress"/> hears each step of
    /// <paramref name="actual"/>'s trace as it is compared.
    /// </summary>
    public ComparisonResult Compare(SessionRun expected, SessionRun actual, IProgress<RunProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        return CompareAmong(expected, actual, _runs, progress);
    }

    // The traces are final once trained, so a pair compared once (a judgement's trajectory) is not read again for the matrix.
    // The envelope runs are looked up among runs.
    private ComparisonResult CompareAmong(SessionRun expected, SessionRun actual, IReadOnlyList<SessionRun?> runs, IProgress<RunProgress>? progress) =>
        _compared.GetOrAdd((expected.Run.TraceDirectory, actual.Run.TraceDirectory), _ => CompareTraces(expected, actual, runs, progress));

    private ComparisonResult CompareTraces(SessionRun expected, SessionRun actual, IReadOnlyList<SessionRun?> runs, IProgress<RunProgress>? progress)
    {
        var envelopes = expected.DType == DType.Float64 && actual.DType == DType.Float32
            ? NoiseEnvelope.EnvelopesOf(actual.Display).Select(name => runs.FirstOrDefault(r => r?.Display == name))
                .OfType<SessionRun>().Where(e => e.Run.Status == RunStatus.Completed && e != expected && e != actual)
                .Select(e => (ITrace)TraceReader.Open(e.Run.TraceDirectory)).ToList()
            : [];
        return TraceComparer.Compare(TraceReader.Open(expected.Run.TraceDirectory),
            PhaseProgress.Observe(progress, TraceReader.Open(actual.Run.TraceDirectory), actual.Display, Plan.TotalSteps), Layout, Policy, envelopes, actual.Run.Mismatches);
    }

    /// <summary>
    /// <paramref name="actual"/>'s fresh trace against an approved baseline of the same backend (<c>verify</c>): two runs of one
    /// framework, so no envelope: the atol/rtol rule judges the drift a framework upgrade may bring.
    /// </summary>
    public ComparisonResult CompareWithBaseline(ITrace baseline, SessionRun actual)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        ArgumentNullException.ThrowIfNull(actual);
        return TraceComparer.Compare(baseline, TraceReader.Open(actual.Run.TraceDirectory), Layout, Policy, [], actual.Run.Mismatches);
    }

    /// <summary>The pairwise matrix of every completed judged backend (and the reference), by the same envelope rule as <see cref="Compare"/>.</summary>
    public IReadOnlyList<PairReport> Matrix(IProgress<RunProgress>? progress = null)
    {
        var completed = _runs.Where(r => !r.Auxiliary && r.Run.Status == RunStatus.Completed).ToList();
        int pairs = completed.Count * (completed.Count - 1) / 2;
        var pairList = new List<(SessionRun Expected, SessionRun Actual)>();
        for (int i = 0; i < completed.Count; i++)
        {
            // The float64 trace is the expected one of a pair; the earlier on a tie.
            for (int j = i + 1; j < completed.Count; j++)
                pairList.Add(completed[j].DType == DType.Float64 && completed[i].DType != DType.Float64 ? (completed[j], completed[i]) : (completed[i], completed[j]));
        }
        return Lanes.Map(pairList, Request.Jobs, (pair, k) =>
        {
            var (expected, actual) = pair;
            var result = Compare(expected, actual,
                PhaseProgress.Of(progress, RunPhase.Compare, k + 1, pairs, "pairwise matrix", $"{expected.Display} vs {actual.Display}"));
            return new PairReport(expected.Display, actual.Display, result.Verdict, result.FirstDivergence?.Step, result.FirstDivergence?.Key.ToString());
        });
    }

    /// <summary>Runs every detector over the judged backends' traces (the reference's included) and the judgements.</summary>
    public Diagnosis Diagnose(IReadOnlyList<BackendJudgement> judgements, IProgress<RunProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(judgements);
        PhaseProgress.Of(progress, RunPhase.Diagnose, task: $"{Diagnoser.Detectors.Count} detectors")?.Start("", 0);
        var traces = new List<BackendTrace>();
        foreach (var run in _runs.Where(r => !r.Auxiliary && r.Run.Status != RunStatus.Unavailable))
            traces.Add(new BackendTrace(run.Display, TraceReader.Open(run.Run.TraceDirectory), run.Run.Mismatches));
        var judgedAs = Request.DiagnoseAs ?? Plan.Spec;
        return Diagnoser.Run(new DiagnosisContext(judgedAs, new Models.ModelGraph(judgedAs.Model), Request.Reference, traces, judgements) { Plan = Plan },
            jobs: Request.Jobs);
    }

    /// <summary>ONNX Runtime's verdict on each judged backend's final checkpoint, when <c>onnxruntime</c> was asked for; empty otherwise.</summary>
    public IReadOnlyList<ArbiterReport> Arbitrate(IProgress<RunProgress>? progress = null)
    {
        if (!Request.Backends.Contains(OnnxArbitration.BackendName)) return [];
        PhaseProgress.Of(progress, RunPhase.Report, task: "ONNX Runtime arbitration")?.Start(OnnxArbitration.BackendName, 0);
        return OnnxArbitration.Check(Plan, _runs.Where(r => !r.Auxiliary).Select(r => r.Run), Policy, Request.Device);
    }

    /// <summary>Diagnoses, arbitrates and builds the run's report once, its verdict and exit code included.</summary>
    public RunReport Report(IReadOnlyList<BackendJudgement> judgements, IProgress<RunProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(judgements);
        return ReportBuilder.Build(new ReportInput(Plan, Request.SpecPath, Request.Reference,
            _runs.Select(r => (r.Run, r.DType.Name(), r.Auxiliary)).ToList(), judgements, Matrix(progress), Policy.Describe(),
            Diagnose(judgements, progress), Arbitrate(progress), Started, Request.OutDirectory));
    }

    private SessionRun? Reference => _runs.FirstOrDefault(r => r.Display == Request.Reference);

    // The step checks read only the run's own trace (the float64 reference replays each step), so they need the reference's
    // name and dtype, not its run.
    private (ComparisonResult? StepChecks, string? Gap) StepChecks(SessionRun run, string reference, DType referenceDType, IProgress<RunProgress>? progress)
    {
        if (Request.TrajectoryOnly) return (null, "step checks off (--trajectory-only): judged on its free-running trajectory alone");
        if (run.Run.Status == RunStatus.Unavailable) return (null, $"{run.Display} did not run");
        if (referenceDType != DType.Float64)
            return (null, $"the reference {reference} is not the float64 reference: steps are replayed by the float64 reference only");
        var trace = TraceReader.Open(run.Run.TraceDirectory);
        using var replay = StepReplay.Open(Plan, run.Display, run.DType, run.Run.Mismatches);
        var excused = replay.NotReplayed.Select(n => n.Mismatch).ToList();
        string envelope = replay.EnvelopeNames.Count == 0 ? "" : string.Join("+", replay.EnvelopeNames.Select(n => n + " replay"));
        var result = TraceComparer.Judge(replay.Align(PhaseProgress.Observe(progress, trace.Records(), run.Display, Plan.TotalSteps)),
            new ComparedTraces(reference + " replay", run.Display, TraceComparer.Problem(trace, "actual"), envelope.Length == 0 ? null : envelope),
            TraceLayout.Of(Plan), Policy, excused, ComparisonMode.StepCheck);
        var notes = replay.NotReplayed.Select(n => $"{n.Mismatch.Setting} not replayed ({n.Reason}): {string.Join(", ", n.Mismatch.Affects)} excused").ToList();
        if (replay.StepsReplayed == 0)
        {
            return (null, StepCheckImpossible(run, trace));
        }
        if (replay.ExtraDrawsReplayed > 0) result = result with { Envelope = $"{envelope}, {replay.ExtraDrawsReplayed} more permuted draws to confirm failures" };
        return (result, notes.Count == 0 ? null : string.Join("; ", notes));
    }

    // Why no step of a run could be replayed: a run that stopped first, state kinds left out of the capture, no optimizer
    // state reported, or no captured step after a complete state.
    private string StepCheckImpossible(SessionRun run, TraceReader trace)
    {
        if (run.Run.StepsCompleted == 0) return $"no step checked: {run.Display} completed no step";
        if (TensorKinds.State.Where(k => !Plan.CapturedKinds.Contains(k)).ToList() is { Count: > 0 } left)
            return $"judged on its free-running trajectory only: the spec's capture.kinds leave out the state kinds {string.Join(", ", left.Select(k => k.Name()))}, so no step can be replayed from the backend's own state";
        if (!trace.Records().Take(1).Any(r => r.Find(TensorKind.OptimizerStep) is not null))
            return $"judged on its free-running trajectory only: {run.Display} does not report its optimizer state (a worker of protocol 1 does not), so no step can be replayed from its own state";
        return "judged on its free-running trajectory only: no captured step follows a recorded state (capture.steps, narrowed by --steps-range)";
    }

    /// <summary>A backend display name as a directory name (<see cref="PathNames.Segment"/>).</summary>
    public static string Sanitize(string name) => PathNames.Segment(name);

    private sealed record Selection(string Display, DType DType, bool Auxiliary, Func<IBackend> Create);

    private List<Selection> Select(BackendRegistry registry)
    {
        var chosen = new List<Selection>();
        void Add(string item)
        {
            (string name, string display, DType dtype) = StandardBackends.Resolve(registry, item, Plan.Spec.DType);
            if (chosen.All(c => c.Display != display)) chosen.Add(new Selection(display, dtype, false, () => registry.Create(name)));
        }
        Add(Request.Reference);
        foreach (string b in Request.Backends.Where(b => b != OnnxArbitration.BackendName)) Add(b);
        if (chosen.Count < 2 && !Request.ReferenceAlone)
            throw new UsageException($"nothing to compare: give at least one backend besides the reference '{Request.Reference}'");
        if (chosen[0].DType == DType.Float64)
        {
            foreach (var judged in chosen.Skip(1).Where(c => c.DType == DType.Float32).ToList())
            {
                foreach (string envelope in NoiseEnvelope.EnvelopesOf(judged.Display).Where(e => chosen.All(c => c.Display != e)))
                    chosen.Add(new Selection(envelope, DType.Float32, true, () => NoiseEnvelope.Create(envelope)));
            }
        }
        return chosen;
    }
}
