using Parity.Backends;
using Parity.Comparison;
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
/// <param name="Backends">Backend selections (NAME or NAME@dtype).</param>
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
    ToleranceOverrides? Tolerances = null);

/// <summary>
/// spec -> plan -> every backend's trace -> comparisons -> report files. Backends run one after another,
/// each into its own trace directory; a backend that fails is a result, and the others still run.
/// </summary>
public static class RunPipeline
{
    /// <summary>The float32 reference used as the noise envelope of float32 backends.</summary>
    public const string EnvelopeBackend = Backends.Reference.ReferenceBackend.Float32Name;

    /// <summary>Runs the request and writes every report file into its out directory; returns the report.</summary>
    public static RunReport Execute(RunRequest request, BackendRegistry registry, IProgress<RunProgress>? progress = null)
    {
        var started = DateTimeOffset.UtcNow;
        var plan = Planner.Build(request.Spec, request.Steps);
        var selections = Select(request, registry, plan);
        Directory.CreateDirectory(request.OutDirectory);

        var runs = new List<(BackendRun Run, string DType, bool Auxiliary)>();
        foreach (var (name, display, dtype, auxiliary) in selections)
        {
            var options = new BackendOptions(dtype, request.Device, request.Timeout);
            var run = ScenarioRunner.Run(plan, registry.Create(name), options, Path.Combine(request.OutDirectory, "traces", Sanitize(display)), progress, display);
            runs.Add((run, dtype.Name(), auxiliary));
        }

        var policy = CreatePolicy(plan.Spec.Tolerances, request.Tolerances);
        var byName = runs.ToDictionary(r => r.Run.Backend);
        var reference = byName[request.Reference].Run;
        TraceReaderOrNull(byName.GetValueOrDefault(EnvelopeBackend).Run, out var envelope);
        var comparisons = new List<ComparisonResult>();
        foreach (var (run, _, auxiliary) in runs)
        {
            if (auxiliary || run.Backend == request.Reference) continue;
            comparisons.Add(Compare(reference, run, plan, policy, run.Backend == EnvelopeBackend ? null : envelope));
        }
        var completed = runs.Where(r => r.Run.Status == RunStatus.Completed).Select(r => r.Run).ToList();
        var matrix = PairwiseReport(completed, plan, policy, envelope);
        var report = ReportBuilder.Build(plan, request.SpecPath, request.Reference, runs, comparisons, matrix, policy.Describe(), started, request.OutDirectory);
        foreach (var exporter in ReportExporters.All) exporter.Export(report, request.OutDirectory);
        return report;
    }

    /// <summary>
    /// Resolves the selection: the reference always runs (first), and when a float32 backend is judged against a
    /// float64 reference, reference-f32 runs too as the noise envelope (auxiliary when not asked for).
    /// </summary>
    private static List<(string Name, string Display, DType DType, bool Auxiliary)> Select(RunRequest request, BackendRegistry registry, Plan plan)
    {
        var chosen = new List<(string, string, DType, bool)>();
        var seen = new HashSet<string>();
        void Add(string item, bool auxiliary)
        {
            (string name, string display, DType dtype) = BackendCatalog.Resolve(registry, item, plan.Spec.DType);
            if (seen.Add(display)) chosen.Add((name, display, dtype, auxiliary));
        }
        Add(request.Reference, false);
        foreach (string b in request.Backends) Add(b, false);
        bool needsEnvelope = chosen.Any(c => c.Item3 == DType.Float32) && BackendCatalog.Resolve(registry, request.Reference, plan.Spec.DType).DType == DType.Float64;
        if (needsEnvelope && registry.Contains(EnvelopeBackend)) Add(EnvelopeBackend, true);
        if (chosen.Count < 2) throw new UsageException($"nothing to compare: give at least one backend besides the reference '{request.Reference}'");
        return chosen;
    }

    private static ComparisonResult Compare(BackendRun reference, BackendRun actual, Plan plan, TolerancePolicy policy, TraceReader? envelope)
    {
        var expected = TraceReader.Open(reference.TraceDirectory);
        var trace = TraceReader.Open(actual.TraceDirectory);
        return TraceComparer.Compare(expected, trace, plan.Graph, policy, envelope, actual.Mismatches);
    }

    private static List<PairReport> PairwiseReport(List<BackendRun> completed, Plan plan, TolerancePolicy policy, TraceReader? envelope)
    {
        var matrix = PairwiseMatrix.Compare(completed.Select(r => TraceReader.Open(r.TraceDirectory)).ToList(), plan.Graph, policy, envelope);
        return matrix.Cells.Select(c => new PairReport(c.Expected, c.Actual, ReportBuilder.VerdictName(c.Verdict), c.Step, c.Key?.ToString())).ToList();
    }

    private static TolerancePolicy CreatePolicy(ToleranceOverrides? spec, ToleranceOverrides? cli)
    {
        try
        {
            return TolerancePolicy.Create(spec, cli);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }

    private static void TraceReaderOrNull(BackendRun? run, out TraceReader? reader)
    {
        reader = run is { Status: RunStatus.Completed } ? TraceReader.Open(run.TraceDirectory) : null;
    }

    /// <summary>A backend display name as a directory name.</summary>
    public static string Sanitize(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
}
