using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>rmsprop-mean-square-init</c>: RMSprop's update 1 fits the mean square starting at the other value, 1 (TF1's
/// RMSPropOptimizer) against 0 (PyTorch, Keras, TF.js). With rho 0.9 a zero start makes update 1 about
/// 3.16 lr sign(g); a start at 1 makes it about lr g / sqrt(0.9): it shows in the parameters after update 1.
/// </summary>
public sealed class RmspropMeanSquareInitDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.RmspropMeanSquareInit;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) => mismatch.Setting.EndsWith("meanSquareInit", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        if (context.Spec.Optimizer is not RmspropSpec spec) yield break;
        double other = spec.MeanSquareInit == 0 ? 1 : 0;
        foreach (var backend in context.Backends)
        {
            if (AdaptiveUpdateFit.FirstMisfit(context, backend, spec, spec with { MeanSquareInit = other }, firstUpdateOnly: true) is not { AlternativeFits: true } v) continue;
            yield return new Finding(Cause, backend.Name, new FindingLocation(v.Step, RecordPhase.Train, new TensorKey(TensorKind.Parameter, v.Parameter)),
                $"RMSprop's first update fits a mean square starting at {other}, not at the spec's {spec.MeanSquareInit}",
                new Dictionary<string, object?>
                {
                    ["specMeanSquareInit"] = spec.MeanSquareInit,
                    ["fittedMeanSquareInit"] = Fit.Round(AdaptiveUpdateFit.FittedStart(spec, v.Gradient, v.Update)),
                    ["relativeErrorSpecInit"] = Fit.Round(v.SpecError),
                    ["relativeErrorOtherInit"] = Fit.Round(v.AlternativeError),
                    ["parameter"] = v.Parameter,
                },
                "Set optimizer.meanSquareInit to the framework's start: 1 for TF1's RMSPropOptimizer (its ms slot starts at ones), 0 for PyTorch, Keras and TF.js (docs/conventions.md, RMSprop).");
        }
    }
}
