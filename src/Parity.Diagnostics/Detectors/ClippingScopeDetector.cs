using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>gradient-clipping-scope</c>: SGD updates recomputed from the backend's own momentum buffer and its traced, unclipped
/// gradients fit the other norm scope: one global norm over all gradients (torch clip_grad_norm_, tf.clip_by_global_norm,
/// Keras global_clipnorm) or each tensor's own norm (Keras clipnorm, tf.clip_by_norm) (docs/conventions.md section 9). Below
/// the threshold both leave the gradients alone, so the scope shows at the first step whose global norm exceeds maxNorm.
/// </summary>
public sealed class ClippingScopeDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.GradientClippingScope;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) => mismatch.Setting.Contains("optimizer.clip", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        if (context.Spec.Optimizer is not SgdSpec { Clipping: { Scope: not ClipScope.Value } clip } sgd) yield break;
        var otherScope = clip.Scope == ClipScope.GlobalNorm ? ClipScope.PerTensorNorm : ClipScope.GlobalNorm;
        var alternative = SgdHypothesis.Of(sgd) with { Name = Name(otherScope), Clipping = clip with { Scope = otherScope } };
        foreach (var backend in context.Backends)
        {
            if (SgdUpdateFit.FirstMisfit(context, backend, sgd, _ => [alternative]) is not { } misfit) continue;
            yield return new Finding(Cause, backend.Name, new FindingLocation(misfit.Step, RecordPhase.Train, new TensorKey(TensorKind.Parameter, misfit.Parameter)),
                $"gradients are clipped by {Name(otherScope)}, not by the spec's {Name(clip.Scope)} (maxNorm {clip.Threshold})",
                new Dictionary<string, object?>
                {
                    ["specScope"] = Name(clip.Scope),
                    ["fittedScope"] = Name(otherScope),
                    ["maxNorm"] = clip.Threshold,
                    ["relativeErrorSpecScope"] = Fit.Round(misfit.SpecError),
                    ["relativeErrorOtherScope"] = Fit.Round(misfit.AlternativeError),
                    ["parameter"] = misfit.Parameter,
                },
                "Clip with the framework call that matches optimizer.clip.type: globalNorm is torch.nn.utils.clip_grad_norm_ over all parameters, " +
                "tf.clip_by_global_norm or Keras global_clipnorm; norm is Keras clipnorm or tf.clip_by_norm per variable (docs/conventions.md section 9).");
        }
    }

    private static string Name(ClipScope scope) => scope == ClipScope.GlobalNorm ? "global norm" : "per-tensor norm";
}
