using Parity.Running;
using System.Globalization;

namespace Parity.Reporting;

/// <summary>
/// The one wording of a comparison's outcome, shared by JUnit failures, the Markdown summary and Parity.NUnit:
/// <c>torch.testing.assert_close</c>-style counts (mismatched elements k / N, greatest absolute and relative
/// difference and where), then the first divergence and its diagnosed causes.
/// </summary>
public static class DivergenceText
{
    /// <summary>One line: verdict, first divergence and origin, e.g. <c>diverge at step 3, forward:l2 (origin)</c>.</summary>
    public static string Headline(ComparisonReport comparison)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        return comparison.FirstDivergence is { } d
            ? $"{comparison.Backend} vs {comparison.Against}: {comparison.Verdict.Name()} at step {d.Step}, {Tensor(d)} ({d.Origin})"
            : $"{comparison.Backend} vs {comparison.Against}: {comparison.Verdict.Name()}{(comparison.Message is null ? "" : $": {comparison.Message}")}";
    }

    /// <summary>
    /// The full message: assert_close-style metrics of the first divergent tensor, its localization, the findings
    /// that name this backend, and the comparison's own message.
    /// </summary>
    public static string Describe(ComparisonReport comparison, IEnumerable<FindingReport> findings)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        ArgumentNullException.ThrowIfNull(findings);
        var lines = new List<string> { $"{comparison.Backend} does not agree with {comparison.Against} ({comparison.Verdict.Name()})." };
        if (comparison.FirstDivergence is { } d)
        {
            var m = d.Metrics;
            string tolerance = m.Atol is double atol && m.Rtol is double rtol ? $" (atol={G(atol)}, rtol={G(rtol)})" : "";
            lines.Add($"Tensor-likes are not close at step {d.Step} ({d.Phase}), {Tensor(d)}!");
            lines.Add($"Mismatched elements: {m.Mismatched} / {m.Count} ({Percent(m.Mismatched, m.Count)}){tolerance}");
            lines.Add($"Greatest absolute difference: {G(m.MaxAbs)} at index {Index(m)}");
            lines.Add($"Greatest relative difference: {G(m.MaxRel)}");
            lines.Add($"RMSE {G(m.Rmse)}, cosine similarity {G(m.Cosine)}, error/allowed {G(m.Score)}");
            string upstream = d.Origin == "origin"
                ? $"every input it was computed from agreed{(d.UpstreamPassed.Count > 0 ? $" ({string.Join(", ", d.UpstreamPassed)})" : "")}"
                : d.UpstreamUnknown.Count > 0 ? $"upstream not captured: {string.Join(", ", d.UpstreamUnknown)}" : "inherited from an upstream difference";
            lines.Add($"First divergence: step {d.Step}, {Tensor(d)} ({d.Origin}; {upstream})");
            if (d.ExplainedBy.Count > 0) lines.Add($"Declared convention mismatch: {string.Join(", ", d.ExplainedBy)}");
        }
        var causes = findings.Where(f => f.Backend == comparison.Backend || f.Backend.Length == 0).ToList();
        lines.Add(causes.Count == 0
            ? "Cause: no detector named one."
            : "Cause: " + string.Join("; ", causes.Select(f => $"{f.Cause} at {f.Location}: {f.Summary}{(f.Hint.Length > 0 ? $" (fix: {f.Hint})" : "")}")));
        if (comparison.Message is not null) lines.Add(comparison.Message);
        lines.Add($"{comparison.TensorsFailed} of {comparison.TensorsCompared} tensors failed over {comparison.StepsCompared} steps.");
        return string.Join("\n", lines);
    }

    /// <summary><c>kind:site</c>, or the kind alone for scalars.</summary>
    public static string Tensor(DivergenceReport d)
    {
        ArgumentNullException.ThrowIfNull(d);
        return d.Site.Length == 0 ? d.Kind : $"{d.Kind}:{d.Site}";
    }

    /// <summary>The position of the greatest absolute difference: <c>(row, column)</c> when the shape is known, else the flat index.</summary>
    public static string Index(MetricsReport m)
    {
        ArgumentNullException.ThrowIfNull(m);
        if (m.WorstIndex < 0) return "(none)";
        if (m.Shape is not { Count: > 0 } shape || shape.Aggregate(1, (a, b) => a * b) != m.Count) return $"{m.WorstIndex} (flat)";
        var position = new int[shape.Count];
        int rest = m.WorstIndex;
        for (int i = shape.Count - 1; i >= 0; i--)
        {
            position[i] = rest % shape[i];
            rest /= shape[i];
        }
        return "(" + string.Join(", ", position) + ")";
    }

    private static string Percent(int k, int n) => n == 0 ? "0.0%" : (100.0 * k / n).ToString("F1", CultureInfo.InvariantCulture) + "%";

    private static string G(double v) =>
        double.IsNaN(v) ? "nan" : double.IsPositiveInfinity(v) ? "inf" : v.ToString("G4", CultureInfo.InvariantCulture).ToLowerInvariant();
}
