using System.Globalization;
using Parity.Planning;
using Parity.Tracing;

namespace Parity.Harness;

/// <summary>
/// <c>parity run --kinds K1,K2 --sites S1,S2 --steps-range A..B</c>: the words of a capture filter read and checked
/// against the plan, every wrong name a usage error that lists the valid ones.
/// </summary>
public static class CaptureFilters
{
    /// <summary>
    /// The filter the three options describe, or null when none is given. Kinds are the trace's names
    /// (docs/trace.md, e.g. <c>forward,outputGradient</c>); a range is <c>A..B</c>, <c>A..</c> or <c>..B</c>.
    /// </summary>
    public static CaptureFilter? Parse(string? kinds, string? sites, string? stepsRange)
    {
        if (kinds is null && sites is null && stepsRange is null) return null;
        var (from, to) = stepsRange is null ? (null, null) : Range(stepsRange);
        return new CaptureFilter(kinds is null ? null : Kinds(kinds), sites is null ? null : Names("--sites", sites).ToHashSet(StringComparer.Ordinal), from, to);
    }

    /// <summary>
    /// <paramref name="filter"/> checked against <paramref name="plan"/>: every site a name of its model, every kind one its spec
    /// captures, the range inside its steps.
    /// </summary>
    public static CaptureFilter Checked(CaptureFilter filter, Plan plan)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(plan);
        if (filter.Kinds?.Where(k => !plan.Spec.Capture.Kinds.Contains(k)).ToList() is { Count: > 0 } uncaptured)
            throw new UsageException($"--kinds: the spec's capture.kinds leave out {string.Join(", ", uncaptured.Select(k => k.Name()))}; "
                + $"it captures {string.Join(", ", plan.Spec.Capture.Kinds.Order().Select(k => k.Name()))}");
        if (filter.Sites is { } sites)
        {
            var valid = TraceLayout.Of(plan).SiteNames();
            if (sites.Where(s => !valid.Contains(s)).ToList() is { Count: > 0 } unknown)
                throw new UsageException($"--sites: unknown site {string.Join(", ", unknown.Select(u => $"'{u}'"))} in scenario {plan.Spec.Name}; "
                    + $"its call sites, layers and parameters are {string.Join(", ", valid)}");
        }
        if (filter.From > plan.TotalSteps)
            throw new UsageException($"--steps-range: it starts at step {filter.From}, after the run's last step {plan.TotalSteps}");
        return filter;
    }

    private static HashSet<TensorKind> Kinds(string text)
    {
        var kinds = new HashSet<TensorKind>();
        foreach (string name in Names("--kinds", text))
        {
            kinds.Add(TensorKinds.TryParse(name) is { } kind && name.All(char.IsLetter) ? kind
                : throw new UsageException($"--kinds: unknown tensor kind '{name}': use {string.Join(", ", TensorKinds.All.Order().Select(k => k.Name()))}"));
        }
        return kinds;
    }

    private static List<string> Names(string option, string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList() is { Count: > 0 } names
            ? names
            : throw new UsageException($"{option}: give at least one name");

    private static (int? From, int? To) Range(string text)
    {
        int at = text.IndexOf("..", StringComparison.Ordinal);
        if (at < 0) throw new UsageException($"--steps-range: expected A..B, A.. or ..B (got '{text}')");
        int? from = Step(text[..at], text), to = Step(text[(at + 2)..], text);
        if (from is null && to is null) throw new UsageException($"--steps-range: give a first or a last step (got '{text}')");
        if (from > to) throw new UsageException($"--steps-range: the first step {from} comes after the last {to}");
        return (from, to);
    }

    private static int? Step(string part, string text)
    {
        if (part.Length == 0) return null;
        return int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int step) && step >= 1 && step <= Planner.MaxSteps
            ? step
            : throw new UsageException($"--steps-range: '{part}' in '{text}' is not a step in 1..{Planner.MaxSteps}");
    }
}
