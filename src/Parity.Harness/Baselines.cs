using System.Text.Json;
using Parity.Backends;
using Parity.Comparison;
using Parity.IO;
using Parity.Models;
using Parity.Reporting;
using Parity.Running;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Harness;

/// <summary>
/// <c>baseline.json</c> of an approved baseline: what was approved, from which run, under which spec and versions.
/// </summary>
/// <param name="Format">Always <c>parity-baseline</c>.</param>
/// <param name="Version">Format version.</param>
/// <param name="Scenario">Scenario name.</param>
/// <param name="SpecHash">Hash of the canonical spec the trace was produced under.</param>
/// <param name="Backend">Backend name as selected in the run.</param>
/// <param name="DType">Dtype the backend trained in.</param>
/// <param name="Steps">Training steps in the trace; <c>verify</c> runs this many.</param>
/// <param name="VersionKey">The framework-version key (the baseline's folder name).</param>
/// <param name="Runtime">Framework and library versions from the trace header.</param>
/// <param name="ApprovedUtc">When it was approved.</param>
/// <param name="SourceRun">The run directory it was approved from.</param>
public sealed record BaselineInfo(string Format, int Version, string Scenario, string SpecHash, string Backend, string DType, int Steps,
    string VersionKey, IReadOnlyDictionary<string, string> Runtime, DateTimeOffset ApprovedUtc, string SourceRun);

/// <summary>One baseline written by <see cref="Baselines.Approve"/>.</summary>
/// <param name="Backend">Backend name.</param>
/// <param name="Directory">Where it now lives.</param>
/// <param name="Replaced">True when an existing baseline of the same version key was overwritten (<c>--force</c>).</param>
/// <param name="Change">What changed against the previous baseline of this backend (same or other version), or null when there was none.</param>
public sealed record ApprovedBaseline(string Backend, string Directory, bool Replaced, string? Change);

/// <summary>The outcome of checking one backend against its baseline in <see cref="Baselines.Verify"/>.</summary>
/// <param name="Backend">Backend name.</param>
/// <param name="Verdict">Agree, diverge (with the origin in <paramref name="Message"/>), or error: no baseline, a damaged one, or the run failed.</param>
/// <param name="Message">One paragraph for people: the verdict, the origin, or why nothing could be compared.</param>
/// <param name="Baseline">The baseline directory compared with, or null.</param>
/// <param name="Comparison">The comparison in report form, or null when none ran.</param>
public sealed record BaselineCheck(string Backend, Verdict Verdict, string Message, string? Baseline, ComparisonReport? Comparison);

/// <summary>Everything <see cref="Baselines.Verify"/> found.</summary>
/// <param name="Checks">One check per backend.</param>
/// <param name="RunDirectory">Where the fresh run's traces and reports are.</param>
public sealed record VerifyResult(IReadOnlyList<BaselineCheck> Checks, string RunDirectory)
{
    /// <summary>The verdict of every check together; an error when nothing was checked.</summary>
    public Verdict Verdict => Checks.Count == 0 ? Verdict.Error : Verdicts.Combine(Checks.Select(c => c.Verdict));
}

/// <summary>
/// Approved traces for CI regression runs (docs/report.md, "Baselines"): <c>approve</c> stores each backend's
/// trace of a run under <c>reference-models/&lt;scenario&gt;/&lt;backend&gt;/&lt;framework-version-key&gt;/</c>, written
/// into a temporary folder and renamed into place, never overwriting unasked; <c>verify</c> runs the spec again and
/// compares each backend's new trace with its baseline under the spec's tolerance policy. Traces are stored as
/// produced: float32 backends already write float32, so a baseline is as compact as its trace.
/// </summary>
public static class Baselines
{
    /// <summary>The baseline metadata file inside a baseline folder.</summary>
    public const string InfoFile = "baseline.json";

    private static readonly string[] TraceFiles = ["trace.json", "records.jsonl", "tensors.bin"];

    // Entries of a trace header's runtime that describe the machine, not the framework's numerics: kept out of the key
    // so the same versions on a 2-core CI box and a 16-core workstation share one baseline.
    private static readonly HashSet<string> MachineEntries = new(StringComparer.OrdinalIgnoreCase) { "threads", "simd", "host", "cores" };

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>
    /// The framework-version key of a trace: its dtype and every version entry of its runtime (device included, machine
    /// details such as thread counts left out), as a folder name, e.g. <c>float32_.net-10.0.0_device-cpu_parity-reference-1.0.0</c>.
    /// </summary>
    public static string VersionKey(string dtype, IReadOnlyDictionary<string, string> runtime)
    {
        ArgumentNullException.ThrowIfNull(dtype);
        ArgumentNullException.ThrowIfNull(runtime);
        var parts = new List<string> { Slug(dtype) };
        parts.AddRange(runtime.Where(kv => !MachineEntries.Contains(kv.Key)).OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => Slug($"{kv.Key}-{WithoutBuildMetadata(kv.Value)}")));
        // Versions come from backends and workers: the key is made one safe directory name whatever they say.
        string key = PathNames.Segment(string.Join("_", parts.Where(p => p.Length > 0)));
        if (key.Length <= 120) return key;
        string hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)))[..12];
        return key[..107] + "_" + hash;
    }

    /// <summary>The folder of a scenario's baselines.</summary>
    public static string ScenarioDirectory(string root, string scenario) => PathNames.ScenarioDirectory(root, scenario);

    /// <summary>
    /// Approves every completed backend of the run in <paramref name="runDirectory"/> (its report.json names them).
    /// Refuses, writing nothing, when a baseline with the same version key exists and <paramref name="force"/> is false.
    /// </summary>
    public static IReadOnlyList<ApprovedBaseline> Approve(string runDirectory, string root, bool force)
    {
        ArgumentNullException.ThrowIfNull(runDirectory);
        ArgumentNullException.ThrowIfNull(root);
        string reportPath = Path.Combine(runDirectory, "report.json");
        if (!File.Exists(reportPath)) throw new UsageException($"approve: {runDirectory} is not a run directory (no report.json); give the --out directory of a 'parity run'");
        RunReport report;
        try
        {
            report = ReportWriter.ReadJson(reportPath);
        }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        {
            throw new UsageException($"approve: {reportPath} is not a readable report: {e.Message}");
        }

        // The scenario name becomes a folder under the root: a report edited to name ".." must not lead outside it.
        if (PathNames.ScenarioNameProblem(report.Scenario.Name) is { } badName) throw new UsageException($"approve: {reportPath}: $.scenario.name: {badName}");
        var candidates = new List<(BackendReport Backend, TraceReader Trace, string Target)>();
        foreach (var b in report.Backends.Where(b => b.Status == RunStatus.Completed && !b.Auxiliary))
        {
            var trace = OpenOrThrow(Path.Combine(runDirectory, b.Trace), $"approve: backend '{b.Name}'");
            if (BaselineTrace.NotApprovable(trace, b.Name, report.Scenario.SpecHash) is string why) throw new UsageException($"approve: backend '{b.Name}': {why}; nothing was written");
            string key = VersionKey(trace.Header.DType, trace.Header.Runtime);
            candidates.Add((b, trace, Path.Combine(ScenarioDirectory(root, report.Scenario.Name), RunSession.Sanitize(b.Name), key)));
        }
        if (candidates.Count == 0) throw new UsageException($"approve: no backend completed in {runDirectory}; nothing to approve");
        // Held from the existence check to the last rename: two approvals at once cannot both see "no baseline yet".
        using var approving = IO.DirectoryLock.Acquire(root, BaselineTrace.ApproveLock, $"approve {Path.GetFullPath(runDirectory)} (process {Environment.ProcessId})", TimeSpan.FromMinutes(2));
        var existing = candidates.Where(c => Directory.Exists(c.Target)).Select(c => c.Target).ToList();
        if (existing.Count > 0 && !force)
        {
            throw new UsageException($"approve: baseline already approved: {string.Join(", ", existing)}; nothing was written. "
                + "Run 'parity verify' to see how the run differs, or approve with --force to replace it.");
        }

        var graph = GraphOf(report);
        var policy = TolerancePolicy.Create(graph?.Spec.Tolerances);
        var approved = new List<ApprovedBaseline>();
        foreach (var (b, trace, target) in candidates)
        {
            string? previous = Directory.Exists(target) ? target : Latest(Path.GetDirectoryName(target)!, except: null);
            string? change = previous is null ? null : Describe(previous, trace, report.Scenario.SpecHash, graph is { } g ? new TraceLayout(g.Graph, g.Spec.Optimizer) : null, policy);
            var info = new BaselineInfo("parity-baseline", 1, report.Scenario.Name, report.Scenario.SpecHash, b.Name, trace.Header.DType,
                trace.Header.StepsCompleted, Path.GetFileName(target), trace.Header.Runtime, DateTimeOffset.UtcNow, Path.GetFullPath(runDirectory));
            bool replaced = WriteAtomically(trace.Directory, target, info, force);
            approved.Add(new ApprovedBaseline(b.Name, target, replaced, change));
        }
        return approved;
    }

    /// <summary>
    /// Runs <paramref name="spec"/> on the backends that have baselines (or on <paramref name="backends"/>) for as many
    /// steps as the baselines hold, into <paramref name="outDirectory"/>, and compares each new trace with its baseline:
    /// the one approved for the same framework versions, else the most recent one of this backend (a framework upgrade
    /// that changes numerics then fails, with the origin).
    /// </summary>
    public static VerifyResult Verify(ScenarioSpec spec, string? specPath, IReadOnlyList<string>? backends, string root, BackendRegistry registry,
        string outDirectory, IProgress<Running.RunProgress>? progress = null, TraceRetention keepTraces = TraceRetention.All)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(registry);
        string scenarioDir = ScenarioDirectory(root, spec.Name);
        var approvedBackends = Directory.Exists(scenarioDir)
            // Every backend folder, also one emptied since: its baseline is missing, which is an error, not a pass.
            ? Directory.GetDirectories(scenarioDir).Select(d => Path.GetFileName(d)!).Where(d => !d.StartsWith('.')).Order(StringComparer.Ordinal).ToList()
            : [];
        var chosen = backends is { Count: > 0 } ? backends.ToList() : approvedBackends;
        if (chosen.Count == 0)
            throw new UsageException($"verify: no baseline for scenario '{spec.Name}' under {scenarioDir}; run the spec and 'parity approve RUN_DIR' first");

        var checks = new List<BaselineCheck>();
        var withBaseline = new List<(string Backend, string Baseline, BaselineInfo Info)>();
        foreach (string backend in chosen)
        {
            string backendDir = Path.Combine(scenarioDir, RunSession.Sanitize(backend));
            string? latest = Latest(backendDir, except: null);
            if (latest is null)
            {
                checks.Add(new BaselineCheck(backend, Verdict.Error,
                    $"no baseline for backend '{backend}' of scenario '{spec.Name}' (looked in {backendDir}); approve a run of it with 'parity approve RUN_DIR'", null, null));
                continue;
            }
            withBaseline.Add((backend, latest, ReadInfo(latest)));
        }
        if (withBaseline.Count == 0) return new VerifyResult(checks, outDirectory);

        string specHash = SpecLoader.Hash(spec);
        foreach (var stale in withBaseline.Where(w => w.Info.SpecHash != specHash).ToList())
        {
            checks.Add(new BaselineCheck(stale.Backend, Verdict.Error,
                $"the baseline {stale.Baseline} was approved for spec hash {stale.Info.SpecHash}; the spec now hashes to {specHash}. "
                + "The scenario changed: run it and approve the new run (--force to replace).", stale.Baseline, null));
            withBaseline.Remove(stale);
        }
        if (withBaseline.Count == 0) return new VerifyResult(checks, outDirectory);

        // Every baseline of a scenario normally comes from one run; when they do not, the shortest decides the steps.
        int steps = withBaseline.Min(w => w.Info.Steps);
        string reference = Backends.Reference.ReferenceBackend.Float64Name;
        var others = withBaseline.Select(w => w.Backend).Where(b => b != reference).ToList();
        if (others.Count == 0) others.Add(Backends.Reference.ReferenceBackend.Float32Name);
        var request = new RunRequest(spec, specPath, others, reference, outDirectory, steps);
        var session = RunSession.Start(request);
        RunReport report;
        using (RunManifest.Lock(request))
        {
            report = session.Report(session.RunAndJudge(registry, progress), progress);
            foreach (var exporter in ReportExporters.All) exporter.Export(report, outDirectory);
        }

        foreach (var (backend, latest, info) in withBaseline)
        {
            var run = session.Runs.FirstOrDefault(r => r.Display == backend);
            if (run is null || run.Run.Status != RunStatus.Completed)
            {
                checks.Add(new BaselineCheck(backend, Verdict.Error,
                    $"{backend} did not complete: {run?.Run.Message ?? "not run"}", latest, null));
                continue;
            }
            var fresh = TraceReader.Open(run.Run.TraceDirectory);
            string key = VersionKey(fresh.Header.DType, fresh.Header.Runtime);
            string exact = Path.Combine(scenarioDir, RunSession.Sanitize(backend), key);
            string baseline = Directory.Exists(exact) ? exact : latest;
            TraceReader expected;
            try
            {
                expected = BaselineTrace.Open(baseline, baseline == latest ? info : ReadInfo(baseline));
            }
            catch (InvalidDataException e)
            {
                checks.Add(new BaselineCheck(backend, Verdict.Error, $"the baseline is damaged: {e.Message}; approve a good run again with --force", baseline, null));
                continue;
            }
            var result = session.CompareWithBaseline(expected, run) with { Expected = $"{backend} baseline", Actual = backend };
            var comparison = ReportBuilder.ToReport(result, session.Plan);
            string versions = baseline == exact ? "" : $" (versions changed: baseline {Path.GetFileName(baseline)}, now {key})";
            string message = result.Verdict == Verdict.Agree
                ? $"{backend} agrees with its baseline{versions}: {result.TensorsCompared} tensors over {result.StepsCompared} steps"
                : $"{DivergenceText.Headline(comparison, report.Findings)}{versions}\n{DivergenceText.Describe(comparison, report.Findings)}";
            checks.Add(new BaselineCheck(backend, result.Verdict, message, baseline, comparison));
        }
        TraceRetentions.Apply(report, outDirectory, keepTraces, checks.Where(c => c.Verdict != Verdict.Agree).Select(c => c.Backend));
        return new VerifyResult(checks, outDirectory);
    }

    /// <summary>Reads a baseline's <c>baseline.json</c>.</summary>
    public static BaselineInfo ReadInfo(string baselineDirectory)
    {
        string path = Path.Combine(baselineDirectory, InfoFile);
        try
        {
            var info = JsonSerializer.Deserialize<BaselineInfo>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path}: empty");
            if (info.Format != "parity-baseline" || info.Scenario is null || info.SpecHash is null || info.Backend is null || info.DType is null || info.VersionKey is null || info.Runtime is null)
                throw new InvalidDataException("not a parity-baseline with scenario, specHash, backend, dType, versionKey and runtime");
            return info;
        }
        catch (Exception e) when (e is JsonException or IOException or InvalidDataException)
        {
            throw new UsageException($"{path}: not a readable baseline: {e.Message}");
        }
    }

    /// <summary>The most recently approved baseline folder of one backend, or null.</summary>
    private static string? Latest(string backendDirectory, string? except)
    {
        if (!Directory.Exists(backendDirectory)) return null;
        return Directory.GetDirectories(backendDirectory)
            .Where(d => !Path.GetFileName(d).StartsWith('.') && d != except && File.Exists(Path.Combine(d, InfoFile)))
            .OrderByDescending(d => ReadInfo(d).ApprovedUtc)
            .FirstOrDefault();
    }

    /// <summary>What changed from <paramref name="previous"/> to the trace being approved, in one paragraph.</summary>
    private static string Describe(string previous, TraceReader approved, string specHash, TraceLayout? graph, TolerancePolicy policy)
    {
        var info = ReadInfo(previous);
        string against = $"previous baseline {Path.GetFileName(previous)} (approved {info.ApprovedUtc:yyyy-MM-dd HH:mm} UTC)";
        if (info.SpecHash != specHash)
            return $"{against}: the spec changed (hash {info.SpecHash[..Math.Min(12, info.SpecHash.Length)]} before); traces not compared";
        if (graph is null) return $"{against}: not compared (the run's spec file could not be read back)";
        ComparisonResult result;
        try
        {
            result = TraceComparer.Compare(BaselineTrace.Open(previous, info), approved, graph, policy);
        }
        catch (InvalidDataException e)
        {
            return $"{against}: damaged, not compared ({e.Message})";
        }
        if (result.Verdict == Verdict.Agree) return $"{against}: unchanged within tolerance ({result.TensorsCompared} tensors, {result.StepsCompared} steps)";
        var report = ReportBuilder.ToReport(result with { Expected = "previous baseline", Actual = "this run" });
        return $"{against}: {result.Verdict.ToString().ToLowerInvariant()}, "
            + (report.FirstDivergence is { } d ? $"first at step {d.Step}, {DivergenceText.Tensor(d)} ({d.Origin}), max abs {d.Metrics.MaxAbs:G3}, {result.TensorsFailed} tensors differ" : result.Message);
    }

    /// <summary>The model graph of the run's spec, when its file is still there and still hashes as in the report.</summary>
    private static (ModelGraph Graph, ScenarioSpec Spec)? GraphOf(RunReport report)
    {
        if (report.Scenario.SpecPath is not { } path || !File.Exists(path)) return null;
        try
        {
            var spec = SpecLoader.LoadFile(path);
            if (SpecLoader.Hash(spec) != report.Scenario.SpecHash) return null;
            return (new ModelGraph(spec.Model), spec);
        }
        catch (SpecException)
        {
            return null;
        }
    }

    /// <summary>Copies the trace into a hidden temporary folder beside <paramref name="target"/>, then renames it into place.</summary>
    private static bool WriteAtomically(string traceDirectory, string target, BaselineInfo info, bool force)
    {
        string parent = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(parent);
        string id = Guid.NewGuid().ToString("N")[..8];
        string tmp = Path.Combine(parent, $".{Path.GetFileName(target)}.tmp-{id}");
        try
        {
            Directory.CreateDirectory(tmp);
            foreach (string file in TraceFiles)
            {
                string source = Path.Combine(traceDirectory, file);
                if (File.Exists(source)) File.Copy(source, Path.Combine(tmp, file));
            }
            File.WriteAllText(Path.Combine(tmp, InfoFile), JsonSerializer.Serialize(info, Json));
            if (!Directory.Exists(target))
            {
                Directory.Move(tmp, target);
                return false;
            }
            if (!force) throw new UsageException($"approve: baseline already approved: {target}; approve with --force to replace it");
            // Replace: move the old one aside first, so the target is never a half-copied folder.
            string old = Path.Combine(parent, $".{Path.GetFileName(target)}.old-{id}");
            Directory.Move(target, old);
            Directory.Move(tmp, target);
            Directory.Delete(old, recursive: true);
            return true;
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        }
    }

    private static TraceReader OpenOrThrow(string directory, string what)
    {
        try
        {
            return TraceReader.Open(directory);
        }
        catch (InvalidDataException e)
        {
            throw new UsageException($"{what}: {e.Message}");
        }
    }

    // "1.0.0+0b8e96..." carries the commit after '+' (SemVer build metadata): it names a build, not different numerics.
    private static string WithoutBuildMetadata(string version) => version.Split('+')[0];

    private static string Slug(string text)
    {
        var chars = text.Trim().ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' ? c : '-').ToArray();
        return string.Join("-", new string(chars).Split('-', StringSplitOptions.RemoveEmptyEntries));
    }
}
