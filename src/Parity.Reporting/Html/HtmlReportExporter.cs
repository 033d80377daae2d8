using Parity.Comparison;
using Parity.Running;
using Parity.Tracing;
using Parity.IO;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Parity.Reporting.Html;

/// <summary>
/// report.html: one self-contained page (inline CSS and SVG, no script, no network) that a person opens to
/// understand a run. Every string from the report (spec, files, workers) is HTML-encoded; plots are ScottPlot SVG.
/// </summary>
public sealed class HtmlReportExporter : IReportExporter
{
    /// <summary>File name written into the run directory.</summary>
    public const string FileName = "report.html";

    /// <inheritdoc />
    public string Name => "html";

    /// <inheritdoc />
    public string Export(RunReport report, string directory)
    {
        ArgumentNullException.ThrowIfNull(report);
        return AtomicFile.WriteText(Path.Combine(directory, FileName), Render(report));
    }

    /// <summary>The page as a string.</summary>
    public static string Render(RunReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var h = new StringBuilder();
        var s = report.Scenario;
        h.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
            // No script, no external fetch: the policy makes the browser refuse both even if escaping ever failed.
            .Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">")
            .Append("<title>Parity: ").Append(E(s.Name)).Append(" (").Append(E(report.Verdict.Name())).Append(")</title><style>").Append(Css).Append("</style></head><body>\n");

        h.Append("<header><h1>").Append(E(s.Name)).Append(" <span class=\"badge ").Append(VerdictClass(report.Verdict.Name())).Append("\">")
            .Append(E(report.Verdict.Name())).Append("</span></h1>");
        if (s.Description.Length > 0) h.Append("<p class=\"desc\">").Append(E(s.Description)).Append("</p>");
        h.Append("<p class=\"meta\">spec ").Append(E(s.SpecPath ?? "(in memory)")).Append(" &middot; hash <code>").Append(E(Short(s.SpecHash)))
            .Append("</code> &middot; ").Append(E(s.DType)).Append(" &middot; ").Append(s.Steps).Append(" steps (").Append(s.StepsPerEpoch)
            .Append(" per epoch) &middot; ").Append(s.TrainSamples).Append(" train / ").Append(s.EvalSamples).Append(" eval samples from ").Append(E(s.DataOrigin))
            .Append("<br>reference <b>").Append(E(report.Reference)).Append("</b> &middot; ").Append(E(report.Machine.Os)).Append(", ")
            .Append(report.Machine.ProcessorCount).Append(" cores, .NET ").Append(E(report.Machine.DotNet)).Append(" &middot; started ")
            .Append(report.Machine.StartedUtc.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture)).Append(", ")
            .Append(F(report.Machine.Seconds, "F1")).Append(" s &middot; exit code ").Append(report.ExitCode).Append("</p>");
        if (s.CaptureFilter is { } filter) h.Append("<p class=\"meta\"><b>").Append(E(filter)).Append("</b></p>");
        if (s.SharedInstances.Count > 0)
            h.Append("<p class=\"note\">Shared instances (called at more than one site): ").Append(E(string.Join(", ", s.SharedInstances))).Append("</p>");
        if (s.NotIdentifiable.Count > 0)
            h.Append("<p class=\"note\">Not identifiable (the loss does not depend on them; kept out of verdicts): ").Append(E(string.Join(", ", s.NotIdentifiable))).Append("</p>");
        h.Append("</header>\n");

        Summary(h, report);
        Mismatches(h, report);
        Findings(h, report);
        Heatmaps(h, report);
        Differences(h, report);
        Curves(h, report);
        Matrix(h, report);
        Arbitration(h, report);
        Policy(h, report.TolerancePolicy);
        h.Append("<footer>Parity report format ").Append(E(report.Format)).Append(" v").Append(report.Version)
            .Append(" &middot; Parity ").Append(E(report.Machine.Parity)).Append(" &middot; the machine-readable truth is report.json beside this file.</footer>\n");
        h.Append("</body></html>\n");
        return h.ToString();
    }

    private static void Summary(StringBuilder h, RunReport report)
    {
        h.Append("<section><h2>Summary</h2><table id=\"verdicts\" class=\"grid\"><thead><tr><th>backend</th><th>dtype</th><th>status</th><th>verdict</th>")
            .Append("<th>first divergence</th><th>mismatched</th><th>max abs</th><th>max rel</th><th>tensors failed</th><th>time</th><th>runtime</th></tr></thead><tbody>");
        foreach (var b in report.Backends)
        {
            var c = report.Comparisons.FirstOrDefault(x => x.Backend == b.Name);
            string verdict = b.Name == report.Reference ? "reference" : b.Auxiliary ? "envelope" : c?.Verdict.Name() ?? "-";
            h.Append("<tr><td><b>").Append(E(b.Name)).Append("</b></td><td>").Append(E(b.DType)).Append("</td><td class=\"").Append(StatusClass(b.Status)).Append("\">")
                .Append(E(b.Status.Name())).Append("</td><td><span class=\"badge ").Append(VerdictClass(verdict)).Append("\">").Append(E(verdict)).Append("</span></td>");
            if (c?.FirstDivergence is { } d)
            {
                h.Append("<td>").Append(E(DivergenceText.Divergence(c.Backend, d, report.Findings))).Append("</td><td>")
                    .Append(d.Metrics.Mismatched).Append(" / ").Append(d.Metrics.Count).Append("</td><td>").Append(F(d.Metrics.MaxAbs)).Append("</td><td>")
                    .Append(F(d.Metrics.MaxRel)).Append("</td>");
            }
            else
            {
                h.Append("<td></td><td></td><td></td><td></td>");
            }
            h.Append("<td>").Append(c is null ? "" : $"{c.TensorsFailed} / {c.TensorsCompared}").Append("</td><td>").Append(F(b.Seconds, "F1")).Append(" s</td><td class=\"small\">")
                .Append(E(string.Join("; ", b.Runtime.Select(kv => $"{kv.Key} {kv.Value}")))).Append("</td></tr>");
            if (b.Message is not null)
                h.Append("<tr class=\"msg\"><td></td><td colspan=\"10\">").Append(E(b.Message)).Append("</td></tr>");
            if (c?.Message is not null && c.Message != b.Message)
                h.Append("<tr class=\"msg\"><td></td><td colspan=\"10\">").Append(E(c.Message)).Append("</td></tr>");
        }
        h.Append("</tbody></table>");
        foreach (var c in report.Comparisons)
            if (DivergenceText.TrajectoryNote(c, report.Findings) is { } trajectory)
                h.Append("<p class=\"small\"><b>").Append(E(c.Backend)).Append("</b> ").Append(E(trajectory)).Append("</p>");
        foreach (var c in report.Comparisons.Where(c => c.FirstDivergence is not null))
        {
            var d = c.FirstDivergence!;
            h.Append("<p class=\"origin\"><b>").Append(E(c.Backend)).Append("</b> vs ").Append(E(c.Against)).Append(": first divergence at step ").Append(d.Step)
                .Append(" (").Append(E(d.Phase)).Append("), <code>").Append(E(Tensor(d.Kind, d.Site))).Append("</code>, ").Append(E(d.Origin));
            if (d.UpstreamPassed.Count > 0) h.Append("; upstream passed: ").Append(E(string.Join(", ", d.UpstreamPassed)));
            if (d.UpstreamUnknown.Count > 0) h.Append("; upstream not captured: ").Append(E(string.Join(", ", d.UpstreamUnknown)));
            h.Append("; <b>").Append(E(Explanations.Of(c.Backend, d, report.Findings).Text)).Append("</b>");
            h.Append(". RMSE ").Append(F(d.Metrics.Rmse)).Append(", cosine ").Append(F(d.Metrics.Cosine)).Append(", score ").Append(F(d.Metrics.Score)).Append("</p>");
        }
        h.Append("</section>\n");
    }

    private static void Mismatches(StringBuilder h, RunReport report)
    {
        var rows = report.Backends.SelectMany(b => b.Mismatches.Select(m => (b.Name, m))).ToList();
        h.Append("<section><h2>Declared convention mismatches</h2>");
        if (rows.Count == 0)
        {
            h.Append("<p class=\"none\">None: every backend expressed the spec exactly.</p></section>\n");
            return;
        }
        h.Append("<table class=\"grid\"><thead><tr><th>backend</th><th>setting</th><th>spec asks</th><th>backend does</th><th>affects</th></tr></thead><tbody>");
        foreach (var (name, m) in rows)
        {
            h.Append("<tr><td>").Append(E(name)).Append("</td><td><code>").Append(E(m.Setting)).Append("</code></td><td>").Append(E(m.Spec)).Append("</td><td>")
                .Append(E(m.Backend)).Append("</td><td>").Append(E(string.Join(", ", m.Affects))).Append("</td></tr>");
        }
        h.Append("</tbody></table></section>\n");
    }

    private static void Findings(StringBuilder h, RunReport report)
    {
        var groups = FindingGroup.Of(report.Findings);
        h.Append("<section><h2>Findings</h2>");
        if (groups.Count == 0)
        {
            h.Append("<p class=\"none\">No cause diagnosed.</p></section>\n");
            return;
        }
        foreach (var kind in new[] { Diagnostics.FindingKind.Cause, Diagnostics.FindingKind.Spec })
        {
            var ofKind = groups.Where(g => g.Kind == kind).ToList();
            if (ofKind.Count == 0) continue;
            h.Append("<h3>").Append(kind == Diagnostics.FindingKind.Spec ? "About the spec (every backend alike; explains no divergence)" : "Causes of divergence").Append("</h3>");
            foreach (var g in ofKind) Finding(h, g);
        }
        h.Append("</section>\n");
    }

    // One card per finding; merged backends share it, with one evidence column each.
    private static void Finding(StringBuilder h, FindingGroup g)
    {
        h.Append("<div class=\"finding ").Append(g.Kind == Diagnostics.FindingKind.Spec ? "spec" : "").Append("\"><h3><span class=\"cause\">").Append(E(g.Cause)).Append("</span> ")
            .Append(E(g.Label)).Append(" &middot; ").Append(E(string.Join(", ", g.Backends))).Append(" at <code>").Append(E(g.Location)).Append("</code></h3><p>")
            .Append(E(g.Summary)).Append("</p>");
        if (g.DeclaredBy is not null) h.Append("<p class=\"small\">Declared by the backend: <code>").Append(E(g.DeclaredBy)).Append("</code></p>");
        var keys = g.Members.SelectMany(m => m.Evidence.Keys).Distinct().ToList();
        if (keys.Count > 0)
        {
            h.Append("<table class=\"evidence\">");
            if (g.Members.Count > 1)
            {
                h.Append("<tr><th></th>");
                foreach (var m in g.Members) h.Append("<th>").Append(E(m.Backend)).Append("</th>");
                h.Append("</tr>");
            }
            foreach (string k in keys)
            {
                h.Append("<tr><th>").Append(E(k)).Append("</th>");
                foreach (var m in g.Members) h.Append("<td>").Append(E(EvidenceText(m.Evidence.GetValueOrDefault(k)))).Append("</td>");
                h.Append("</tr>");
            }
            h.Append("</table>");
        }
        if (g.Hint.Length > 0) h.Append("<p class=\"hint\">Fix: ").Append(E(g.Hint)).Append("</p>");
        h.Append("</div>");
    }

    private static void Heatmaps(StringBuilder h, RunReport report)
    {
        h.Append("<section><h2>Error by tensor and step</h2><p class=\"small\">Each cell: the tensor's error divided by the error allowed at that step ")
            .Append("(log scale): near white well within tolerance, amber at the tolerance edge, red fails. Cells in other colours are named in the legend under each map: ")
            .Append("not identifiable (the loss does not depend on them) and excused as downstream of a ReLU kink flip are kept out of the verdict; ")
            .Append("explained by a declared mismatch still counts. Long runs are bucketed by maximum; blank cells were not captured.</p>");
        bool any = false;
        foreach (var c in report.Comparisons)
        {
            if (c.Heatmap.Rows.Count == 0 || c.Heatmap.Steps.Count == 0) continue;
            any = true;
            h.Append("<figure class=\"plot heatmap\">").Append(ReportPlots.Heatmap(c.Heatmap, $"{c.Backend} vs {c.Against}")).Append("</figure>");
        }
        if (!any) h.Append("<p class=\"none\">No comparison produced tensor checks.</p>");
        h.Append("</section>\n");
    }

    private static void Differences(StringBuilder h, RunReport report)
    {
        var comparisons = report.Comparisons.Where(c => c.Trajectory is { Differences.Count: > 0 }).ToList();
        if (comparisons.Count == 0) return;
        var order = report.Backends.Select(b => b.Name).ToList();
        var noise = ReportPlots.NoiseColor;
        h.Append("<section id=\"differences\"><h2>Difference from the reference</h2><p class=\"small\">Each backend's free-running training against the reference's, ")
            .Append("per tensor kind: the RMSE of the worst tensor (thick line) and the median tensor (thin line) at each step, on a log scale. ")
            .Append("<span class=\"swatch\" style=\"background:rgba(").Append(noise.R).Append(',').Append(noise.G).Append(',').Append(noise.B)
            .Append(",0.3)\"></span> The shaded band is float32 noise: up to the worst difference the float32 envelope runs show on the kind, ")
            .Append("their median as a thin grey line. A curve inside the band is rounding; where it rises out of it, and how steeply, is where the backend leaves the noise.</p>");
        foreach (var c in comparisons)
        {
            h.Append("<h3>").Append(E(c.Backend)).Append(" vs ").Append(E(report.Reference)).Append(", free-running</h3><div class=\"plots\">");
            var color = ReportPlots.BackendColor(order, c.Backend);
            // A kind equal to the reference at every step has nothing to plot; it is named instead.
            var equal = c.Trajectory!.Differences.Where(d => d.Worst.All(v => v == 0)).Select(d => d.Kind).ToList();
            foreach (var d in c.Trajectory.Differences.Where(d => !equal.Contains(d.Kind)))
                h.Append("<figure class=\"plot difference\">").Append(ReportPlots.Difference(d, color, report.Scenario.Steps)).Append("</figure>");
            h.Append("</div>");
            if (equal.Count > 0) h.Append("<p class=\"small\">Equal to the reference at every step: ").Append(E(string.Join(", ", equal))).Append(".</p>");
        }
        h.Append("</section>\n");
    }

    private static void Curves(StringBuilder h, RunReport report)
    {
        var order = report.Backends.Select(b => b.Name).ToList();
        var groups = report.Series.GroupBy(s => s.Name).ToDictionary(g => g.Key, g => g.ToList());
        void Grid(string heading, string? note, IEnumerable<string> names, Func<string, (string Title, string Y)> label)
        {
            var present = names.Where(groups.ContainsKey).ToList();
            if (present.Count == 0) return;
            h.Append("<h3>").Append(E(heading)).Append("</h3>");
            if (note is not null) h.Append("<p class=\"small\">").Append(E(note)).Append("</p>");
            h.Append("<div class=\"plots\">");
            foreach (string name in present)
            {
                var (title, y) = label(name);
                var evaluated = TensorKinds.TryParse(name)?.IsEval() == true
                    ? groups[name].SelectMany(s => s.Steps).Distinct().Order().ToList()
                    : null;
                h.Append("<figure class=\"plot\">").Append(ReportPlots.Lines(title, y, groups[name], order, evaluated, report.Scenario.Steps)).Append("</figure>");
            }
            h.Append("</div>");
        }
        h.Append("<section><h2>Curves</h2>");
        if (groups.Count == 0) h.Append("<p class=\"none\">No trace could be read back for curves.</p>");
        // A loss without label targets has no accuracy curves: the grid shows the curves the traces hold.
        string lossAxis = report.Scenario.Loss switch
        {
            "mse" => "mean squared error",
            "bce_with_logits" => "mean binary cross-entropy",
            _ => "mean cross-entropy",
        };
        Grid("Loss and accuracy", null, ["loss", "evalLoss", "trainAccuracy", "evalAccuracy"], n => n switch
        {
            "loss" => ("train loss", lossAxis),
            "evalLoss" => ("eval loss", lossAxis),
            "trainAccuracy" => ("train accuracy", "fraction correct"),
            _ => ("eval accuracy", "fraction correct"),
        });
        var running = groups.Keys.Where(k => k.StartsWith("runningMean:", StringComparison.Ordinal) || k.StartsWith("runningVariance:", StringComparison.Ordinal))
            .OrderBy(k => k[(k.IndexOf(':') + 1)..], StringComparer.Ordinal).ThenBy(k => k, StringComparer.Ordinal);
        Grid("Batchnorm running statistics", "Mean over features of each instance's running mean and running variance, after each captured step.", running,
            n => ($"{n[(n.IndexOf(':') + 1)..]} {(n.StartsWith("runningMean", StringComparison.Ordinal) ? "running mean" : "running variance")}", "mean over features"));
        var norms = groups.Keys.Where(k => k.StartsWith("norm:", StringComparison.Ordinal)).OrderBy(k => k, StringComparer.Ordinal);
        Grid("Weight trajectories", "L2 norm of each parameter after the optimizer update, on captured steps.", norms, n => ($"||{n[5..]}||", "L2 norm"));
        h.Append("</section>\n");
    }

    private static void Policy(StringBuilder h, PolicyDescription policy)
    {
        h.Append("<section id=\"policy\"><h2>Tolerance policy</h2><p class=\"small\">").Append(E(policy.Rule)).Append("</p>")
            .Append("<table class=\"grid compact\"><tbody><tr><th>envelope multiple</th><td>").Append(F(policy.EnvelopeMultiple, "G6"))
            .Append("</td><th>envelope floor (of the reference RMS)</th><td>").Append(F(policy.EnvelopeFloor, "G6"))
            .Append("</td><th>absolute floor</th><td>").Append(F(policy.AbsoluteFloor, "G6"))
            .Append("</td><th>growth g(s) = (1 + s)^</th><td>").Append(F(policy.GrowthExponent, "G6")).Append("</td></tr></tbody></table>")
            .Append("<table id=\"tolerances\" class=\"grid\"><thead><tr><th>tensor kind</th><th>float32 atol</th><th>float32 rtol</th><th>float64 atol</th>")
            .Append("<th>float64 rtol</th><th>float32 judged by</th><th>source</th></tr></thead><tbody>");
        foreach (var (kind, t) in policy.Kinds)
        {
            h.Append("<tr><td><code>").Append(E(kind)).Append("</code></td><td>").Append(F(t.Float32.Atol)).Append("</td><td>").Append(F(t.Float32.Rtol))
                .Append("</td><td>").Append(F(t.Float64.Atol)).Append("</td><td>").Append(F(t.Float64.Rtol)).Append("</td><td>")
                .Append(t.Envelope ? "noise envelope" : "atol / rtol").Append("</td><td>").Append(E(t.Source)).Append("</td></tr>");
        }
        h.Append("</tbody></table></section>\n");
    }

    private static void Matrix(StringBuilder h, RunReport report)
    {
        if (report.Matrix.Count == 0) return;
        var names = report.Matrix.SelectMany(p => new[] { p.A, p.B }).Distinct().ToList();
        h.Append("<section><h2>Pairwise matrix</h2><p class=\"small\">Every pair of completed traces compared directly; a cell shows the verdict and the first divergence.</p>")
            .Append("<table id=\"matrix\" class=\"grid\"><thead><tr><th></th>");
        foreach (string n in names) h.Append("<th>").Append(E(n)).Append("</th>");
        h.Append("</tr></thead><tbody>");
        foreach (string a in names)
        {
            h.Append("<tr><th>").Append(E(a)).Append("</th>");
            foreach (string b in names)
            {
                var p = report.Matrix.FirstOrDefault(x => (x.A == a && x.B == b) || (x.A == b && x.B == a));
                if (a == b || p is null)
                {
                    h.Append("<td class=\"diag\"></td>");
                    continue;
                }
                h.Append("<td><span class=\"badge ").Append(VerdictClass(p.Verdict.Name())).Append("\">").Append(E(p.Verdict.Name())).Append("</span>");
                if (p.Step is int step) h.Append("<br><span class=\"small\">step ").Append(step).Append(' ').Append(E(p.Tensor ?? "")).Append("</span>");
                h.Append("</td>");
            }
            h.Append("</tr>");
        }
        h.Append("</tbody></table></section>\n");
    }

    private static void Arbitration(StringBuilder h, RunReport report)
    {
        if (report.Arbitration.Count == 0) return;
        h.Append("<section><h2>ONNX Runtime arbitration</h2><table id=\"arbitration\" class=\"grid\"><thead><tr><th>backend</th><th>step</th><th>verdict</th>")
            .Append("<th>failing tensors</th><th>message</th><th>runtime</th></tr></thead><tbody>");
        foreach (var a in report.Arbitration)
        {
            h.Append("<tr><td>").Append(E(a.Backend)).Append("</td><td>").Append(a.Step).Append("</td><td><span class=\"badge ").Append(VerdictClass(a.Verdict.Name())).Append("\">")
                .Append(E(a.Verdict.Name())).Append("</span></td><td>")
                .Append(E(string.Join(", ", a.Tensors.Where(t => !t.Passed).Select(t => $"{t.Tensor} (max abs {F(t.MaxAbs)}, score {F(t.Score)})"))))
                .Append("</td><td>").Append(E(a.Message)).Append("</td><td>")
                .Append(E(string.Join("; ", a.Runtime.Select(r => $"{r.Key} {r.Value}")))).Append("</td></tr>");
        }
        h.Append("</tbody></table></section>\n");
    }

    /// <summary>HTML-encodes text for element content and quoted attribute values.</summary>
    internal static string E(string? text) => WebUtility.HtmlEncode(text ?? "");

    private static string Tensor(string kind, string site) => site.Length == 0 ? kind : $"{kind}:{site}";

    private static string Short(string hash) => hash.Length > 16 ? hash[..16] : hash;

    private static string F(double v, string format = "G3") =>
        double.IsNaN(v) ? "NaN" : double.IsPositiveInfinity(v) ? "inf" : double.IsNegativeInfinity(v) ? "-inf" : v.ToString(format, CultureInfo.InvariantCulture);

    private static string EvidenceText(object? value) => value switch
    {
        null => "",
        string s => s,
        double d => F(d, "G6"),
        JsonElement { ValueKind: JsonValueKind.String } j => j.GetString() ?? "",
        _ => JsonSerializer.Serialize(value, ReportWriter.Json),
    };

    private static string VerdictClass(string verdict) => verdict switch
    {
        "agree" => "ok",
        "diverge" => "bad",
        "error" => "err",
        _ => "neutral",
    };

    private static string StatusClass(RunStatus status) => status == RunStatus.Completed ? "" : "bad-text";

    private const string Css = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1280px;padding:20px 28px;color:#1d2430;background:#fbfcfd}
        h1{font-size:24px;margin:0 0 6px}h2{font-size:18px;margin:28px 0 10px;padding-bottom:4px;border-bottom:2px solid #e3e8ef}h3{font-size:15px;margin:16px 0 6px}
        header{background:#fff;border:1px solid #e3e8ef;border-radius:8px;padding:14px 18px}
        .desc{margin:4px 0;color:#3b4656}.meta{color:#5a6678;font-size:12.5px;margin:6px 0 0}.note{font-size:12.5px;color:#7a4b00;margin:6px 0 0}
        .badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600;vertical-align:middle;color:#fff}
        h1 .badge{font-size:15px;padding:2px 12px}
        .ok{background:#1a9850}.bad{background:#d73027}.err{background:#7b3294}.neutral{background:#8a96a8}.bad-text{color:#d73027;font-weight:600}
        table.grid{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
        table.grid th,table.grid td{border:1px solid #e3e8ef;padding:5px 8px;text-align:left;vertical-align:top}
        table.grid thead th{background:#f1f4f8;font-weight:600}
        tr.msg td{color:#7b3294;font-size:12.5px;border-top:none}
        td.diag{background:#f1f4f8}.small{font-size:12px;color:#5a6678}.none{color:#5a6678;font-style:italic}
        code{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px;background:#f1f4f8;padding:0 3px;border-radius:3px}
        .origin{background:#fff6f5;border-left:4px solid #d73027;padding:6px 10px;margin:8px 0;font-size:13px}
        .finding{background:#fff;border:1px solid #e3e8ef;border-left:4px solid #f39c12;border-radius:6px;padding:8px 14px;margin:10px 0}
        .finding h3{margin:2px 0}.cause{background:#f39c12;color:#fff;border-radius:4px;padding:0 6px;font-size:12px}
        .finding.spec{border-left-color:#4575b4}.finding.spec .cause{background:#4575b4}
        .hint{color:#1a6d3a;margin:6px 0 2px}table.evidence{border-collapse:collapse;font-size:12.5px}
        table.evidence th,table.evidence td{padding:2px 10px 2px 0;text-align:left}table.evidence th{color:#5a6678;font-weight:500}
        .plots{display:flex;flex-wrap:wrap;gap:10px}
        figure.plot{margin:0;background:#fff;border:1px solid #e3e8ef;border-radius:6px;padding:4px;overflow-x:auto}
        figure.heatmap{margin:10px 0}figure.heatmap svg,figure.heatmap svg *{image-rendering:pixelated}
        .swatch{display:inline-block;width:22px;height:11px;border:1px solid #8a96a8;vertical-align:middle}
        table.compact{width:auto;margin:6px 0 10px}table.compact th{background:#f1f4f8;font-weight:500}
        footer{margin:28px 0 8px;color:#8a96a8;font-size:12px}
        """;
}
