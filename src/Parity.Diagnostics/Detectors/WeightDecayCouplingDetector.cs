using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>weight-decay-coupling</c>: the spec's weight decay is coupled (g + wd p handed to the optimizer, PyTorch's
/// weight_decay=) and the backend shrinks the parameters outside the optimizer instead (AdamW, Keras weight_decay=), or
/// the other way round. Fitted per step (<see cref="DecayFit"/>) from the backend's own traced gradient, optimizer slots
/// and parameters: the rate r of the gradient its first slot took (g + r p) and the factor k it shrank the parameters by
/// outside the optimizer's step. Coupled is (k, r) = (0, wd), decoupled (lr wd or wd, 0). The two agree without
/// momentum or Adam state, so the cause needs a slot; it shows in that slot after step 1.
/// </summary>
public sealed class WeightDecayCouplingDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.WeightDecayCoupling;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) => mismatch.Setting.EndsWith("weightDecay.form", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        if (context.Spec.Optimizer.WeightDecay is not { Form: WeightDecayForm.Coupled or WeightDecayForm.Decoupled } decay) yield break;
        double lr = context.Spec.Optimizer.LearningRate;
        bool coupled = decay.Form == WeightDecayForm.Coupled;
        // The spec's (k, r) and the other form's with the same strength: coupled wd against the lr wd shrink of AdamW and Keras.
        var (specShrink, specRate) = coupled ? (0.0, decay.Rate) : (decay.DecoupledFactor(lr), 0.0);
        var (otherShrink, otherRate) = coupled ? (lr * decay.Rate, 0.0) : (0.0, decay.DecoupledFactor(lr) / lr);
        foreach (var backend in context.Backends)
        {
            foreach (var o in DecayFit.Observe(context, backend))
            {
                if (o.GradientRate is not { } rate) break;
                bool specFits = Math.Abs(o.Shrink - specShrink) <= 0.1 * Math.Abs(otherShrink - specShrink)
                    && Math.Abs(rate - specRate) <= 0.1 * Math.Abs(otherRate - specRate);
                if (specFits) continue;
                if (DecayFit.IsRather(o.Shrink, otherShrink, specShrink) && DecayFit.IsRather(rate, otherRate, specRate))
                {
                    string other = coupled ? "decoupled" : "coupled";
                    yield return new Finding(Cause, backend.Name, new FindingLocation(o.Step, RecordPhase.Train, new TensorKey(TensorKind.OptimizerSlot, o.FirstSlot!)),
                        $"weight decay is {other}, not the spec's {decay.FormName} (rate {decay.Rate}): "
                        + (coupled ? "the parameters shrink outside the optimizer and its state never sees wd*p" : "wd*p goes through the optimizer's state instead of shrinking the parameters"),
                        new Dictionary<string, object?>
                        {
                            ["specForm"] = decay.FormName,
                            ["fittedForm"] = other,
                            ["rate"] = decay.Rate,
                            ["fittedShrink"] = Fit.Round(o.Shrink),
                            ["fittedGradientRate"] = Fit.Round(rate),
                            ["expectedShrink"] = specShrink,
                            ["expectedGradientRate"] = specRate,
                            ["parameter"] = o.Parameter,
                        },
                        "Match optimizer.weightDecay.form to the framework: coupled is PyTorch's weight_decay= on SGD, Adam, RMSprop, Adagrad; decoupled is "
                        + "torch.optim.AdamW and Keras's weight_decay= (docs/conventions.md, weight decay). With momentum or Adam the two train differently.");
                }
                break; // the first step that does not fit decides: this cause or another one
            }
        }
    }
}
