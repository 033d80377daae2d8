using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>decoupled-decay-lr</c>: the spec's decoupled decay shrinks by lr wd (PyTorch AdamW, Keras) and the backend by wd
/// alone (TF1 contrib AdamW), or the other way round. The fitted factor k of p_t = (1 - k) p_{t-1} - U (<see cref="DecayFit"/>,
/// U the optimizer's step recomputed from the backend's own traced slots) is lr wd or wd; the gradient the optimizer took
/// carries no decay either way. It shows in the parameters after step 1.
/// </summary>
public sealed class DecoupledDecayLearningRateDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.DecoupledDecayLearningRate;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) =>
        mismatch.Setting.EndsWith("multiplyByLearningRate", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        if (context.Spec.Optimizer.WeightDecay is not { Form: WeightDecayForm.Decoupled } decay) yield break;
        double lr = context.Spec.Optimizer.LearningRate;
        double expected = decay.DecoupledFactor(lr);
        double other = decay.MultiplyByLearningRate ? decay.Rate : lr * decay.Rate;
        foreach (var backend in context.Backends)
        {
            foreach (var o in DecayFit.Observe(context, backend))
            {
                if (Math.Abs(o.Shrink - expected) <= 0.1 * Math.Abs(other - expected)) continue;
                bool noRateInGradient = o.GradientRate is not { } rate || Math.Abs(rate) <= 0.1 * decay.Rate;
                if (DecayFit.IsRather(o.Shrink, other, expected) && noRateInGradient)
                {
                    yield return new Finding(Cause, backend.Name, new FindingLocation(o.Step, RecordPhase.Train, new TensorKey(TensorKind.Parameter, o.Parameter)),
                        decay.MultiplyByLearningRate
                            ? $"decoupled weight decay shrinks p by wd = {decay.Rate}, not by lr*wd = {expected} (the decay is not multiplied by the learning rate)"
                            : $"decoupled weight decay shrinks p by lr*wd = {other}, not by wd = {decay.Rate} (the decay is multiplied by the learning rate)",
                        new Dictionary<string, object?>
                        {
                            ["specMultiplyByLearningRate"] = decay.MultiplyByLearningRate,
                            ["rate"] = decay.Rate,
                            ["lr"] = lr,
                            ["expectedShrink"] = expected,
                            ["fittedShrink"] = Fit.Round(o.Shrink),
                            ["parameter"] = o.Parameter,
                        },
                        "Set optimizer.weightDecay.multiplyByLearningRate to the framework's: true for torch.optim.AdamW and Keras weight_decay= (p -= lr*wd*p), "
                        + "false for TF1 contrib AdamW (p -= wd*p; its wd is meant to follow the schedule by hand). Equivalent rates: wd_tf1 = lr * wd_torch.");
                }
                break;
            }
        }
    }
}
