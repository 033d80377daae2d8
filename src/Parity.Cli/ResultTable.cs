using Parity.Comparison;
using System.Globalization;
using Parity.Backends.OnnxRuntime;
using Parity.Reporting;

namespace Parity.Cli;

/// <summary>The human-readable summary of a run printed to stdout.</summary>
internal static class ResultTable
{
    private static readonly string[] Header = ["backend", "dtype", "status", "step math", "trajectory", "first divergence", "max rel", "time"];

    public static void Print(RunReport report, TextWriter w)
    {
        static string Name(string? text) => TerminalText.Escape(text);
        static string Message(string? text) => TerminalText.Escape(text, keepNewlines: true, indent: "    ");
        w.WriteLine($"scenario {Name(report.Scenario.Name)} ({report.Scenario.Steps} steps, {report.Scenario.DType}, spec {report.Scenario.SpecHash}); reference: {report.Reference}");
        if (report.Scenario.CaptureFilter is { } filter) w.WriteLine(Name(filter));
        var rows = new List<string[]> { Header };
        foreach (var b in report.Backends)
        {
            var c = report.Comparisons.FirstOrDefault(x => x.Backend == b.Name);
            string role = b.Name == report.Reference ? "(reference)" : b.Auxiliary ? "(envelope)" : "-";
            string stepMath = c?.StepChecks is { } sc ? $"{sc.Verdict.Name()} ({sc.StepsChecked} steps)" : c is null ? role : "not checked";
            string trajectory = c?.Trajectory is { } t ? t.Verdict.Name() + (c.JudgedBy == ComparisonMode.StepCheck ? " (info)" : "") : c is null ? "" : "-";
            string first = c?.FirstDivergence is { } d ? $"step {d.Step} {DivergenceText.Tensor(d)} ({d.Origin})" : "";
            string rel = c?.FirstDivergence is { } dd ? dd.Metrics.MaxRel.ToString("G3", CultureInfo.InvariantCulture) : "";
            rows.Add([Name(b.Name), Name(b.DType), b.Status.Name(), Name(stepMath), Name(trajectory), Name(first), rel, $"{b.Seconds:F1}s"]);
        }
        int[] widths = Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
        foreach (var r in rows) w.WriteLine("  " + string.Join("  ", r.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd());
        // Each divergence with its explanation, in the words of every other output.
        foreach (var c in report.Comparisons.Where(c => c.FirstDivergence is not null)) w.WriteLine($"  {Message(DivergenceText.Headline(c, report.Findings))}");
        foreach (var c in report.Comparisons)
            if (DivergenceText.TrajectoryNote(c, report.Findings) is { } trajectory) w.WriteLine($"  {Name(c.Backend)}: {Message(trajectory)}");
        foreach (var b in report.Backends.Where(b => b.Message is not null)) w.WriteLine($"  {Name(b.Name)}: {Message(b.Message)}");
        foreach (var b in report.Backends)
            foreach (var m in b.Mismatches) w.WriteLine($"  {Name(b.Name)} declares: {Name(m.Setting)}: spec {Name(m.Spec)}, backend {Name(m.Backend)}");
        // A backend that failed gives its comparison the same message: printed once.
        foreach (var c in report.Comparisons.Where(c => c.Message is not null && !report.Backends.Any(b => b.Name == c.Backend && b.Message == c.Message)))
            w.WriteLine($"  {Name(c.Backend)}: {Message(c.Message)}");
        foreach (var c in report.Comparisons.Where(c => c.StepCheckGap is not null)) w.WriteLine($"  {Name(c.Backend)}: {Message(c.StepCheckGap)}");
        foreach (var a in report.Arbitration)
        {
            string provider = a.Runtime.TryGetValue(OnnxExecutionProvider.ProviderKey, out var p) ? $", {p}" : "";
            w.WriteLine($"  onnxruntime on {Name(a.Backend)}'s checkpoint (step {a.Step}{provider}): {a.Verdict.Name()}{(a.Message is null ? "" : ": " + Message(a.Message))}");
        }
        foreach (string reason in report.Arbitration.Select(a => a.Runtime.GetValueOrDefault(OnnxExecutionProvider.CudaNotUsedKey)).OfType<string>().Distinct())
            w.WriteLine($"  onnxruntime: CUDA not used: {Message(reason)}");
        foreach (var g in FindingGroup.Of(report.Findings))
            w.WriteLine($"  {g.Label} [{Name(g.Cause)}] {Name(string.Join(", ", g.Backends))} at {Name(g.Location)}: {Message(g.Summary)}");
        w.WriteLine($"verdict: {report.Verdict.Name()}");
    }
}
