using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>sgd-momentum-form</c>: SGD updates recomputed from the backend's own momentum buffer and traced gradients fit the
/// other momentum form (docs/conventions.md section 8a). PyTorch, TF1 and TF.js keep b = mu b + g and step by the current
/// lr times b; Keras and Chainer keep m = mu m - lr g, each gradient at its own update's lr. Under a constant lr the two
/// are the same update, so the form shows first at the first update whose lr differs from the one before it (with a step
/// schedule of stepSize s, train step s + 1).
/// </summary>
public sealed class MomentumFormDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.SgdMomentumForm;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) => mismatch.Setting.EndsWith("momentumForm", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        if (context.Spec.Optimizer is not SgdSpec { Momentum: > 0 } sgd || sgd.Schedule.IsConstant) yield break;
        var other = sgd.MomentumForm == MomentumForm.PyTorch ? MomentumForm.Keras : MomentumForm.PyTorch;
        var alternative = SgdHypothesis.Of(sgd) with { Name = Name(other), Form = other };
        foreach (var backend in context.Backends)
        {
            if (SgdUpdateFit.FirstMisfit(context, backend, sgd, _ => [alternative]) is not { } misfit) continue;
            yield return new Finding(Cause, backend.Name, new FindingLocation(misfit.Step, RecordPhase.Train, new TensorKey(TensorKind.Parameter, misfit.Parameter)),
                $"SGD momentum follows the {Name(other)} form, not the spec's {Name(sgd.MomentumForm)}: the updates differ from update {misfit.Update} (0-based), whose learning rate changed",
                new Dictionary<string, object?>
                {
                    ["specForm"] = Name(sgd.MomentumForm),
                    ["fittedForm"] = Name(other),
                    ["update"] = misfit.Update,
                    ["learningRate"] = sgd.LearningRateAt(misfit.Update),
                    ["previousLearningRate"] = misfit.Update > 0 ? sgd.LearningRateAt(misfit.Update - 1) : null,
                    ["relativeErrorSpecForm"] = Fit.Round(misfit.SpecError),
                    ["relativeErrorOtherForm"] = Fit.Round(misfit.AlternativeError),
                    ["parameter"] = misfit.Parameter,
                },
                "Set optimizer.momentumForm to the framework's form (PyTorch, TF1, TF.js: pytorch; Keras, Chainer: keras); under a changing learning rate the two " +
                "forms are different optimizers. A backend that keeps Keras's m traces the canonical buffer as b = -m / lr (docs/conventions.md section 8a).");
        }
    }

    private static string Name(MomentumForm form) => form == MomentumForm.PyTorch ? "pytorch" : "keras";
}
