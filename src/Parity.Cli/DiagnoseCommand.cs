using System.CommandLine;
using System.Globalization;
using Parity.Comparison;
using Parity.Diagnostics;
using Parity.Harness;
using Parity.Models;
using Parity.Reporting;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Cli;

/// <summary>
/// <c>parity diagnose RUN_DIR</c>: re-reads a finished run (report.json, its traces and the spec it names), compares
/// the traces again and prints every detector's findings (docs/causes.md). Exit code 0 without findings, 1 with, 2 on error.
/// </summary>
internal static class DiagnoseCommand
{
    public static Command Create()
    {
        var runDirectory = new Argument<string>("run-dir") { Description = "A run directory written by 'parity run' (holds report.json and traces/)" };
        var spec = new Option<string?>("--spec") { Description = "The spec, when the path in report.json does not resolve from here" };
        var command = new Command("diagnose", "Re-read a finished run and print the diagnosed causes with their evidence") { runDirectory, spec };
        command.SetAction(r => Execute(r.GetValue(runDirectory)!, r.GetValue(spec), Console.Out));
        return command;
    }

    public static int Execute(string runDirectory, string? specOverride, TextWriter w)
    {
        string reportPath = Path.Combine(runDirectory, "report.json");
        if (!File.Exists(reportPath)) throw new UsageException($"{runDirectory}: no report.json (give a directory written by 'parity run')");
        RunReport report;
        try
        {
            report = ReportWriter.ReadJson(reportPath);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidDataException)
        {
            throw new UsageException($"{reportPath}: unreadable report: {e.Message}");
        }
        string specPath = ResolveSpec(specOverride ?? report.Scenario.SpecPath, runDirectory)
            ?? throw new UsageException($"{reportPath}: the spec path '{report.Scenario.SpecPath}' does not resolve from here; pass --spec");
        var scenario = SpecLoader.LoadFile(specPath);
        if (SpecLoader.Hash(scenario) != report.Scenario.SpecHash)
            w.WriteLine($"warning: {specPath} has changed since the run (spec hash {SpecLoader.Hash(scenario)}, run {report.Scenario.SpecHash}); findings are computed against the spec as it is now");

        var graph = new ModelGraph(scenario.Model);
        var policy = TolerancePolicy.Create(scenario.Tolerances);
        string TraceOf(BackendReport b) => Path.Combine(runDirectory, b.Trace);
        var byName = report.Backends.ToDictionary(b => b.Name);
        var judged = report.Backends.Where(b => !b.Auxiliary).ToList();
        if (!byName.TryGetValue(report.Reference, out var reference)) throw new UsageException($"{reportPath}: the reference '{report.Reference}' has no trace entry");
        bool float64Reference = reference.DType == "float64";
        var comparisons = judged.Where(b => b.Name != report.Reference && Directory.Exists(TraceOf(b)))
            .Select(b => TraceComparer.Compare(TraceReader.Open(TraceOf(reference)), TraceReader.Open(TraceOf(b)), graph, policy,
                float64Reference && b.DType == "float32" ? EnvelopesFor(b.Name, byName, TraceOf) : [], b.Mismatches))
            .ToList();
        var diagnosis = RunDiagnosis.Diagnose(scenario, graph, report.Reference, judged.Select(TraceOf).Where(Directory.Exists), comparisons);

        w.WriteLine($"{report.Scenario.Name}: {diagnosis.Findings.Count} finding(s) over {judged.Count} backend(s); reference {report.Reference}");
        foreach (var f in diagnosis.Findings)
        {
            w.WriteLine();
            w.WriteLine($"[{f.Cause}] {f.Backend} at {f.Location?.ToString() ?? "model"}{(f.DeclaredBy is null ? "" : $" (declared: {f.DeclaredBy})")}");
            w.WriteLine($"  {f.Summary}");
            foreach (var (name, value) in f.Evidence)
                w.WriteLine($"    {name} = {(value is IFormattable n ? n.ToString(null, CultureInfo.InvariantCulture) : value ?? "-")}");
            w.WriteLine($"  hint: {f.Hint}");
        }
        foreach (var n in diagnosis.Notes) w.WriteLine($"note: detector {n.Cause} could not decide: {n.Message}");
        return diagnosis.Findings.Count == 0 ? ExitCodes.Agree : ExitCodes.Diverge;
    }

    /// <summary>The float32 envelopes the run judged <paramref name="backend"/> against (docs/tolerances.md) whose traces are there.</summary>
    private static List<TraceReader> EnvelopesFor(string backend, Dictionary<string, BackendReport> byName, Func<BackendReport, string> traceOf) =>
        NoiseEnvelope.EnvelopesOf(backend).Select(byName.GetValueOrDefault).OfType<BackendReport>()
            .Where(e => e.Status == "completed" && Directory.Exists(traceOf(e))).Select(e => TraceReader.Open(traceOf(e))).ToList();

    /// <summary>The spec path as given, else relative to the run directory's parents or the repository root; null when none exists.</summary>
    private static string? ResolveSpec(string? path, string runDirectory)
    {
        if (string.IsNullOrEmpty(path)) return null;
        if (File.Exists(path) || Path.IsPathRooted(path)) return File.Exists(path) ? path : null;
        foreach (string root in new[] { Path.GetFullPath(runDirectory), RepoPaths.Root })
            for (var dir = new DirectoryInfo(root); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, path))) return Path.Combine(dir.FullName, path);
        return null;
    }
}
