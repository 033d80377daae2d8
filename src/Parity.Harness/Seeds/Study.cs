using System.Diagnostics;
using System.Runtime.ExceptionServices;
using Parity.Backends;
using Parity.Diagnostics;
using Parity.IO;
using Parity.Models;
using Parity.Reporting;
using Parity.Running;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Harness.Seeds;

/// <summary>One model of a study: a spec trained on one or more backends.</summary>
/// <param name="Label">Short name in tables and plots (e.g. <c>shared</c>, <c>momentum 0.001</c>).</param>
/// <param name="Spec">The spec.</param>
/// <param name="SpecPath">Where the spec was read or written, for the report.</param>
/// <param name="Backends">Backend selections; the first is the reference whose trace gives the curves. With two or more, the
/// full <see cref="RunSession"/> runs (comparisons, findings, report.html); with one, the backend runs alone and is diagnosed.</param>
/// <param name="DiagnoseAs">The spec the user meant, when the run expresses what a framework actually did (seed 001: the
/// intended momentum whose update op never ran, run as momentum 0). Detectors judge the trace against it.</param>
public sealed record StudyArm(string Label, ScenarioSpec Spec, string? SpecPath, IReadOnlyList<string> Backends, ScenarioSpec? DiagnoseAs = null);

/// <summary>A curve: values at steps.</summary>
/// <param name="Steps">Steps (1-based).</param>
/// <param name="Values">One value per step.</param>
public sealed record Curve(IReadOnlyList<int> Steps, IReadOnlyList<double> Values);

/// <summary>
/// A batchnorm instance's running statistics against one call site's true batch statistics at one traced step:
/// mean absolute distance over features, and the first features side by side.
/// </summary>
/// <param name="Instance">Batchnorm instance.</param>
/// <param name="Call">Call site whose batch statistics are compared (<c>mean of sites</c> for the average over every site).</param>
/// <param name="Step">The traced step.</param>
/// <param name="MeanDistance">mean |running mean - batch mean|.</param>
/// <param name="VarianceDistance">mean |running variance - batch variance (biased)|.</param>
/// <param name="RunningMeanHead">The running mean's first features.</param>
/// <param name="BatchMeanHead">The batch mean's first features.</param>
public sealed record RunningStatisticsCheck(string Instance, string Call, int Step, double MeanDistance, double VarianceDistance,
    IReadOnlyList<double> RunningMeanHead, IReadOnlyList<double> BatchMeanHead);

/// <summary>What one arm produced.</summary>
/// <param name="Label">The arm's label.</param>
/// <param name="Scenario">Spec name.</param>
/// <param name="SpecPath">Spec file.</param>
/// <param name="Backends">Backends that ran (the first gives the curves).</param>
/// <param name="Status">completed, failed or unavailable (of the first backend).</param>
/// <param name="Message">Why it stopped, when it did.</param>
/// <param name="Steps">Training steps completed.</param>
/// <param name="Seconds">Wall time of the whole arm (every backend, comparisons, report files).</param>
/// <param name="BackendSeconds">Each backend's own run time (training and evaluation, trace writing included).</param>
/// <param name="Verdict">The cross-backend verdict when two or more backends ran, else null.</param>
/// <param name="Directory">The arm's run directory (report files and traces).</param>
/// <param name="EvalAccuracy">Eval accuracy at each evaluated step.</param>
/// <param name="EvalLoss">Eval loss at each evaluated step.</param>
/// <param name="TrainAccuracy">Train-mode accuracy of the batch at each evaluated step.</param>
/// <param name="TrainLoss">Train loss at each evaluated step.</param>
/// <param name="RunningStatistics">Running statistics against the call sites' batch statistics at the last traced step.</param>
/// <param name="Findings">Diagnosed causes.</param>
public sealed record ArmResult(string Label, string Scenario, string? SpecPath, IReadOnlyList<string> Backends, string Status, string? Message,
    int Steps, double Seconds, IReadOnlyDictionary<string, double> BackendSeconds, string? Verdict, string Directory, Curve EvalAccuracy, Curve EvalLoss, Curve TrainAccuracy, Curve TrainLoss,
    IReadOnlyList<RunningStatisticsCheck> RunningStatistics, IReadOnlyList<FindingReport> Findings)
{
    /// <summary>Last eval accuracy, NaN when none.</summary>
    public double FinalEvalAccuracy => EvalAccuracy.Values.Count > 0 ? EvalAccuracy.Values[^1] : double.NaN;

    /// <summary>Best eval accuracy (cs231n's best validation accuracy), NaN when none.</summary>
    public double BestEvalAccuracy => EvalAccuracy.Values.Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();

    /// <summary>Train accuracy of the last evaluated step's batch.</summary>
    public double FinalTrainAccuracy => TrainAccuracy.Values.Count > 0 ? TrainAccuracy.Values[^1] : double.NaN;

    /// <summary>Train loss of the last step.</summary>
    public double FinalTrainLoss => TrainLoss.Values.Count > 0 ? TrainLoss.Values[^1] : double.NaN;

    /// <summary>True when the named cause was diagnosed.</summary>
    public bool Has(string cause) => Findings.Any(f => f.Cause == cause);
}

/// <summary>
/// Runs the arms of a seed replication and reads back what the seeds are about: eval accuracy over steps, running
/// statistics against batch statistics, and the diagnosed causes. Arms whose backends all allow concurrent sessions
/// (<see cref="BackendCapabilities.ConcurrentSessions"/>: the reference) run at once, up to one per core; any other arms
/// run one after another. Each arm computes the same either way, and the results come back in arm order. Traces stream
/// to disk, so memory stays bounded by one step's tensors per running arm whatever the schedule's length.
/// </summary>
public static class Study
{
    /// <summary>How many leading features <see cref="RunningStatisticsCheck"/> shows.</summary>
    public const int HeadFeatures = 5;

    /// <summary>
    /// Runs every arm into <c>outDirectory/ARM-SCENARIO</c>, at most <paramref name="atOnce"/> at a time (null: as many as
    /// <see cref="ArmsAtOnce"/> allows). An arm that throws does not stop the others: every arm runs to its end (its report
    /// files written), then the first arm's exception, in arm order, is rethrown.
    /// </summary>
    public static IReadOnlyList<ArmResult> Run(IEnumerable<StudyArm> arms, BackendRegistry registry, string outDirectory, IProgress<RunProgress>? progress = null, int? atOnce = null)
    {
        ArgumentNullException.ThrowIfNull(arms);
        var list = arms.ToList();
        int parallel = Math.Clamp(atOnce ?? ArmsAtOnce(list, registry), 1, Math.Max(1, list.Count));
        var shown = progress is null ? null : new StudyProgress(progress, list.Select(a => a.Label).ToList());
        var results = new ArmResult?[list.Count];
        var errors = new ExceptionDispatchInfo?[list.Count];
        int next = -1;
        void Worker()
        {
            for (int i = Interlocked.Increment(ref next); i < list.Count; i = Interlocked.Increment(ref next))
            {
                try
                {
                    results[i] = RunArm(list[i], registry, PathNames.ScenarioDirectory(outDirectory, list[i].Spec.Name), shown?.Of(i));
                }
                catch (Exception e)
                {
                    errors[i] = ExceptionDispatchInfo.Capture(e);
                }
                finally
                {
                    shown?.Done(i);
                }
            }
        }
        // Dedicated threads, not pool threads: the pool stays free for the matrix products' own Parallel.For.
        var threads = Enumerable.Range(1, parallel - 1).Select(_ => new Thread(Worker) { IsBackground = true }).ToList();
        threads.ForEach(t => t.Start());
        Worker();
        threads.ForEach(t => t.Join());
        errors.FirstOrDefault(e => e is not null)?.Throw();
        return results.Select(r => r!).ToList();
    }

    /// <summary>
    /// How many of <paramref name="arms"/> may run at once: one per core when every backend of every arm allows concurrent
    /// sessions (<see cref="BackendCapabilities.ConcurrentSessions"/>), else 1 (one after another).
    /// </summary>
    public static int ArmsAtOnce(IReadOnlyList<StudyArm> arms, BackendRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(arms);
        ArgumentNullException.ThrowIfNull(registry);
        if (arms.Count < 2 || Environment.ProcessorCount < 2) return 1;
        foreach (var (item, dtype) in arms.SelectMany(a => a.Backends.Select(b => (b, a.Spec.DType))).Distinct())
        {
            try
            {
                var (name, _, _) = StandardBackends.Resolve(registry, item, dtype);
                if (!registry.Create(name).RunsBesideOthers()) return 1;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return 1; // a backend that cannot even describe itself fails in its own arm, one arm at a time
            }
        }
        return Math.Min(arms.Count, Environment.ProcessorCount);
    }

    /// <summary>Runs one arm into <paramref name="directory"/>.</summary>
    public static ArmResult RunArm(StudyArm arm, BackendRegistry registry, string directory, IProgress<RunProgress>? progress = null)
    {
        if (arm.Backends.Count == 0) throw new UsageException($"study arm '{arm.Label}': give at least one backend");
        var clock = Stopwatch.StartNew();
        var (_, display, _) = StandardBackends.Resolve(registry, arm.Backends[0], arm.Spec.DType);
        string traceDirectory = Path.Combine(directory, "traces", RunSession.Sanitize(display));
        var graph = new ModelGraph(arm.Spec.Model);
        // One session per arm: with one backend it only runs and diagnoses it (judged as DiagnoseAs says, when given).
        var report = RunSession.Execute(new RunRequest(arm.Spec, arm.SpecPath, arm.Backends.Skip(1).ToList(), arm.Backends[0], directory)
        {
            ReferenceAlone = arm.Backends.Count == 1,
            DiagnoseAs = arm.DiagnoseAs,
        }, registry, progress);
        var reference = report.Backends.FirstOrDefault(b => b.Name == display);
        var status = reference?.Status ?? RunStatus.Failed;
        string? message = reference?.Message;
        int steps = reference?.StepsCompleted ?? 0;
        string verdict = arm.Backends.Count > 1 ? report.Verdict.Name() : "";
        var findings = report.Findings;
        IReadOnlyDictionary<string, double> seconds = report.Backends.Where(b => !b.Auxiliary).ToDictionary(b => b.Name, b => b.Seconds);
        var curves = ReadCurves(traceDirectory, graph);
        return new ArmResult(arm.Label, arm.Spec.Name, arm.SpecPath, arm.Backends, status.Name(), message, steps, clock.Elapsed.TotalSeconds, seconds,
            verdict.Length == 0 ? null : verdict, directory, curves.EvalAccuracy, curves.EvalLoss, curves.TrainAccuracy, curves.TrainLoss,
            curves.RunningStatistics, findings);
    }

    private sealed record Curves(Curve EvalAccuracy, Curve EvalLoss, Curve TrainAccuracy, Curve TrainLoss, IReadOnlyList<RunningStatisticsCheck> RunningStatistics);

    // One pass over the trace: scalars at every eval, the running-statistics check at every traced step (the last one kept).
    private static Curves ReadCurves(string traceDirectory, ModelGraph graph)
    {
        var evalSteps = new List<int>();
        var evalAccuracy = new List<double>();
        var evalLoss = new List<double>();
        var trainAccuracy = new List<double>();
        var trainLoss = new List<double>();
        double lastTrainAccuracy = double.NaN, lastTrainLoss = double.NaN;
        IReadOnlyList<RunningStatisticsCheck> checks = [];
        if (!File.Exists(Path.Combine(traceDirectory, "records.jsonl"))) return new Curves(new([], []), new([], []), new([], []), new([], []), checks);
        foreach (var r in TraceReader.Open(traceDirectory).Records())
        {
            if (r.Phase == RecordPhase.Train)
            {
                lastTrainAccuracy = r.Find(TensorKind.TrainAccuracy)?.Data[0] ?? double.NaN;
                lastTrainLoss = r.Find(TensorKind.Loss)?.Data[0] ?? double.NaN;
                if (RunningStatisticsAt(r, graph) is { Count: > 0 } found) checks = found;
            }
            else if (r.Phase == RecordPhase.Eval && r.Find(TensorKind.EvalAccuracy) is { } accuracy)
            {
                evalSteps.Add(r.Step);
                evalAccuracy.Add(accuracy.Data[0]);
                evalLoss.Add(r.Find(TensorKind.EvalLoss)?.Data[0] ?? double.NaN);
                trainAccuracy.Add(lastTrainAccuracy);
                trainLoss.Add(lastTrainLoss);
            }
        }
        return new Curves(new(evalSteps, evalAccuracy), new(evalSteps, evalLoss), new(evalSteps, trainAccuracy), new(evalSteps, trainLoss), checks);
    }

    /// <summary>
    /// Every batchnorm instance's running mean and variance against each of its call sites' batch statistics in
    /// <paramref name="record"/> (and against their average for a shared instance); empty when the record holds none.
    /// </summary>
    public static IReadOnlyList<RunningStatisticsCheck> RunningStatisticsAt(StepRecord record, ModelGraph graph)
    {
        var checks = new List<RunningStatisticsCheck>();
        foreach (var bn in graph.BatchNorms)
        {
            if (record.Find(TensorKind.RunningMean, bn.Name) is not { } mean || record.Find(TensorKind.RunningVariance, bn.Name) is not { } variance) continue;
            var calls = BatchNormTrace.CallsOf(graph, bn.Name);
            var stats = calls.Select(c => (Call: c.Id, Stats: BatchNormTrace.BatchStatistics(record, graph, c))).ToList();
            if (stats.Any(s => s.Stats is null)) continue;
            foreach (var (call, s) in stats) checks.Add(Check(bn.Name, call, record.Step, mean.Data, variance.Data, s!.Value.Mean, s.Value.Variance));
            if (stats.Count > 1)
            {
                double[] Average(Func<(double[] Mean, double[] Variance), double[]> pick) =>
                    Enumerable.Range(0, mean.Length).Select(i => stats.Average(s => pick(s.Stats!.Value)[i])).ToArray();
                checks.Add(Check(bn.Name, "mean of sites", record.Step, mean.Data, variance.Data, Average(s => s.Mean), Average(s => s.Variance)));
            }
        }
        return checks;
    }

    private static RunningStatisticsCheck Check(string instance, string call, int step, double[] runMean, double[] runVariance, double[] batchMean, double[] batchVariance) =>
        new(instance, call, step, MeanAbsoluteDistance(runMean, batchMean), MeanAbsoluteDistance(runVariance, batchVariance),
            runMean.Take(HeadFeatures).ToArray(), batchMean.Take(HeadFeatures).ToArray());

    private static double MeanAbsoluteDistance(double[] a, double[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += Math.Abs(a[i] - b[i]);
        return a.Length == 0 ? 0 : sum / a.Length;
    }
}
