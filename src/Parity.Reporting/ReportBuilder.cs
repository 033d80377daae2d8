using Parity.Comparison;
using Parity.Diagnostics;
using Parity.Planning;
using Parity.Running;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Reporting;

/// <summary>Everything a run produced that its report is built from.</summary>
/// <param name="Plan">The plan.</param>
/// <param name="SpecPath">The spec file, or null.</param>
/// <param name="Reference">The reference backend.</param>
/// <param name="Runs">Every run (auxiliary envelope runs flagged), the reference first.</param>
/// <param name="Judgements">Each judged backend against the reference.</param>
/// <param name="Matrix">The pairwise matrix.</param>
/// <param name="Policy">The tolerance policy in force.</param>
/// <param name="Diagnosis">The detectors' findings.</param>
/// <param name="Arbitration">ONNX Runtime's verdicts, when asked for.</param>
/// <param name="Started">When the run started.</param>
/// <param name="RunDirectory">The run directory (trace paths are made relative to it).</param>
public sealed record ReportInput(Plan Plan, string? SpecPath, string Reference, IReadOnlyList<(BackendRun Run, string DType, bool Auxiliary)> Runs,
    IReadOnlyList<BackendJudgement> Judgements, IReadOnlyList<PairReport> Matrix, PolicyDescription Policy, Diagnosis Diagnosis,
    IReadOnlyList<ArbiterReport> Arbitration, DateTimeOffset Started, string RunDirectory);

/// <summary>
/// Assembles a <see cref="RunReport"/> once, from everything a run produced: the run's verdict and exit code are decided
/// here and nowhere else (<see cref="Verdicts.Combine(IEnumerable{Verdict})"/> of every backend's status, every judgement and every
/// arbitration).
/// </summary>
public static class ReportBuilder
{
    /// <summary>Most heatmap columns; longer runs are bucketed by maximum.</summary>
    public const int MaxHeatmapColumns = 300;

    /// <summary>Builds the report.</summary>
    public static RunReport Build(ReportInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var plan = input.Plan;
        var notIdentifiable = plan.Graph.Parameters.Where(p => !p.Identifiable).Select(p => p.Name).ToList();
        var scenario = new ScenarioInfo(plan.Spec.Name, plan.Spec.Description, SpecLoader.Hash(plan.Spec), input.SpecPath, plan.Spec.DType.ToString().ToLowerInvariant(),
            plan.TotalSteps, plan.StepsPerEpoch, plan.Train.Count, plan.Eval.Count, plan.Train.Origin, [.. plan.Graph.Shared], notIdentifiable)
        {
            Loss = plan.Spec.Loss.Type,
            CaptureFilter = plan.Filter?.Describe(plan.TotalSteps),
        };
        var backends = input.Runs.Select(r => new BackendReport(r.Run.Backend, r.DType, r.Run.Status, r.Run.Message, r.Run.StepsCompleted,
            r.Run.Duration.TotalSeconds, r.Run.Runtime, r.Run.Mismatches, Path.GetRelativePath(input.RunDirectory, r.Run.TraceDirectory), r.Auxiliary)).ToList();
        var verdict = Verdicts.Combine(input.Runs.Where(r => !r.Auxiliary).Select(r => Verdicts.Of(r.Run.Status))
            .Concat(input.Judgements.Select(j => j.Verdict))
            .Concat(input.Arbitration.Select(a => a.Verdict)));
        var findings = input.Diagnosis.Findings.Select(ToReport).ToList();
        var series = input.Runs.Where(r => r.Run.StepsCompleted > 0 || r.Run.Status == RunStatus.Completed)
            .SelectMany(r => SeriesOf(r.Run.Backend, r.Run.TraceDirectory, plan)).ToList();
        return new RunReport
        {
            Scenario = scenario,
            Machine = new MachineInfo(System.Runtime.InteropServices.RuntimeInformation.OSDescription, Environment.ProcessorCount,
                Environment.Version.ToString(), ParityVersion.Current, input.Started,
                (DateTimeOffset.UtcNow - input.Started).TotalSeconds),
            Reference = input.Reference,
            TolerancePolicy = input.Policy,
            Backends = backends,
            Comparisons = input.Judgements.Select(j => Explanations.Attach(ToReport(j, plan), findings)).ToList(),
            Matrix = input.Matrix,
            Findings = findings,
            Arbitration = input.Arbitration,
            Series = series,
            ExitCode = ExitCodes.Of(verdict),
            Verdict = verdict,
        };
    }

    /// <summary>The report form of one judgement: the deciding comparison, with the step checks and the trajectory beside it.</summary>
    public static ComparisonReport ToReport(BackendJudgement judgement, Plan? plan = null)
    {
        ArgumentNullException.ThrowIfNull(judgement);
        var trajectory = ToReport(judgement.Trajectory, plan);
        var deciding = judgement.StepChecks is { } steps ? ToReport(steps, plan) : trajectory;
        return deciding with
        {
            JudgedBy = judgement.Deciding.Mode,
            StepCheckGap = judgement.StepCheckGap,
            StepChecks = judgement.StepChecks is { } s
                ? new StepCheckReport(s.Verdict, s.StepsCompared, s.TensorsCompared, s.TensorsFailed, judgement.KinkExcused, s.Envelope)
                : null,
            Trajectory = new TrajectoryReport(trajectory.Verdict, trajectory.Message, trajectory.FirstDivergence, trajectory.StepsCompared,
                trajectory.TensorsCompared, trajectory.TensorsFailed, Drift(judgement.Trajectory), trajectory.Heatmap)
            {
                Differences = Differences(judgement.Trajectory.Checks),
            },
        };
    }

    /// <summary>The report form of one comparison; <paramref name="plan"/>, when given, supplies the shape of the divergent tensor.</summary>
    public static ComparisonReport ToReport(ComparisonResult c, Plan? plan = null)
    {
        ArgumentNullException.ThrowIfNull(c);
        DivergenceReport? first = c.FirstDivergence is { } d
            ? new DivergenceReport(d.Origin.Step, d.Origin.Phase.ToString().ToLowerInvariant(), d.Origin.Key.Kind.Name(), d.Origin.Key.Site,
                d.IsOrigin ? "origin" : "inherited", Metrics(d.Origin) with { Shape = plan is null ? null : ShapeOf(d.Origin.Key, plan) },
                [.. d.UpstreamPassed.Select(k => k.ToString())],
                [.. d.UpstreamUnknown.Select(k => k.ToString())], d.ExplainedBy)
            : null;
        return new ComparisonReport(c.Actual, c.Expected, c.Verdict, c.Message, first, c.StepsCompared, c.TensorsCompared, c.TensorsFailed,
            c.NotIdentifiable, Heatmap(c.Checks))
        {
            JudgedBy = c.Mode,
        };
    }

    /// <summary>A finding as report.json writes it: a cause of the backend's divergence or a finding about the spec, and the declared setting that accounts for it.</summary>
    public static FindingReport ToReport(Finding finding)
    {
        ArgumentNullException.ThrowIfNull(finding);
        return new FindingReport(finding.Cause, finding.Backend, finding.Location?.ToString() ?? "model", finding.Summary, finding.Evidence, finding.Hint)
        {
            Kind = finding.Kind,
            DeclaredBy = finding.DeclaredBy,
        };
    }

    // At the last compared step: the loss, the accuracies and the parameter that drifted most against its envelope.
    private static List<DriftReport> Drift(ComparisonResult trajectory)
    {
        var train = trajectory.Checks.Where(c => c.Status != CheckStatus.Missing && !double.IsNaN(c.Metrics.Rmse)).ToList();
        var drift = new List<DriftReport>();
        foreach (var kind in new[] { TensorKind.Loss, TensorKind.TrainAccuracy, TensorKind.EvalLoss, TensorKind.EvalAccuracy })
            if (train.LastOrDefault(c => c.Key.Kind == kind) is { } last) drift.Add(DriftOf(last));
        var parameters = train.Where(c => c.Key.Kind == TensorKind.Parameter && c.Status != CheckStatus.NotIdentifiable).ToList();
        if (parameters.Count > 0)
        {
            int step = parameters.Max(c => c.Step);
            drift.Add(DriftOf(parameters.Where(c => c.Step == step).MaxBy(c => c.EnvelopeError is > 0 ? c.Metrics.Rmse / c.EnvelopeError.Value : c.Metrics.Rmse)!));
        }
        return drift;
    }

    private static DriftReport DriftOf(TensorCheck c) =>
        new(c.Key.ToString(), c.Step, c.Metrics.Rmse, c.EnvelopeError, c.EnvelopeError is > 0 ? c.Metrics.Rmse / c.EnvelopeError.Value : null);

    private static MetricsReport Metrics(TensorCheck t) =>
        new(t.Metrics.MaxAbs, t.Metrics.MaxRel, t.Metrics.Mismatched, t.Metrics.Count, t.Metrics.Rmse, t.Metrics.Cosine, t.Score,
            t.Metrics.WorstIndex, null, t.Tolerance?.Atol, t.Tolerance?.Rtol);

    /// <summary>
    /// The canonical shape of a traced tensor (the trace conventions of the backend contract): [batch, width] per call,
    /// [features] for statistics, the parameter's shape, [] for scalars; null when the plan does not name it.
    /// </summary>
    internal static IReadOnlyList<int>? ShapeOf(TensorKey key, Plan plan) =>
        TraceLayout.Of(plan).ShapeOf(key, key.Kind.IsEval() ? plan.Eval.Count : plan.Spec.Data.BatchSize);

    private static HeatmapReport Heatmap(IReadOnlyList<TensorCheck> checks)
    {
        var train = checks.Where(c => c.Phase != RecordPhase.Eval || c.Key.Kind.IsEval()).ToList();
        var rows = train.Select(c => c.Key).Distinct().OrderBy(k => k.Kind).ThenBy(k => FirstIndex(train, k)).ToList();
        var steps = train.Select(c => c.Step).Distinct().Order().ToList();
        if (steps.Count == 0) return new HeatmapReport([], [], []);
        int buckets = Math.Min(MaxHeatmapColumns, steps.Count);
        var columnOf = new Dictionary<int, int>();
        for (int i = 0; i < steps.Count; i++) columnOf[steps[i]] = (int)((long)i * buckets / steps.Count);
        var columnSteps = new int[buckets];
        foreach (var (step, col) in columnOf) columnSteps[col] = Math.Max(columnSteps[col], step);
        var rowIndex = rows.Select((k, i) => (k, i)).ToDictionary(p => p.k, p => p.i);
        var scores = rows.Select(_ => new double?[buckets]).ToArray();
        var counted = rows.Select(_ => new bool[buckets]).ToArray();
        var shown = rows.Select(_ => new CheckStatus[buckets]).ToArray();
        foreach (var c in train)
        {
            int r = rowIndex[c.Key], col = columnOf[c.Step];
            double s = double.IsNaN(c.Score) ? double.PositiveInfinity : c.Score;
            // A cell shows the worst check that counts in the verdict; only when none counts (every check not
            // identifiable, or inherited from a ReLU kink flip) does it show the worst of the others, listed as excluded.
            bool counts = c.Status is not (CheckStatus.NotIdentifiable or CheckStatus.KinkInherited);
            if (counts && !counted[r][col]) scores[r][col] = null;
            if ((counts || !counted[r][col]) && !(scores[r][col] >= s))
            {
                scores[r][col] = s;
                shown[r][col] = c.Status;
            }
            counted[r][col] |= counts;
        }
        List<IReadOnlyList<int>> Columns(Func<int, int, bool> where) =>
            rows.Select((_, r) => (IReadOnlyList<int>)Enumerable.Range(0, buckets).Where(col => scores[r][col] is not null && where(r, col)).ToList()).ToList();
        return new HeatmapReport(rows.Select(k => k.ToString()).ToList(), columnSteps, scores.Select(r => (IReadOnlyList<double?>)r).ToList())
        {
            Excluded = Columns((r, col) => !counted[r][col]),
            KinkExcused = Columns((r, col) => !counted[r][col] && shown[r][col] == CheckStatus.KinkInherited),
            Explained = Columns((r, col) => counted[r][col] && shown[r][col] == CheckStatus.ExplainedByMismatch),
        };
    }

    // Per kind and step, the worst and median RMSE of the identifiable tensors against the reference, and of the envelope
    // runs' own; bucketed like the heatmap's columns.
    private static List<DifferenceReport> Differences(IReadOnlyList<TensorCheck> checks)
    {
        var differences = new List<DifferenceReport>();
        var compared = checks.Where(c => (c.Phase != RecordPhase.Eval || c.Key.Kind.IsEval())
            && c.Status is not (CheckStatus.Missing or CheckStatus.NotIdentifiable) && double.IsFinite(c.Metrics.Rmse));
        foreach (var kind in compared.GroupBy(c => c.Key.Kind).OrderBy(g => g.Key))
        {
            var points = kind.GroupBy(c => c.Step).OrderBy(g => g.Key).Select(g =>
            {
                var errors = g.Select(c => c.Metrics.Rmse).ToList();
                var envelope = g.Where(c => c.EnvelopeError is double e && double.IsFinite(e)).Select(c => c.EnvelopeError!.Value).ToList();
                return (Step: g.Key, Worst: errors.Max(), Median: Median(errors),
                    EnvelopeWorst: envelope.Count > 0 ? envelope.Max() : (double?)null, EnvelopeMedian: envelope.Count > 0 ? Median(envelope) : (double?)null);
            }).ToList();
            int buckets = Math.Min(MaxHeatmapColumns, points.Count);
            var merged = points.Select((p, i) => (p, i)).GroupBy(x => (int)((long)x.i * buckets / points.Count), x => x.p)
                .Select(b => (Step: b.Max(p => p.Step), Worst: b.Max(p => p.Worst), Median: b.Max(p => p.Median),
                    EnvelopeWorst: b.Max(p => p.EnvelopeWorst), EnvelopeMedian: b.Max(p => p.EnvelopeMedian))).ToList();
            differences.Add(new DifferenceReport(kind.Key.Name(), [.. merged.Select(p => p.Step)], [.. merged.Select(p => p.Worst)],
                [.. merged.Select(p => p.Median)], [.. merged.Select(p => p.EnvelopeWorst)], [.. merged.Select(p => p.EnvelopeMedian)]));
        }
        return differences;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }

    private static int FirstIndex(List<TensorCheck> checks, TensorKey key) => checks.FindIndex(c => c.Key == key);

    /// <summary>
    /// Curves read back from a trace: loss and train accuracy per step, eval loss and accuracy, and for each
    /// batchnorm instance the mean over features of its running mean and running variance, and each
    /// parameter's L2 norm, on captured steps.
    /// </summary>
    public static IEnumerable<SeriesReport> SeriesOf(string backend, string traceDirectory, Plan plan)
    {
        var curves = new Dictionary<string, (List<int> Steps, List<double> Values)>();
        void Add(string name, int step, double value)
        {
            if (!curves.TryGetValue(name, out var c)) curves[name] = c = ([], []);
            c.Steps.Add(step);
            c.Values.Add(value);
        }
        TraceReader reader;
        try
        {
            reader = TraceReader.Open(traceDirectory);
        }
        catch (InvalidDataException)
        {
            yield break;
        }
        foreach (var record in reader.Records())
        {
            foreach (var e in record.Entries)
            {
                var v = e.Value.Data;
                switch (e.Key.Kind)
                {
                    case TensorKind.Loss or TensorKind.TrainAccuracy or TensorKind.EvalLoss or TensorKind.EvalAccuracy:
                        Add(e.Key.Kind.Name(), record.Step, v[0]);
                        break;
                    case TensorKind.RunningMean or TensorKind.RunningVariance:
                        Add($"{e.Key.Kind.Name()}:{e.Key.Site}", record.Step, v.Average());
                        break;
                    case TensorKind.Parameter:
                        Add($"norm:{e.Key.Site}", record.Step, Math.Sqrt(v.Sum(x => x * x)));
                        break;
                }
            }
        }
        foreach (var (name, c) in curves) yield return new SeriesReport(backend, name, c.Steps, c.Values);
    }
}
