using System.CommandLine;
using System.Globalization;
using Parity.Harness;
using Parity.Specs;
using Parity.Tensors;

namespace Parity.Cli;

/// <summary>
/// <c>parity diagnose RUN_DIR</c>: re-reads a run (report.json, or what a killed run left; its traces and the spec it
/// names), compares the traces again and prints every detector's findings (docs/causes.md). Exit code 0 without
/// findings, 1 with, 2 on error or when an interrupted run shows none.
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
        var run = DiagnosedRun.Read(runDirectory);
        string specPath = ResolveSpec(specOverride ?? run.SpecPath, runDirectory)
            ?? throw new UsageException($"{runDirectory}: the spec path '{run.SpecPath}' does not resolve from here; pass --spec");
        var scenario = SpecLoader.LoadFile(specPath);
        if (SpecLoader.Hash(scenario) != run.SpecHash)
            w.WriteLine($"warning: {specPath} has changed since the run (spec hash {SpecLoader.Hash(scenario)}, run {run.SpecHash}); findings are computed against the spec as it is now");
        if (run.Interrupted is not null) w.WriteLine($"note: {run.Interrupted}");

        // Every trace the run lists must be there and be the one it wrote: anything else is damage, not a finding. A trace
        // that --keep-traces removed on purpose leaves its backend out.
        foreach (var b in run.Backends.Where(b => !Directory.Exists(Path.Combine(runDirectory, b.Trace))).ToList())
            if (TraceRetentions.WhyAbsent(runDirectory, b.Name) is { } why)
            {
                w.WriteLine($"note: backend {TerminalText.Escape(b.Name)} is left out: {why}");
                run = run with { Backends = [.. run.Backends.Where(x => x != b)] };
            }
        foreach (var b in run.Backends)
            if (run.OpenTrace(runDirectory, b).Unsealed is string unsealed && b.Status != RunStatus.Unavailable) w.WriteLine($"note: {unsealed}");
        var judged = run.Backends.Where(b => !b.Auxiliary).ToList();
        if (run.Backends.All(b => b.Name != run.Reference)) throw new UsageException($"{runDirectory}: the reference '{run.Reference}' has no trace entry");

        // The run again, from its traces: the same session judges and diagnoses them as 'parity run' did.
        int steps = Math.Max(1, run.Backends.Max(b => b.StepsCompleted));
        var session = RunSession.Start(new RunRequest(scenario, specPath, judged.Where(b => b.Name != run.Reference).Select(b => b.Name).ToList(), run.Reference, runDirectory, steps)
        {
            ReferenceAlone = true,
        });
        session.Attach(run.Backends.Select(b => new SessionRun(b.Name, DTypes.TryParse(b.DType) ?? DType.Float32, b.Auxiliary,
            new BackendRun(b.Name, b.Status, b.Message, Path.Combine(runDirectory, b.Trace), b.StepsCompleted, TimeSpan.FromSeconds(b.Seconds), b.Mismatches, b.Runtime))));
        var diagnosis = session.Diagnose(session.Judge());

        w.WriteLine($"{TerminalText.Escape(run.Scenario)}: {diagnosis.Findings.Count} finding(s) over {judged.Count} backend(s); reference {run.Reference}");
        foreach (var f in diagnosis.Findings)
        {
            w.WriteLine();
            w.WriteLine($"[{f.Cause}] {Parity.Reporting.FindingGroup.LabelOf(f.Kind)}: {f.Backend} at {f.Location?.ToString() ?? "model"}{(f.DeclaredBy is null ? "" : $" (declared: {f.DeclaredBy})")}");
            w.WriteLine($"  {f.Summary}");
            foreach (var (name, value) in f.Evidence)
                w.WriteLine($"    {name} = {(value is IFormattable n ? n.ToString(null, CultureInfo.InvariantCulture) : value ?? "-")}");
            w.WriteLine($"  hint: {f.Hint}");
        }
        foreach (var n in diagnosis.Notes) w.WriteLine($"note: detector {n.Cause} could not decide: {n.Message}");
        // An interrupted run with nothing found has not been shown to agree.
        return ExitCodes.Of(diagnosis.Findings.Count > 0 ? Verdict.Diverge : run.Interrupted is null ? Verdict.Agree : Verdict.Error);
    }

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
