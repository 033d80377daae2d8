using Parity.Comparison;
using Parity.Planning;
using Parity.Running;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Reporting;

/// <summary>Assembles a <see cref="RunReport"/> from what a run produced: backend runs, comparisons and traces.</summary>
public static class ReportBuilder
{
    /// <summary>Most heatmap columns; longer runs are bucketed by maximum.</summary>
    public const int MaxHeatmapColumns = 300;

    /// <summary>Builds the report; <paramref name="runDirectory"/> makes trace paths relative.</summary>
    public static RunReport Build(Plan plan, string? specPath, string reference, IReadOnlyList<(BackendRun Run, string DType, bool Auxiliary)> runs,
        IReadOnlyList<ComparisonResult> comparisons, IReadOnlyList<PairReport> matrix, PolicyDescription policy,
        DateTimeOffset started, string runDirectory)
    {
        var notIdentifiable = plan.Graph.Parameters.Where(p => !p.Identifiable).Select(p => p.Name).ToList();
        var scenario = new ScenarioInfo(plan.Spec.Name, plan.Spec.Description, SpecLoader.Hash(plan.Spec), specPath, plan.Spec.DType.ToString().ToLowerInvariant(),
            plan.TotalSteps, plan.StepsPerEpoch, plan.Train.Count, plan.Eval.Count, plan.Train.Origin, [.. plan.Graph.Shared], notIdentifiable);
        var backends = runs.Select(r => new BackendReport(r.Run.Backend, r.DType, StatusName(r.Run.Status), r.Run.Message, r.Run.StepsCompleted,
            r.Run.Duration.TotalSeconds, r.Run.Runtime, r.Run.Mismatches, Path.GetRelativePath(runDirectory, r.Run.TraceDirectory), r.Auxiliary)).ToList();
        var comparisonReports = comparisons.Select(c => ToReport(c, plan)).ToList();

        bool error = runs.Any(r => !r.Auxiliary && r.Run.Status != RunStatus.Completed) || comparisons.Any(c => c.Verdict == Verdict.Error);
        bool diverge = comparisons.Any(c => c.Verdict == Verdict.Diverge);
        var series = runs.Where(r => r.Run.StepsCompleted > 0 || r.Run.Status == RunStatus.Completed)
            .SelectMany(r => SeriesOf(r.Run.Backend, r.Run.TraceDirectory, plan)).ToList();
        return new RunReport
        {
            Scenario = scenario,
            Machine = new MachineInfo(System.Runtime.InteropServices.RuntimeInformation.OSDescription, Environment.ProcessorCount,
                Environment.Version.ToString(), typeof(ReportBuilder).Assembly.GetName().Version?.ToString() ?? "0", started, (DateTimeOffset.UtcNow - started).TotalSeconds),
            Reference = reference,
            TolerancePolicy = policy,
            Backends = backends,
            Comparisons = comparisonReports,
            Matrix = matrix,
            Series = series,
            ExitCode = error ? 2 : diverge ? 1 : 0,
            Verdict = error ? "error" : diverge ? "diverge" : "agree",
        };
    }

    /// <summary>The report form of one comparison; <paramref name="plan"/>, when given, supplies the shape of the divergent tensor.</summary>
    public static ComparisonReport ToReport(ComparisonResult c, Plan? plan = null)
    {
        DivergenceReport? first = c.FirstDivergence is { } d
            ? new DivergenceReport(d.Origin.Step, d.Origin.Phase.ToString().ToLowerInvariant(), d.Origin.Key.Kind.Name(), d.Origin.Key.Site,
                d.IsOrigin ? "origin" : "inherited", Metrics(d.Origin) with { Shape = plan is null ? null : ShapeOf(d.Origin.Key, plan) },
                [.. d.UpstreamPassed.Select(k => k.ToString())],
                [.. d.UpstreamUnknown.Select(k => k.ToString())], d.ExplainedBy)
            : null;
        return new ComparisonReport(c.Actual, c.Expected, VerdictName(c.Verdict), c.Message, first, c.StepsCompared, c.TensorsCompared, c.TensorsFailed,
            c.NotIdentifiable, Heatmap(c.Checks));
    }

    /// <summary>The lower-case verdict name used in every format.</summary>
    public static string VerdictName(Verdict v) => v.ToString().ToLowerInvariant();

    private static string StatusName(RunStatus s) => s switch
    {
        RunStatus.Completed => "completed",
        RunStatus.Failed => "failed",
        _ => "unavailable",
    };

    private static MetricsReport Metrics(TensorCheck t) =>
        new(t.Metrics.MaxAbs, t.Metrics.MaxRel, t.Metrics.Mismatched, t.Metrics.Count, t.Metrics.Rmse, t.Metrics.Cosine, t.Score,
            t.Metrics.WorstIndex, null, t.Tolerance?.Atol, t.Tolerance?.Rtol);

    /// <summary>
    /// The canonical shape of a traced tensor (the trace conventions of the backend contract): [batch, width] per call,
    /// [features] for statistics, the parameter's shape, [] for scalars; null when the plan does not name it.
    /// </summary>
    internal static IReadOnlyList<int>? ShapeOf(TensorKey key, Plan plan)
    {
        var call = plan.Graph.Calls.FirstOrDefault(c => c.Id == key.Site);
        return key.Kind switch
        {
            TensorKind.Forward or TensorKind.OutputGradient when call is not null => [plan.Spec.Data.BatchSize, call.OutWidth],
            TensorKind.EvalOutput when call is not null => [plan.Eval.Count, call.OutWidth],
            TensorKind.BatchMean or TensorKind.BatchVariance when call is not null => [call.OutWidth],
            TensorKind.Parameter or TensorKind.ParameterGradient => plan.Graph.Parameters.FirstOrDefault(p => p.Name == key.Site)?.Shape,
            TensorKind.RunningMean or TensorKind.RunningVariance => plan.Graph.BatchNorms.FirstOrDefault(b => b.Name == key.Site)?.Features is int f ? [f] : null,
            TensorKind.Loss or TensorKind.TrainAccuracy or TensorKind.EvalLoss or TensorKind.EvalAccuracy => [],
            _ => null,
        };
    }

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
        foreach (var c in train)
        {
            int r = rowIndex[c.Key], col = columnOf[c.Step];
            double s = double.IsNaN(c.Score) ? double.PositiveInfinity : c.Score;
            // A cell shows the worst check that counts in the verdict; only when none counts (every check not
            // identifiable, or inherited from a ReLU kink flip) does it show the worst of the others, listed as excluded.
            bool counts = c.Status is not (CheckStatus.NotIdentifiable or CheckStatus.KinkInherited);
            if (counts && !counted[r][col]) scores[r][col] = null;
            if (counts || !counted[r][col]) scores[r][col] = scores[r][col] is double prev ? Math.Max(prev, s) : s;
            counted[r][col] |= counts;
        }
        var excluded = rows.Select((_, r) => (IReadOnlyList<int>)Enumerable.Range(0, buckets).Where(col => scores[r][col] is not null && !counted[r][col]).ToList()).ToList();
        return new HeatmapReport(rows.Select(k => k.ToString()).ToList(), columnSteps, scores.Select(r => (IReadOnlyList<double?>)r).ToList())
        {
            Excluded = excluded,
        };
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
