using Parity.Diagnostics;

namespace Parity.Reporting;

/// <summary>
/// One finding as the outputs show it: the same finding of several backends (same kind, cause, location, declared setting
/// and fix) merged into one that lists them. report.json keeps each backend's finding with its own figures.
/// </summary>
/// <param name="Members">The backends' findings, in report order; the first stands for the group.</param>
public sealed record FindingGroup(IReadOnlyList<FindingReport> Members)
{
    /// <summary>The finding that stands for the group (the first backend's).</summary>
    public FindingReport First => Members[0];

    /// <summary>Cause id.</summary>
    public string Cause => First.Cause;

    /// <summary>A cause of a divergence, or a finding about the spec.</summary>
    public FindingKind Kind => First.Kind;

    /// <summary>Where it shows.</summary>
    public string Location => First.Location;

    /// <summary>How to fix it.</summary>
    public string Hint => First.Hint;

    /// <summary>The declared setting that accounts for it, or null.</summary>
    public string? DeclaredBy => First.DeclaredBy;

    /// <summary>The backends that show it.</summary>
    public IReadOnlyList<string> Backends => [.. Members.Select(m => m.Backend)];

    /// <summary>The first backend's sentence; when the backends' figures differ, it says whose figures these are.</summary>
    public string Summary => Members.All(m => m.Summary == First.Summary)
        ? First.Summary
        : $"{First.Summary} (figures from {First.Backend}; each backend's are in its evidence)";

    /// <summary>The words that say what a finding is: <c>cause</c> or <c>about the spec</c>.</summary>
    public string Label => LabelOf(Kind);

    /// <summary>The words that say what a finding of <paramref name="kind"/> is.</summary>
    public static string LabelOf(FindingKind kind) => kind == FindingKind.Spec ? "about the spec" : "cause";

    /// <summary>The findings merged across backends: causes first, then findings about the spec, each in report order.</summary>
    public static IReadOnlyList<FindingGroup> Of(IEnumerable<FindingReport> findings)
    {
        ArgumentNullException.ThrowIfNull(findings);
        return findings
            .GroupBy(f => (f.Kind, f.Cause, f.Location, f.DeclaredBy, f.Hint))
            .Select(g => new FindingGroup([.. g]))
            .OrderBy(g => g.Kind == FindingKind.Spec)
            .ToList();
    }
}
