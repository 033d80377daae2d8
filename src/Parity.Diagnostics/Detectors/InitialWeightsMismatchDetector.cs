using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>initial-weights-mismatch</c>: the comparison fails at step 0, before any training: the backends start from
/// different numbers. Under <c>init: framework</c> that is each framework's own initializer and RNG stream (the seed
/// 002 mechanism: one extra layer shifts every later draw); under <c>init: injected</c> it is a loading bug. A
/// weight that is the reference's transposed is left to <c>weight-layout</c>.
/// </summary>
public sealed class InitialWeightsMismatchDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.InitialWeightsMismatch;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) =>
        mismatch.Setting.StartsWith("init", StringComparison.OrdinalIgnoreCase) || mismatch.Setting.Contains(".init", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        foreach (var comparison in context.Comparisons)
        {
            var failing = comparison.Checks.Where(c => c.Phase == RecordPhase.Initial && c.CountsAsFailure).ToList();
            if (failing.Count == 0) continue;
            var transposed = failing.Where(c => WeightLayoutDetector.IsTransposed(context, comparison, c)).Select(c => c.Key).ToHashSet();
            var mismatched = failing.Where(c => !transposed.Contains(c.Key)).ToList();
            if (mismatched.Count == 0) continue;
            var first = mismatched[0];
            bool framework = context.Spec.Init.Mode == InitMode.Framework;
            yield return new Finding(Cause, comparison.Actual, new FindingLocation(0, RecordPhase.Initial, first.Key),
                $"{mismatched.Count} tensor(s) differ from {comparison.Expected} at step 0, before any training: {string.Join(", ", mismatched.Take(4).Select(c => c.Key.ToString()))}",
                new Dictionary<string, object?>
                {
                    ["initMode"] = framework ? "framework" : "injected",
                    ["tensorsDiffering"] = mismatched.Count,
                    ["first"] = first.Key.ToString(),
                    ["maxAbs"] = Fit.Round(first.Metrics.MaxAbs),
                    ["rmse"] = Fit.Round(first.Metrics.Rmse),
                    ["cosine"] = Fit.Round(first.Metrics.Cosine),
                    ["shapeMismatch"] = first.Metrics.ShapeMismatch,
                },
                framework
                    ? "Framework-native initializers draw from the framework's own RNG stream; any extra layer or op can shift the draws (seed 002). Use init: injected to compare the math, or seed each initializer explicitly."
                    : "The backend did not load the injected initial state exactly: check the weight layout and the order in which parameters are set.");
        }
    }
}
