using Parity.Diagnostics;

namespace Parity.Reporting;

/// <summary>How a divergence is explained.</summary>
public enum ExplanationKind
{
    /// <summary>A convention mismatch the backend declared (an expected difference, not a defect).</summary>
    DeclaredMismatch,

    /// <summary>A detector's cause, not declared by the backend.</summary>
    Cause,

    /// <summary>Neither: no declared mismatch and no known cause fits.</summary>
    Unexplained,
}

/// <summary>The explanation of one divergence, chosen once (<see cref="Explanations.Choose"/>) and printed in the same words everywhere.</summary>
/// <param name="Kind">Declared mismatch, a detector's cause, or unexplained.</param>
/// <param name="Names">The declared settings, or the cause ids; empty when unexplained.</param>
public sealed record Explanation(ExplanationKind Kind, IReadOnlyList<string> Names)
{
    /// <summary>The words the terminal, report.html, summary.md, junit.xml and ParityAssert print.</summary>
    public string Text => Kind switch
    {
        ExplanationKind.DeclaredMismatch => $"explained by declared mismatch {string.Join(", ", Names)}",
        ExplanationKind.Cause => $"cause: {string.Join(", ", Names)}",
        _ => "unexplained: no known cause fits",
    };
}

/// <summary>
/// Chooses the explanation of each divergence: the one rule every output follows. A finding about the spec (a hazard every
/// backend shows alike, <see cref="FindingKind.Spec"/>) never explains a divergence; only a backend's own causes do.
/// </summary>
public static class Explanations
{
    /// <summary>
    /// The explanation of <paramref name="divergence"/> of <paramref name="backend"/>, in this order: the declared mismatches
    /// that name the diverging tensor's kind; else the detectors' causes for this backend that no declared mismatch accounts
    /// for; else the declared mismatches that account for the detectors' causes; else unexplained.
    /// </summary>
    public static Explanation Choose(string backend, DivergenceReport divergence, IEnumerable<FindingReport> findings)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(divergence);
        ArgumentNullException.ThrowIfNull(findings);
        if (divergence.ExplainedBy.Count > 0) return new Explanation(ExplanationKind.DeclaredMismatch, [.. divergence.ExplainedBy.Distinct()]);
        var causes = CausesOf(backend, findings).ToList();
        var undeclared = causes.Where(f => f.DeclaredBy is null).Select(f => f.Cause).Distinct().ToList();
        if (undeclared.Count > 0) return new Explanation(ExplanationKind.Cause, undeclared);
        var declared = causes.Select(f => f.DeclaredBy).OfType<string>().Distinct().ToList();
        return declared.Count > 0 ? new Explanation(ExplanationKind.DeclaredMismatch, declared) : new Explanation(ExplanationKind.Unexplained, []);
    }

    /// <summary>The explanation the report holds for <paramref name="divergence"/>, or the one <see cref="Choose"/> gives when it holds none.</summary>
    public static Explanation Of(string backend, DivergenceReport divergence, IEnumerable<FindingReport> findings)
    {
        ArgumentNullException.ThrowIfNull(divergence);
        return divergence.Explanation ?? Choose(backend, divergence, findings);
    }

    /// <summary>The findings that can explain a divergence of <paramref name="backend"/>: its causes, not findings about the spec nor <c>unexplained-divergence</c>.</summary>
    public static IEnumerable<FindingReport> CausesOf(string backend, IEnumerable<FindingReport> findings)
    {
        ArgumentNullException.ThrowIfNull(findings);
        return findings.Where(f => f.Backend == backend && f.Kind == FindingKind.Cause && f.Cause != CauseIds.UnexplainedDivergence);
    }

    /// <summary><paramref name="comparison"/> with the explanation of its first divergence, and of its trajectory's, chosen from <paramref name="findings"/>.</summary>
    public static ComparisonReport Attach(ComparisonReport comparison, IReadOnlyList<FindingReport> findings)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        DivergenceReport? Explained(DivergenceReport? d) => d is null ? null : d with { Explanation = Choose(comparison.Backend, d, findings) };
        return comparison with
        {
            FirstDivergence = Explained(comparison.FirstDivergence),
            Trajectory = comparison.Trajectory is { } t ? t with { FirstDivergence = Explained(t.FirstDivergence) } : null,
        };
    }
}
