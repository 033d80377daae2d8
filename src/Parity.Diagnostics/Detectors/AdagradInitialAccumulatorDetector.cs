using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>adagrad-initial-accumulator</c>: Adagrad's update 1 fits the accumulator starting at the other value, 0.1 (TF,
/// Keras, TF.js) against 0 (PyTorch, Chainer). A zero start makes update 1 about lr sign(g); a start at 0.1 makes it
/// lr g / sqrt(0.1 + g^2): it shows in the parameters after update 1.
/// </summary>
public sealed class AdagradInitialAccumulatorDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.AdagradInitialAccumulator;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) => mismatch.Setting.EndsWith("initialAccumulator", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        // A zero start needs an eps to take a first step at all (the loader refuses eps 0 with it).
        if (context.Spec.Optimizer is not AdagradSpec spec) yield break;
        var alternative = spec with { InitialAccumulator = spec.InitialAccumulator == 0 ? 0.1 : 0 };
        if (alternative is { InitialAccumulator: 0, Eps: 0 }) yield break;
        foreach (var backend in context.Backends)
        {
            if (AdaptiveUpdateFit.FirstMisfit(context, backend, spec, alternative, firstUpdateOnly: true) is not { AlternativeFits: true } v) continue;
            yield return new Finding(Cause, backend.Name, new FindingLocation(v.Step, RecordPhase.Train, new TensorKey(TensorKind.Parameter, v.Parameter)),
                $"Adagrad's first update fits an accumulator starting at {alternative.InitialAccumulator}, not at the spec's {spec.InitialAccumulator}",
                new Dictionary<string, object?>
                {
                    ["specInitialAccumulator"] = spec.InitialAccumulator,
                    ["fittedInitialAccumulator"] = Fit.Round(AdaptiveUpdateFit.FittedStart(spec, v.Gradient, v.Update)),
                    ["relativeErrorSpecInit"] = Fit.Round(v.SpecError),
                    ["relativeErrorOtherInit"] = Fit.Round(v.AlternativeError),
                    ["parameter"] = v.Parameter,
                },
                "Set optimizer.initialAccumulator to the framework's initial_accumulator_value: 0.1 for TF, Keras and TF.js, 0 for PyTorch (its default) and Chainer (docs/conventions.md, Adagrad).");
        }
    }
}
