using Parity.Running;
using System.Globalization;

namespace Parity.Reporting;

/// <summary>
/// The one wording of a comparison's outcome, shared by the terminal, report.html, summary.md, junit.xml and Parity.NUnit:
/// <c>torch.testing.assert_close</c>-style counts (mismatched elements k / N, greatest absolute and relative
/// difference and where), then the first divergence and its explanation (<see cref="Explanations.Choose"/>).
/// </summary>
public static class DivergenceText
{
    /// <summary>One line: verdict, first divergence, origin and explanation, e.g. <c>diverge at step 3, forward:l2 (origin): cause: weight-layout</c>.</summary>
    public static string Headline(ComparisonReport comparison, IEnumerable<FindingReport> findings)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        return comparison.FirstDivergence is { } d
            ? $"{comparison.Backend} vs {comparison.Against}: {comparison.Verdict.Name()} at {Divergence(comparison.Backend, d, findings)}"
            : $"{comparison.Backend} vs {comparison.Against}: {comparison.Verdict.Name()}{(comparison.Message is null ? "" : $": {comparison.Message}")}";
    }

    /// <summary>A divergence and its explanation, as every output prints it: <c>step 1, runningVariance:bn (origin): explained by declared mismatch ...</c>.</summary>
    public static string Divergence(string backend, DivergenceReport divergence, IEnumerable<FindingReport> findings)
    {
        ArgumentNullException.ThrowIfNull(divergence);
        return $"step {divergence.Step}, {Tensor(divergence)} ({divergence.Origin}): {Explanations.Of(backend, divergence, findings).Text}";
    }

    /// <summary>
    /// Where the free-running trajectory first diverges and why, when the step checks decide the verdict and the trajectory
    /// diverges anyway (information, not the verdict); null otherwise.
    /// </summary>
    public static string? TrajectoryNote(ComparisonReport comparison, IEnumerable<FindingReport> findings)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        return comparison.JudgedBy == Comparison.ComparisonMode.StepCheck && comparison.Trajectory?.FirstDivergence is { } d
            ? $"trajectory (information; the step checks decide): {comparison.Trajectory.Verdict.Name()} at {Divergence(comparison.Backend, d, findings)}"
            : null;
    }

    /// <summary>
    /// The full message: assert_close-style metrics of the first divergent tensor, its localization, its explanation and the
    /// findings behind it, this backend's findings about the spec (which explain no divergence), and the comparison's own message.
    /// </summary>
    public static string Describe(ComparisonReport comparison, IEnumerable<FindingReport> findings)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        ArgumentNullException.ThrowIfNull(findings);
        var own = findings.Where(f => f.Backend == comparison.Backend).ToList();
        var causes = Explanations.CausesOf(comparison.Backend, own).ToList();
        var behind = new List<FindingReport>();
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
            var explanation = Explanations.Of(comparison.Backend, d, findings);
            lines.Add($"Explanation: {explanation.Text}");
            // The findings behind the explanation: the causes it names, or those the declared settings it names account for.
            behind.AddRange(causes.Where(f => explanation.Names.Contains(f.Cause) || (f.DeclaredBy is { } by && explanation.Names.Contains(by))));
            lines.AddRange(behind.Select(f => $"  {Line(f)}"));
        }
        lines.AddRange(causes.Except(behind).Select(f => $"Also found: {Line(f)}"));
        foreach (var f in own.Where(f => f.Kind == Diagnostics.FindingKind.Spec))
            lines.Add($"About the spec (explains no divergence): {Line(f)}");
        if (TrajectoryNote(comparison, findings) is { } trajectory) lines.Add(char.ToUpperInvariant(trajectory[0]) + trajectory[1..]);
        if (comparison.Message is not null) lines.Add(comparison.Message);
        lines.Add($"{comparison.TensorsFailed} of {comparison.TensorsCompared} tensors failed over {comparison.StepsCompared} steps.");
        return string.Join("\n", lines);
    }

    private static string Line(FindingReport f) => $"{f.Cause} at {f.Location}: {f.Summary}{(f.Hint.Length > 0 ? $" (fix: {f.Hint})" : "")}";

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
