using Parity.Backends;
using Parity.Comparison;
using Parity.Diagnostics;
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
    /// <summary>Runs the request and writes every report file into its out directory; returns the report.</summary>
    public static RunReport Execute(RunRequest request, BackendRegistry registry, IProgress<RunProgress>? progress = null)
    {
        var started = DateTimeOffset.UtcNow;
        var plan = Planner.Build(request.Spec, request.Steps);
        var selections = Select(request, registry, plan);
        using var directoryLock = RunManifest.Lock(request);

        var runs = new List<(BackendRun Run, string DType, bool Auxiliary)>();
        foreach (var s in selections)
        {
            var options = new BackendOptions(s.DType, request.Device, request.Timeout);
            var run = ScenarioRunner.Run(plan, s.Create(), options, Path.Combine(request.OutDirectory, "traces", Sanitize(s.Display)), progress, s.Display);
            runs.Add((run, s.DType.Name(), s.Auxiliary));
        }

        var policy = CreatePolicy(plan.Spec.Tolerances, request.Tolerances);
        var byName = runs.ToDictionary(r => r.Run.Backend, r => r.Run);
        var reference = byName[request.Reference];
        bool float64Reference = selections[0].DType == DType.Float64;
        List<TraceReader> EnvelopesOf(BackendRun run) => !float64Reference ? [] : NoiseEnvelope.EnvelopesOf(run.Backend)
            .Select(name => byName.GetValueOrDefault(name)).OfType<BackendRun>().Where(e => e.Status == RunStatus.Completed)
            .Select(e => TraceReader.Open(e.TraceDirectory)).ToList();

        var comparisons = runs.Where(r => !r.Auxiliary && r.Run.Backend != request.Reference)
            .Select(r => TraceComparer.Compare(TraceReader.Open(reference.TraceDirectory), TraceReader.Open(r.Run.TraceDirectory), TraceLayout.Of(plan), policy,
                EnvelopesOf(r.Run), r.Run.Mismatches))
            .ToList();
        var completed = runs.Where(r => !r.Auxiliary && r.Run.Status == RunStatus.Completed).Select(r => r.Run).ToList();
        var float32Reference = byName.GetValueOrDefault(NoiseEnvelope.Float32Reference);
        var matrix = PairwiseReport(completed, plan, policy,
            float32Reference is { Status: RunStatus.Completed } ? TraceReader.Open(float32Reference.TraceDirectory) : null);
        var report = ReportBuilder.Build(plan, request.SpecPath, request.Reference, runs, comparisons, matrix, policy.Describe(), started, request.OutDirectory);
        report = report with { Findings = RunDiagnosis.Findings(plan.Spec, plan.Graph, request.Reference, runs.Where(r => !r.Auxiliary).Select(r => r.Run.TraceDirectory), comparisons) };
        if (request.Backends.Contains(OnnxArbitration.BackendName))
            report = WithArbitration(report, OnnxArbitration.Check(plan, runs.Where(r => !r.Auxiliary).Select(r => r.Run), policy, request.Device));
        foreach (var exporter in ReportExporters.All) exporter.Export(report, request.OutDirectory);
        return report;
    }

    // An arbiter divergence is a divergence of the run; an arbiter that could not judge is an error.
    private static RunReport WithArbitration(RunReport report, IReadOnlyList<ArbiterReport> arbitration)
    {
        int exit = Math.Max(report.ExitCode, arbitration.Any(a => a.Verdict == "error") ? 2 : arbitration.Any(a => a.Verdict == "diverge") ? 1 : 0);
        return report with { Arbitration = arbitration, ExitCode = exit, Verdict = exit switch { 0 => "agree", 1 => "diverge", _ => "error" } };
    }

    private sealed record Selection(string Display, DType DType, bool Auxiliary, Func<IBackend> Create);

    /// <summary>
    /// Resolves the selection: the reference first, then the requested backends, then, when float32 backends are
    /// judged against a float64 reference, their noise envelopes (<see cref="NoiseEnvelope"/>) as auxiliary runs
    /// unless they were requested.
    /// </summary>
    private static List<Selection> Select(RunRequest request, BackendRegistry registry, Plan plan)
    {
        var chosen = new List<Selection>();
        void Add(string item)
        {
            (string name, string display, DType dtype) = StandardBackends.Resolve(registry, item, plan.Spec.DType);
            if (chosen.All(c => c.Display != display)) chosen.Add(new Selection(display, dtype, false, () => registry.Create(name)));
        }
        Add(request.Reference);
        foreach (string b in request.Backends.Where(b => b != OnnxArbitration.BackendName)) Add(b);
        if (chosen.Count < 2) throw new UsageException($"nothing to compare: give at least one backend besides the reference '{request.Reference}'");
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

    private static List<PairReport> PairwiseReport(List<BackendRun> completed, Plan plan, TolerancePolicy policy, TraceReader? envelope)
    {
        var matrix = PairwiseMatrix.Compare(completed.Select(r => TraceReader.Open(r.TraceDirectory)).ToList(), TraceLayout.Of(plan), policy, envelope);
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

    /// <summary>A backend display name as a directory name.</summary>
    public static string Sanitize(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
}
