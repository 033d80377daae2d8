using System.Globalization;
using Parity.Backends.OnnxRuntime;
using Parity.Reporting;

namespace Parity.Cli;

/// <summary>The human-readable summary of a run printed to stdout.</summary>
internal static class ResultTable
{
    public static void Print(RunReport report, TextWriter w)
    {
        w.WriteLine($"scenario {report.Scenario.Name} ({report.Scenario.Steps} steps, {report.Scenario.DType}, spec {report.Scenario.SpecHash}); reference: {report.Reference}");
        var rows = new List<string[]> { new[] { "backend", "dtype", "status", "verdict", "first divergence", "max rel", "time" } };
        foreach (var b in report.Backends)
        {
            var c = report.Comparisons.FirstOrDefault(x => x.Backend == b.Name);
            string verdict = b.Name == report.Reference ? "(reference)" : b.Auxiliary ? "(envelope)" : c?.Verdict ?? "-";
            string first = c?.FirstDivergence is { } d
                ? $"step {d.Step} {d.Kind}:{d.Site} ({(d.ExplainedBy.Count > 0 ? "explained by declared mismatch" : d.Origin)})"
                : "";
            string rel = c?.FirstDivergence is { } dd ? dd.Metrics.MaxRel.ToString("G3", CultureInfo.InvariantCulture) : "";
            rows.Add([b.Name, b.DType, b.Status, verdict, first, rel, $"{b.Seconds:F1}s"]);
        }
        int[] widths = Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
        foreach (var r in rows) w.WriteLine("  " + string.Join("  ", r.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd());
        foreach (var b in report.Backends.Where(b => b.Message is not null)) w.WriteLine($"  {b.Name}: {b.Message}");
        foreach (var b in report.Backends)
            foreach (var m in b.Mismatches) w.WriteLine($"  {b.Name} declares: {m.Setting}: spec {m.Spec}, backend {m.Backend}");
        foreach (var c in report.Comparisons.Where(c => c.Message is not null)) w.WriteLine($"  {c.Backend}: {c.Message}");
        foreach (var a in report.Arbitration)
        {
            string provider = a.Runtime.TryGetValue(OnnxExecutionProvider.ProviderKey, out var p) ? $", {p}" : "";
            w.WriteLine($"  onnxruntime on {a.Backend}'s checkpoint (step {a.Step}{provider}): {a.Verdict}{(a.Message is null ? "" : ": " + a.Message)}");
        }
        foreach (string reason in report.Arbitration.Select(a => a.Runtime.GetValueOrDefault(OnnxExecutionProvider.CudaNotUsedKey)).OfType<string>().Distinct())
            w.WriteLine($"  onnxruntime: CUDA not used: {reason}");
        foreach (var f in report.Findings) w.WriteLine($"  finding [{f.Cause}] {f.Backend} at {f.Location}: {f.Summary}");
        w.WriteLine($"verdict: {report.Verdict}");
    }
}
