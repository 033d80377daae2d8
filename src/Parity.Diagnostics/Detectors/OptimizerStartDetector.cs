using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// A slot's starting value (RMSprop's mean square, Adagrad's accumulator): update 1, recomputed from the traced gradient
/// with the slot starting at the spec's value and at the other framework's, fits the other one. A start shows at update
/// 1 or not at all, so only a comparison that first diverges at step 1 is tested.
/// </summary>
public abstract class OptimizerStartDetector : IDetector
{
    /// <inheritdoc />
    public abstract string Cause { get; }

    /// <summary>The spec key of the start, e.g. <c>meanSquareInit</c>; its evidence is <c>spec</c>/<c>fitted</c> + the key.</summary>
    protected abstract string Setting { get; }

    /// <summary>What the optimizer and slot are called in a summary, e.g. "RMSprop's mean square".</summary>
    protected abstract string SlotTitle { get; }

    /// <summary>The fix hint.</summary>
    protected abstract string Hint { get; }

    /// <summary>The spec's start of <paramref name="spec"/>, or null when this detector does not apply to it.</summary>
    protected abstract double? SpecStart(OptimizerSpec spec);

    /// <summary><paramref name="spec"/> with its start set to <paramref name="start"/>, or null when that update is undefined (no eps, no start).</summary>
    protected abstract OptimizerSpec? WithStart(OptimizerSpec spec, double start);

    /// <summary>The other framework's start for a spec that starts at <paramref name="specStart"/>.</summary>
    protected abstract double OtherStart(double specStart);

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) => mismatch.Setting.EndsWith(Setting, StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        var spec = context.Spec.Optimizer;
        if (SpecStart(spec) is not { } start) yield break;
        double other = OtherStart(start);
        if (WithStart(spec, other) is not { } alternative) yield break;
        string title = char.ToUpperInvariant(Setting[0]) + Setting[1..];
        foreach (var backend in context.Backends)
        {
            if (AdaptiveUpdateFit.FirstMisfit(context, backend, spec, alternative, firstUpdateOnly: true) is not { AlternativeFits: true } v) continue;
            yield return new Finding(Cause, backend.Name, new FindingLocation(v.Step, RecordPhase.Train, new TensorKey(TensorKind.Parameter, v.Parameter)),
                $"{SlotTitle} at the first update fits a start at {other}, not the spec's {start}",
                new Dictionary<string, object?>
                {
                    ["spec" + title] = start,
                    ["fitted" + title] = Fit.Round(AdaptiveUpdateFit.FittedStart(spec, v.Gradient, v.Update)),
                    ["relativeErrorSpecStart"] = Fit.Round(v.SpecError),
                    ["relativeErrorOtherStart"] = Fit.Round(v.AlternativeError),
                    ["parameter"] = v.Parameter,
                },
                Hint);
        }
    }
}
