using System.Text.Json;
using System.Text.Json.Nodes;
using Parity.Backends;
using Parity.Comparison;
using Parity.Diagnostics;
using Parity.Planning;
using Parity.Reporting;
using Parity.Running;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Harness;

/// <summary>One backend run on the original spec and on the identity variant, compared with itself.</summary>
/// <param name="Backend">Backend selection as given (NAME or NAME@dtype).</param>
/// <param name="Status">Completed, failed or unavailable (the worse of the two runs).</param>
/// <param name="Message">Why a run failed, or null.</param>
/// <param name="Verdict">Agree, diverge or error: the variant's shared tensors against the original's, under the tolerance policy.</param>
/// <param name="Identical">True when every shared tensor of every record is bit-for-bit equal.</param>
/// <param name="MaxAbsDifference">Largest absolute difference over every shared tensor of every record.</param>
/// <param name="FirstDifference">The first shared tensor (step, phase, kind:site) that is not bit-for-bit equal, or null.</param>
/// <param name="IdentityMaxAbs">Largest |output - input| of the inserted identity calls (forward, eval and gradient); 0 when they are exact.</param>
/// <param name="FirstDivergence">Where the comparison first fails under the tolerance policy, or null.</param>
/// <param name="Findings">Diagnosed causes: initial-weights-mismatch for a step-0 difference, otherwise what the detectors find.</param>
/// <param name="Conclusion">One sentence: what inserting identities does in this backend.</param>
public sealed record MetamorphicBackendReport(string Backend, RunStatus Status, string? Message, Verdict Verdict, bool Identical, double MaxAbsDifference,
    string? FirstDifference, double IdentityMaxAbs, DivergenceReport? FirstDivergence, IReadOnlyList<FindingReport> Findings, string Conclusion);

/// <summary>metamorphic.json: the identity-insertion experiment over several backends.</summary>
public sealed record MetamorphicReport
{
    /// <summary>Always <c>parity-metamorphic</c>.</summary>
    public string Format { get; init; } = "parity-metamorphic";

    /// <summary>Schema version.</summary>
    public int Version { get; init; } = 1;

    /// <summary>Scenario name.</summary>
    public required string Scenario { get; init; }

    /// <summary>Spec path as given.</summary>
    public string? SpecPath { get; init; }

    /// <summary><c>injected</c> or <c>framework</c>.</summary>
    public required string InitMode { get; init; }

    /// <summary>Ids of the identity calls inserted, each after the linear call it names.</summary>
    public required IReadOnlyList<string> InsertedCalls { get; init; }

    /// <summary>Training steps run.</summary>
    public int Steps { get; init; }

    /// <summary>One entry per backend.</summary>
    public required IReadOnlyList<MetamorphicBackendReport> Backends { get; init; }

    /// <summary>0 when every backend is unchanged by the identities, 1 when one changes, 2 when a run failed.</summary>
    public int ExitCode { get; init; }
}

/// <summary>
/// Metamorphic identity insertion (seed 002, docs/seeds.md): the spec's model with an <c>identity</c> call after every linear
/// call must train exactly like the model without. Each backend runs both and is compared with ITSELF on the call
/// sites they share; the inserted identities' outputs must equal their inputs. A difference at step 0 means the
/// initial weights changed: with <c>init: framework</c> the extra layer shifted the framework's RNG stream
/// (<c>initial-weights-mismatch</c>, docs/conventions.md section 5); a difference that starts later is a defect of the
/// framework (or backend) in how it runs an identity.
/// </summary>
public static class Metamorphic
{
    /// <summary>Suffix of the inserted identity instances (and call ids).</summary>
    public const string IdentitySuffix = "_identity";

    /// <summary>The spec with a new identity instance called after every linear call, rewritten through the canonical JSON.</summary>
    public static ScenarioSpec WithIdentities(ScenarioSpec spec)
    {
        var root = JsonNode.Parse(SpecWriter.Write(spec))!.AsObject();
        var model = root["model"]!.AsObject();
        var layers = model["layers"]!.AsArray();
        var taken = spec.Model.Layers.Select(l => l.Name).Concat(spec.Model.Calls.Select(c => c.Id)).ToHashSet(StringComparer.Ordinal);
        var calls = new JsonArray();
        foreach (var call in spec.Model.Calls)
        {
            calls.Add(new JsonObject { ["id"] = call.Id, ["layer"] = call.Layer });
            if (spec.Model.Layer(call.Layer) is not LinearSpec) continue;
            string name = Unique(call.Id.Replace('#', '_') + IdentitySuffix, taken);
            layers.Add(new JsonObject { ["name"] = name, ["type"] = "identity" });
            calls.Add(new JsonObject { ["id"] = name, ["layer"] = name });
        }
        model["calls"] = calls;
        root["name"] = spec.Name + "+identity";
        var variant = SpecLoader.Parse(root.ToJsonString(), spec.BaseDirectory);
        return variant;
    }

    /// <summary>Runs the original and the variant in each backend, compares each backend with itself, writes metamorphic.json.</summary>
    /// <param name="spec">The original spec.</param>
    /// <param name="specPath">Where it was read from, for the report.</param>
    /// <param name="backends">Backend selections (NAME or NAME@dtype).</param>
    /// <param name="registry">Where backends come from.</param>
    /// <param name="outDirectory">Traces go to <c>traces/BACKEND/{original,identity}</c>, the report to <c>metamorphic.json</c>.</param>
    /// <param name="steps">Steps instead of the spec's schedule.</param>
    /// <param name="device">cpu or cuda for backends that have a choice.</param>
    /// <param name="timeout">Per-request limit for worker backends.</param>
    /// <param name="progress">Step progress, or null.</param>
    public static MetamorphicReport Execute(ScenarioSpec spec, string? specPath, IReadOnlyList<string> backends, BackendRegistry registry, string outDirectory,
        int? steps = null, string? device = null, TimeSpan? timeout = null, IProgress<RunProgress>? progress = null)
    {
        if (backends.Count == 0) throw new UsageException("--backends: give at least one backend");
        var variantSpec = WithIdentities(spec);
        var results = new List<MetamorphicBackendReport>();
        IReadOnlyList<string> inserted = [];
        int totalSteps = 0;
        foreach (string item in backends)
        {
            // Each backend alone, twice: the original spec and the identity variant, each a session of one run.
            RunSession Run(ScenarioSpec which, string leaf)
            {
                var session = RunSession.Start(new RunRequest(which, specPath, [], item, outDirectory, steps, device, timeout)
                {
                    ReferenceAlone = true,
                    TraceDirectoryFor = display => Path.Combine(outDirectory, "traces", RunSession.Sanitize(display), leaf),
                });
                session.RunBackends(registry, progress);
                return session;
            }
            var original = Run(spec, "original");
            var variant = Run(variantSpec, "identity");
            inserted = variant.Plan.Graph.Calls.Where(c => c.Layer is IdentitySpec && spec.Model.Calls.All(o => o.Id != c.Id)).Select(c => c.Id).ToList();
            totalSteps = original.Plan.TotalSteps;
            results.Add(Judge(original, original.Runs[0], variant.Runs[0], Path.Combine(outDirectory, "traces", RunSession.Sanitize(original.Runs[0].Display), "identity-shared")));
        }
        var verdict = Verdicts.Combine(results.Select(r => r.Status != RunStatus.Completed ? Verdict.Error : r.Identical ? Verdict.Agree : r.Verdict));
        var report = new MetamorphicReport
        {
            Scenario = spec.Name,
            SpecPath = specPath,
            InitMode = spec.Init.Mode == InitMode.Framework ? "framework" : "injected",
            InsertedCalls = inserted,
            Steps = totalSteps,
            Backends = results,
            ExitCode = ExitCodes.Of(verdict),
        };
        Directory.CreateDirectory(outDirectory);
        IO.AtomicFile.WriteText(Path.Combine(outDirectory, "metamorphic.json"), JsonSerializer.Serialize(report, ReportWriter.Json));
        return report;
    }

    private static MetamorphicBackendReport Judge(RunSession session, SessionRun original, SessionRun variant, string sharedDirectory)
    {
        var plan = session.Plan;
        string backend = original.Display;
        var status = (RunStatus)Math.Max((int)original.Run.Status, (int)variant.Run.Status);
        string? message = original.Run.Message ?? variant.Run.Message;
        if (status == RunStatus.Unavailable)
            return new MetamorphicBackendReport(backend, status, message, Verdict.Error, false, double.NaN, null, double.NaN, null, [], $"not run: {message}");

        string sharedName = backend + "+identity";
        var projection = Project(plan, TraceReader.Open(original.Run.TraceDirectory), TraceReader.Open(variant.Run.TraceDirectory), sharedDirectory, sharedName);
        var originalTrace = TraceReader.Open(original.Run.TraceDirectory);
        var sharedTrace = TraceReader.Open(sharedDirectory);
        var comparison = TraceComparer.Compare(originalTrace, sharedTrace, session.Layout, session.Policy, envelope: null, declared: []);
        var diagnosis = Diagnoser.Run(new DiagnosisContext(plan.Spec, plan.Graph, backend,
            [new BackendTrace(backend, originalTrace, original.Run.Mismatches), new BackendTrace(sharedName, sharedTrace, variant.Run.Mismatches)],
            [new BackendJudgement(sharedName, null, comparison, "compared with its own run of the original spec")]));
        // Only what tells the two runs apart: properties of the model (a shared batchnorm) show in both and say nothing here.
        var findings = diagnosis.Findings.Where(f => f.Backend == sharedName).Select(ReportBuilder.ToReport).ToList();
        var first = comparison.FirstDivergence is not null ? ReportBuilder.ToReport(comparison, plan).FirstDivergence : null;
        string conclusion =
            status != RunStatus.Completed ? $"a run failed: {message}"
            : projection.Identical ? "inserting identities changes nothing: every shared tensor is bit-for-bit equal"
            : projection.FirstDifferenceStep == 0
                ? plan.Spec.Init.Mode == InitMode.Framework
                    ? "the initial weights differ: the extra layers shift the framework's seeded initializer stream (RNG-stream shift, the seed 002 mechanism)"
                    : "the initial weights differ although they were injected: the backend does not load the injected state independently of the model's layers"
            : comparison.Verdict == Verdict.Agree
                ? $"within rounding: the variant differs by at most {projection.MaxAbs:g3} (identity calls change the order or fusion of float operations), under the tolerance policy"
                : $"the identity changes training from step {projection.FirstDifferenceStep} on with identical initial weights: a defect in how the framework runs an identity";
        return new MetamorphicBackendReport(backend, status, message, comparison.Verdict, projection.Identical, projection.MaxAbs, projection.FirstDifference,
            projection.IdentityMaxAbs, first, findings, conclusion);
    }

    private sealed record Projection(bool Identical, double MaxAbs, string? FirstDifference, int? FirstDifferenceStep, double IdentityMaxAbs);

    /// <summary>
    /// Writes the variant's records restricted to the original's keys (a trace the comparer reads like any other),
    /// measures the exact differences record by record, and checks every inserted identity's output against its input.
    /// </summary>
    private static Projection Project(Plan plan, TraceReader original, TraceReader variant, string directory, string backend)
    {
        var header = variant.Header with { Scenario = plan.Spec.Name, SpecHash = SpecLoader.Hash(plan.Spec), Backend = backend, Status = RunStatus.Running };
        double maxAbs = 0, identityMaxAbs = 0;
        string? first = null;
        int? firstStep = null;
        using (var writer = TraceWriter.Create(directory, header))
        {
            using var originals = original.Records().GetEnumerator();
            foreach (var record in variant.Records())
            {
                var projected = new StepRecord(record.Step, record.Phase);
                StepRecord? counterpart = originals.MoveNext() ? originals.Current : null;
                if (counterpart is not null && (counterpart.Step != record.Step || counterpart.Phase != record.Phase)) counterpart = null;
                TraceEntry? previous = null;
                foreach (var e in record.Entries)
                {
                    bool isIdentity = e.Key.Site.EndsWith(IdentitySuffix, StringComparison.Ordinal) && plan.Graph.Calls.All(c => c.Id != e.Key.Site);
                    if (isIdentity)
                    {
                        // The identity's input is the preceding call's tensor of the same kind, recorded just before it.
                        var input = record.Find(e.Key.Kind, LinearCallOf(plan, e.Key.Site)) ?? previous?.Value;
                        if (input is not null && input.Length == e.Value.Length)
                            for (int i = 0; i < input.Length; i++) identityMaxAbs = Math.Max(identityMaxAbs, Math.Abs(input.Data[i] - e.Value.Data[i]));
                        continue;
                    }
                    projected.Add(e.Key.Kind, e.Key.Site, e.Value);
                    previous = e;
                    if (counterpart?.Find(e.Key.Kind, e.Key.Site) is { } o && o.Length == e.Value.Length)
                    {
                        double d = 0;
                        for (int i = 0; i < o.Length; i++) d = Math.Max(d, double.IsNaN(o.Data[i]) && double.IsNaN(e.Value.Data[i]) ? 0 : Math.Abs(o.Data[i] - e.Value.Data[i]));
                        if (d > 0 || double.IsNaN(d))
                        {
                            first ??= $"{e.Key}@{record.Phase.ToString().ToLowerInvariant()}{record.Step}";
                            firstStep ??= record.Step;
                        }
                        maxAbs = Math.Max(maxAbs, double.IsNaN(d) ? double.PositiveInfinity : d);
                    }
                }
                writer.Write(projected);
            }
            writer.UpdateHeader(h => h with { Status = variant.Header.Status, Message = variant.Header.Message, StepsCompleted = variant.Header.StepsCompleted });
        }
        return new Projection(first is null, maxAbs, first, firstStep, identityMaxAbs);
    }

    /// <summary>The linear call an inserted identity follows: the call id before the suffix (ids with '#' were written with '_').</summary>
    private static string LinearCallOf(Plan plan, string identityId)
    {
        string stem = identityId[..^IdentitySuffix.Length];
        return plan.Graph.Calls.FirstOrDefault(c => c.Id.Replace('#', '_') == stem)?.Id ?? stem;
    }

    private static string Unique(string name, HashSet<string> taken)
    {
        string candidate = name;
        for (int k = 2; !taken.Add(candidate); k++) candidate = $"{name}{k}";
        return candidate;
    }
}
