using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>rmsprop-epsilon-placement</c>: RMSprop updates recomputed from the backend's traced gradients and slots fit eps
/// on the other side of the square root: sqrt(s) + eps (PyTorch, Chainer) against sqrt(s + eps) (Keras 3, TF1's
/// kernel, TF.js). The two differ where sqrt(s) is comparable to eps, so it shows from update 1 on small gradients.
/// </summary>
public sealed class RmspropEpsilonPlacementDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.RmspropEpsilonPlacement;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) => mismatch.Setting.EndsWith("epsilonPlacement", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        // With eps 0 the two placements are the same number.
        if (context.Spec.Optimizer is not RmspropSpec { Eps: > 0 } spec) yield break;
        var other = spec.EpsilonPlacement == EpsilonPlacement.Outside ? EpsilonPlacement.Inside : EpsilonPlacement.Outside;
        foreach (var backend in context.Backends)
        {
            if (AdaptiveUpdateFit.FirstMisfit(context, backend, spec, spec with { EpsilonPlacement = other }, firstUpdateOnly: false) is not { AlternativeFits: true } v) continue;
            yield return new Finding(Cause, backend.Name, new FindingLocation(v.Step, RecordPhase.Train, new TensorKey(TensorKind.Parameter, v.Parameter)),
                $"RMSprop updates put eps {Name(other)} the square root, not {Name(spec.EpsilonPlacement)} as the spec does (eps {spec.Eps})",
                new Dictionary<string, object?>
                {
                    ["specPlacement"] = Name(spec.EpsilonPlacement),
                    ["fittedPlacement"] = Name(other),
                    ["eps"] = spec.Eps,
                    ["relativeErrorSpecPlacement"] = Fit.Round(v.SpecError),
                    ["relativeErrorOtherPlacement"] = Fit.Round(v.AlternativeError),
                    ["parameter"] = v.Parameter,
                },
                "Set optimizer.epsilonPlacement to the framework's: \"outside\" for PyTorch and Chainer (torch.optim.RMSprop has no other), \"inside\" for Keras 3, TF1's RMSPropOptimizer and TF.js (docs/conventions.md, RMSprop).");
        }
    }

    private static string Name(EpsilonPlacement p) => p == EpsilonPlacement.Outside ? "outside" : "inside";
}
