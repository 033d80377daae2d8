using Parity.Running;
using Parity.IO;
using System.Globalization;
using System.Text;

namespace Parity.Reporting.Markdown;

/// <summary>
/// summary.md: a compact Markdown table for pull-request comments (verdict per backend, first divergence, origin and
/// explanation), followed by the declared mismatches, the causes and the findings about the spec, one line each. Text from specs and workers is escaped so it
/// cannot break the table or inject HTML into the rendered comment.
/// </summary>
public sealed class MarkdownReportExporter : IReportExporter
{
    /// <summary>File name written into the run directory.</summary>
    public const string FileName = "summary.md";

    /// <inheritdoc />
    public string Name => "markdown";

    /// <inheritdoc />
    public string Export(RunReport report, string directory)
    {
        ArgumentNullException.ThrowIfNull(report);
        return AtomicFile.WriteText(Path.Combine(directory, FileName), Render(report));
    }

    /// <summary>The Markdown text.</summary>
    public static string Render(RunReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var s = report.Scenario;
        var md = new StringBuilder();
        md.Append("### ").Append(Icon(report.Verdict.Name())).Append(" Parity `").Append(Code(s.Name)).Append("`: **").Append(report.Verdict.Name()).Append("**\n\n");
        md.Append(s.Steps).Append(" steps, ").Append(Cell(s.DType)).Append(", reference `").Append(Code(report.Reference)).Append("`, spec hash `")
            .Append(Code(s.SpecHash.Length > 12 ? s.SpecHash[..12] : s.SpecHash)).Append("`\n\n");
        if (s.CaptureFilter is { } filter) md.Append("**").Append(Cell(filter)).Append("**\n\n");
        md.Append("| backend | dtype | status | verdict | first divergence | mismatched | max rel | time |\n|---|---|---|---|---|---|---|---|\n");
        foreach (var b in report.Backends)
        {
            var c = report.Comparisons.FirstOrDefault(x => x.Backend == b.Name);
            string verdict = b.Name == report.Reference ? "reference" : b.Auxiliary ? "envelope" : c?.Verdict.Name() ?? "-";
            string first = "", mismatched = "", rel = "";
            if (c?.FirstDivergence is { } d)
            {
                first = Cell(DivergenceText.Divergence(b.Name, d, report.Findings));
                mismatched = $"{d.Metrics.Mismatched} / {d.Metrics.Count}";
                rel = d.Metrics.MaxRel.ToString("G3", CultureInfo.InvariantCulture);
            }
            md.Append("| ").Append(Cell(b.Name)).Append(" | ").Append(Cell(b.DType)).Append(" | ").Append(Cell(b.Status.Name())).Append(" | ")
                .Append(verdict == "reference" || verdict == "envelope" || verdict == "-" ? verdict : $"{Icon(verdict)} {verdict}").Append(" | ")
                .Append(first).Append(" | ").Append(mismatched).Append(" | ").Append(rel).Append(" | ")
                .Append(b.Seconds.ToString("F1", CultureInfo.InvariantCulture)).Append(" s |\n");
        }
        var notes = new List<string>();
        foreach (var b in report.Backends.Where(b => b.Message is not null)) notes.Add($"`{Code(b.Name)}`: {Cell(b.Message!)}");
        foreach (var b in report.Backends)
            foreach (var m in b.Mismatches) notes.Add($"`{Code(b.Name)}` declares `{Code(m.Setting)}`: spec {Cell(m.Spec)}, backend {Cell(m.Backend)}");
        foreach (var c in report.Comparisons)
            if (DivergenceText.TrajectoryNote(c, report.Findings) is { } trajectory) notes.Add($"`{Code(c.Backend)}`: {Cell(trajectory)}");
        foreach (var g in FindingGroup.Of(report.Findings))
            notes.Add($"{g.Label}: **{Cell(g.Cause)}** ({Cell(string.Join(", ", g.Backends))} at `{Code(g.Location)}`): {Cell(g.Summary)}{(g.Hint.Length > 0 ? $" Fix: {Cell(g.Hint)}" : "")}");
        if (notes.Count > 0)
        {
            md.Append('\n');
            foreach (string n in notes) md.Append("- ").Append(n).Append('\n');
        }
        return md.ToString();
    }

    private static string Icon(string verdict) => verdict switch
    {
        "agree" => "\u2705",
        "diverge" => "\u274C",
        _ => "\u26A0\uFE0F",
    };

    /// <summary>Table-safe text: one line, pipes escaped, HTML and Markdown emphasis characters neutralized.</summary>
    internal static string Cell(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (char ch in text)
        {
            switch (ch)
            {
                case '\r' or '\n' or '\t': sb.Append(' '); break;
                case '|': sb.Append("\\|"); break;
                case '<': sb.Append("&lt;"); break;
                case '>': sb.Append("&gt;"); break;
                case '&': sb.Append("&amp;"); break;
                case '*' or '_' or '`' or '[' or ']' or '\\': sb.Append('\\').Append(ch); break;
                default: sb.Append(ch); break;
            }
        }
        return sb.ToString();
    }

    /// <summary>Text inside a code span: one line, backticks and pipes replaced (code spans cannot escape them).</summary>
    internal static string Code(string text) =>
        string.Concat(text.Select(ch => ch is '\r' or '\n' or '\t' ? ' ' : ch == '`' ? '\'' : ch == '|' ? '/' : ch));
}
