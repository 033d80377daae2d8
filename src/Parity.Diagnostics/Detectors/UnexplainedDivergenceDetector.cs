using Parity.Comparison;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>unexplained-divergence</c>: a comparison has a first divergence that no declared convention mismatch covers and
/// no other detector explained for that backend. Runs after every other detector (<see cref="DiagnosisContext.Earlier"/>).
/// Model properties that every backend shows alike (<see cref="Finding.IsModelProperty"/>) do not explain a difference
/// between backends, so they do not count.
/// </summary>
public sealed class UnexplainedDivergenceDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.UnexplainedDivergence;

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        foreach (var comparison in context.Comparisons)
        {
            if (comparison.FirstDivergence is not { } d || d.ExplainedBy.Count > 0 || d.Origin.Status == CheckStatus.ExplainedByMismatch) continue;
            if (context.Earlier.Any(f => !f.IsModelProperty && f.Backend == comparison.Actual)) continue;
            var o = d.Origin;
            yield return new Finding(Cause, comparison.Actual, new FindingLocation(o.Step, o.Phase, o.Key),
                $"{comparison.Actual} first differs from {comparison.Expected} at {o.Key} (step {o.Step}, {(d.IsOrigin ? "origin: every input passed" : "upstream not provably equal")}); no known cause fits",
                new Dictionary<string, object?>
                {
                    ["tensor"] = o.Key.ToString(),
                    ["isOrigin"] = d.IsOrigin,
                    ["score"] = Fit.Round(o.Score),
                    ["maxAbs"] = Fit.Round(o.Metrics.MaxAbs),
                    ["rmse"] = Fit.Round(o.Metrics.Rmse),
                    ["cosine"] = Fit.Round(o.Metrics.Cosine),
                    ["upstreamPassed"] = string.Join(", ", d.UpstreamPassed.Select(k => k.ToString())),
                },
                "Inspect the operation that produces this tensor from the passing upstream tensors; compare it with docs/conventions.md and the framework's source, and write a detector if it is a new convention.");
        }
    }
}
