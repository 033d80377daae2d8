using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>lr-schedule-count</c>: SGD updates recomputed from the backend's own state and traced gradients fit the spec's
/// learning-rate schedule counted another way (docs/conventions.md section 10): per epoch instead of per update (a PyTorch
/// scheduler stepped once an epoch), or one update early or late (a scheduler stepped before optimizer.step(), or a count
/// that starts at 1). The spec counts updates from 0: update k runs at lr(k). The count shows at the first update whose
/// rate differs between the two countings.
/// </summary>
public sealed class ScheduleCountDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.LrScheduleCount;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) => mismatch.Setting.Contains("optimizer.schedule", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        if (context.Spec.Optimizer is not SgdSpec sgd || sgd.Schedule.IsConstant) yield break;
        int perEpoch = context.Plan?.StepsPerEpoch ?? 0;
        var canonical = SgdHypothesis.Of(sgd);
        var alternatives = new List<SgdHypothesis>
        {
            canonical with { Name = "one update late (update k at lr(k - 1))", LearningRateAt = k => sgd.LearningRateAt(Math.Max(0, k - 1)) },
            canonical with { Name = "one update early (update k at lr(k + 1))", LearningRateAt = k => sgd.LearningRateAt(k + 1) },
        };
        if (perEpoch > 1) alternatives.Insert(0, canonical with { Name = $"per epoch (update k at lr(floor(k / {perEpoch})))", LearningRateAt = k => sgd.LearningRateAt(k / perEpoch) });
        foreach (var backend in context.Backends)
        {
            if (SgdUpdateFit.FirstMisfit(context, backend, sgd, _ => alternatives) is not { } misfit) continue;
            yield return new Finding(Cause, backend.Name, new FindingLocation(misfit.Step, RecordPhase.Train, new TensorKey(TensorKind.Parameter, misfit.Parameter)),
                $"the learning-rate schedule is counted {misfit.Alternative.Name}, not per update from 0: update {misfit.Update} ran at {misfit.Alternative.LearningRateAt(misfit.Update):G6}, the spec's rate is {sgd.LearningRateAt(misfit.Update):G6}",
                new Dictionary<string, object?>
                {
                    ["specSchedule"] = sgd.Schedule.Type,
                    ["fittedCounting"] = misfit.Alternative.Name,
                    ["alsoFitting"] = misfit.AllFitting.Skip(1).ToList(),
                    ["update"] = misfit.Update,
                    ["specLearningRate"] = sgd.LearningRateAt(misfit.Update),
                    ["fittedLearningRate"] = misfit.Alternative.LearningRateAt(misfit.Update),
                    ["relativeErrorSpec"] = Fit.Round(misfit.SpecError),
                    ["relativeErrorFitted"] = Fit.Round(misfit.AlternativeError),
                    ["parameter"] = misfit.Parameter,
                },
                "Step the schedule once per optimizer update, after it (PyTorch: scheduler.step() right after optimizer.step(), not once an epoch; " +
                "TF: minimize(global_step=...) increments after the update; Keras counts optimizer.iterations), with the step size given in updates (docs/conventions.md section 10).");
        }
    }
}
