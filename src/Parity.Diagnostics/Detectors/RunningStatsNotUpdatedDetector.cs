using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>running-stats-not-updated</c>: a batchnorm instance's running mean and variance still equal their step-0
/// values after training steps whose batch statistics differ from them, although the spec's momentum is positive:
/// the TF1 UPDATE_OPS pitfall of seed 001 [T1] (a train op without a control dependency on the update ops).
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
        double[]? initialMean = null, initialVariance = null;
        FindingLocation? first = null;
        int stepsFrozen = 0, lastStep = 0;
        double largestBatchMean = 0;
        foreach (var r in backend.Trace.Records())
        {
            var mean = r.Find(TensorKind.RunningMean, bn.Name);
            var variance = r.Find(TensorKind.RunningVariance, bn.Name);
            if (mean is null || variance is null) continue;
            if (r.Phase == RecordPhase.Initial)
            {
                initialMean = mean.Data;
                initialVariance = variance.Data;
                continue;
            }
            if (r.Phase != RecordPhase.Train || initialMean is null || initialVariance is null) continue;
            if (!mean.Data.AsSpan().SequenceEqual(initialMean) || !variance.Data.AsSpan().SequenceEqual(initialVariance)) return null;
            foreach (var call in BatchNormTrace.CallsOf(context.Graph, bn.Name))
                if (BatchNormTrace.BatchStatistics(r, context.Graph, call) is { } stats)
                    for (int i = 0; i < stats.Mean.Length; i++) largestBatchMean = Math.Max(largestBatchMean, Math.Abs(stats.Mean[i] - initialMean[i]));
            first ??= new FindingLocation(r.Step, r.Phase, new TensorKey(TensorKind.RunningMean, bn.Name));
            stepsFrozen++;
            lastStep = r.Step;
        }
        // Unchanged statistics only mean something when the batches had something to move them towards.
        if (first is null || largestBatchMean == 0) return null;
        return new Finding(Cause, backend.Name, first,
            $"running statistics of '{bn.Name}' never move from their initial values over {stepsFrozen} traced training steps (momentum {bn.Momentum})",
            new Dictionary<string, object?>
            {
                ["instance"] = bn.Name,
                ["momentum"] = bn.Momentum,
                ["stepsChecked"] = stepsFrozen,
                ["lastStep"] = lastStep,
                ["initialMean"] = Fit.Round(initialMean!.Average()),
                ["initialVariance"] = Fit.Round(initialVariance!.Average()),
                ["largestBatchMeanDistance"] = Fit.Round(largestBatchMean),
            },
            "Run the moving-statistic updates with every training step: in TF1 make the train op depend on tf.GraphKeys.UPDATE_OPS (slim's create_train_op does), or set updates_collections=None (docs/conventions.md section 5).");
    }
}
