using Parity.Tracing;

namespace Parity.Planning;

/// <summary>
/// A narrowing of what a run captures, asked for on the command line (<c>parity run --kinds --sites --steps-range</c>):
/// the plan asks every backend for less, so less is written and only what was captured is judged. Null members leave
/// that dimension as the spec has it. The state (parameters, running statistics, optimizer state) of every site stays
/// whole (every state kind the spec captures, at every site), since the step checks replay each captured step from it.
/// </summary>
/// <param name="Kinds">The tensor kinds to capture (within the spec's <c>capture.kinds</c>); null for the spec's.</param>
/// <param name="Sites">Call sites or layer names (e.g. <c>l1</c>, which also covers <c>l1.weight</c> and its optimizer slots); null for every site.</param>
/// <param name="From">The first step captured in full; null for step 1. Earlier steps still run, to reach the state.</param>
/// <param name="To">The last step captured in full; null for the last step.</param>
public sealed record CaptureFilter(IReadOnlySet<TensorKind>? Kinds, IReadOnlySet<string>? Sites, int? From, int? To)
{
    /// <summary>True when step <paramref name="step"/> lies in the step range.</summary>
    public bool IncludesStep(int step) => step >= (From ?? 1) && step <= (To ?? int.MaxValue);

    /// <summary>True when the tensor at <paramref name="site"/> of <paramref name="kind"/> is within the sites (state and scalars always are).</summary>
    public bool IncludesSite(TensorKind kind, string site) =>
        Sites is null || kind.IsState() || kind.IsScalar() || Sites.Any(s => Covers(s, site));

    /// <summary>True when the name <paramref name="name"/> covers the tensor site <paramref name="site"/>: itself, its parameters (<c>l1.weight</c>) and their slots (<c>l1.weight/m</c>).</summary>
    public static bool Covers(string name, string site)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(site);
        return site == name || site.StartsWith(name + ".", StringComparison.Ordinal) || site.StartsWith(name + "/", StringComparison.Ordinal);
    }

    /// <summary>
    /// One line saying what the filter left out, for the terminal and every report, so an "agree" is never read as
    /// covering kinds, sites or steps that were not checked.
    /// </summary>
    public string Describe(int totalSteps)
    {
        var parts = new List<string>();
        if (Kinds is not null) parts.Add($"kinds {string.Join(", ", Kinds.Order().Select(k => k.Name()))} (and the state kinds, kept for the step replays)");
        if (Sites is not null) parts.Add($"sites {string.Join(", ", Sites.Order(StringComparer.Ordinal))} (the state of every site kept for the step replays)");
        if (From is not null || To is not null) parts.Add($"steps {From ?? 1}..{Math.Min(To ?? totalSteps, totalSteps)} of {totalSteps} (the state they start from is recorded and checked too; every step's loss is still compared)");
        return $"capture filtered to {string.Join("; ", parts)}: tensors and steps outside it were not captured and are not judged";
    }
}
