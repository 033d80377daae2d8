using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>running-stats-not-updated</c>: training steps leave a batchnorm instance's running mean and variance exactly as
/// they were before the step (their step-0 values, or the values they stopped at), although the batch statistics differ
/// from them and the spec's momentum is positive: the TF1 UPDATE_OPS pitfall of seed 001 [T1] (a train op without a
/// control dependency on the update ops), or an update that stops at some step. Checked from the backend's first
/// divergence on.
/// </summary>
public sealed class RunningStatsNotUpdatedDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.RunningStatsNotUpdated;

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        foreach (var bn in context.Graph.BatchNorms.Where(b => b.Momentum > 0))
            foreach (var backend in context.Backends)
                if (Check(context, backend, bn) is { } finding) yield return finding;
    }

    private Finding? Check(DiagnosisContext context, BackendTrace backend, BatchNormSpec bn)
    {
        FindingLocation? first = null;
        int stepsFrozen = 0, lastStep = 0, from = context.FirstStepToCheck(backend.Name);
        double largestBatchMean = 0;
        double[]? frozenMean = null, frozenVariance = null;
        foreach (var step in TraceWalk.Steps(backend.Trace))
        {
            var r = step.Record;
            if (r.Phase != RecordPhase.Train || r.Step < from) continue;
            var mean = r.Find(TensorKind.RunningMean, bn.Name);
            var variance = r.Find(TensorKind.RunningVariance, bn.Name);
            var meanBefore = step.State.At(TensorKind.RunningMean, bn.Name, r.Step - 1);
            var varianceBefore = step.State.At(TensorKind.RunningVariance, bn.Name, r.Step - 1);
            if (mean is null || variance is null || meanBefore is null || varianceBefore is null) continue;
            // Stopped: the step left them exactly as they were. The first checkable step that moved them ends the check.
            if (!mean.Data.AsSpan().SequenceEqual(meanBefore.Data) || !variance.Data.AsSpan().SequenceEqual(varianceBefore.Data)) return null;
            foreach (var call in BatchNormTrace.CallsOf(context.Graph, bn.Name))
                if (BatchNormTrace.BatchStatistics(r, context.Graph, call) is { } stats)
                    for (int i = 0; i < stats.Mean.Length; i++) largestBatchMean = Math.Max(largestBatchMean, Math.Abs(stats.Mean[i] - meanBefore.Data[i]));
            first ??= new FindingLocation(r.Step, r.Phase, new TensorKey(TensorKind.RunningMean, bn.Name));
            frozenMean ??= meanBefore.Data;
            frozenVariance ??= varianceBefore.Data;
            stepsFrozen++;
            lastStep = r.Step;
            if (stepsFrozen >= Fit.MaxCheckedSteps) break;
        }
        // Unchanged statistics only mean something when the batches had something to move them towards.
        if (first is null || largestBatchMean == 0) return null;
        return new Finding(Cause, backend.Name, first,
            first.Step <= 1
                ? $"running statistics of '{bn.Name}' never move from their initial values over {stepsFrozen} traced training steps (momentum {bn.Momentum})"
                : $"running statistics of '{bn.Name}' stop moving at step {first.Step} (unchanged over {stepsFrozen} traced training steps, momentum {bn.Momentum})",
            new Dictionary<string, object?>
            {
                ["instance"] = bn.Name,
                ["momentum"] = bn.Momentum,
                ["stepsChecked"] = stepsFrozen,
                ["lastStep"] = lastStep,
                ["frozenSinceStep"] = first.Step,
                ["frozenMean"] = Fit.Round(frozenMean!.Average()),
                ["frozenVariance"] = Fit.Round(frozenVariance!.Average()),
                ["largestBatchMeanDistance"] = Fit.Round(largestBatchMean),
            },
            "Run the moving-statistic updates with every training step: in TF1 make the train op depend on tf.GraphKeys.UPDATE_OPS (slim's create_train_op does), or set updates_collections=None (docs/conventions.md section 5).");
    }
}
