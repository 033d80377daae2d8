using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>slow-running-stats-warmup</c>: with momentum m, after s updates the running statistics still hold
/// (1-m)^s of their initial values (0 and 1), so eval mode normalizes with statistics that are not yet the
/// population's. The finding needs both: an eval step where eval accuracy trails train accuracy by more than
/// <see cref="AccuracyGap"/> while (1-m)^(updates) is above <see cref="ResidualWeight"/>. The traced distance |running mean - batch mean|
/// and its fitted per-step decay (near 1-m while the batch statistics are steady) are evidence, not a condition: the
/// batch statistics themselves drift while the network trains. Seed 001: slim
/// decay 0.999 (m = 0.001) on a small data set. Reported once, on the reference: it is a property of the spec.
/// </summary>
public sealed class SlowRunningStatsWarmupDetector : IDetector
{
    /// <summary>Eval accuracy this far below train accuracy counts as a lag.</summary>
    public const double AccuracyGap = 0.1;

    /// <summary>Share of the initial value the running statistics may still hold for the warm-up to count as unfinished.</summary>
    public const double ResidualWeight = 0.05;

    /// <inheritdoc />
    public string Cause => CauseIds.SlowRunningStatsWarmup;

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        if (context.ReferenceTrace is not { } reference) yield break;
        foreach (var bn in context.Graph.BatchNorms.Where(b => b.Momentum > 0 && b.Momentum < 1))
            if (Check(context, reference, bn) is { } finding) yield return finding;
    }

    private Finding? Check(DiagnosisContext context, BackendTrace backend, BatchNormSpec bn)
    {
        int callsPerStep = BatchNormTrace.CallsOf(context.Graph, bn.Name).Count;
        double trainAccuracy = double.NaN;
        (int Step, double Eval, double Train, double Residual)? worst = null;
        var distances = new List<(int Step, double Distance)>();
        var firstCall = BatchNormTrace.CallsOf(context.Graph, bn.Name)[0];
        foreach (var r in backend.Trace.Records())
        {
            if (r.Phase == RecordPhase.Train)
            {
                if (r.Find(TensorKind.TrainAccuracy) is { } acc) trainAccuracy = acc.Data[0];
                if (r.Find(TensorKind.RunningMean, bn.Name) is { } run && BatchNormTrace.BatchStatistics(r, context.Graph, firstCall) is { } stats)
                {
                    double d = 0;
                    for (int i = 0; i < run.Length; i++) d += Math.Abs(run.Data[i] - stats.Mean[i]);
                    distances.Add((r.Step, d / run.Length));
                }
            }
            else if (r.Phase == RecordPhase.Eval && r.Find(TensorKind.EvalAccuracy) is { } evalAcc && double.IsFinite(trainAccuracy))
            {
                double residual = Math.Pow(1 - bn.Momentum, (double)r.Step * callsPerStep);
                double gap = trainAccuracy - evalAcc.Data[0];
                if (residual > ResidualWeight && gap > AccuracyGap && (worst is null || gap > worst.Value.Train - worst.Value.Eval))
                    worst = (r.Step, evalAcc.Data[0], trainAccuracy, residual);
            }
        }
        if (worst is not { } w) return null;
        double? decay = FittedDecay(distances, w.Step);
        var evidence = new Dictionary<string, object?>
        {
            ["instance"] = bn.Name,
            ["momentum"] = bn.Momentum,
            ["decayPerUpdate"] = Fit.Round(1 - bn.Momentum),
            ["step"] = w.Step,
            ["evalAccuracy"] = Fit.Round(w.Eval),
            ["trainAccuracy"] = Fit.Round(w.Train),
            ["initialWeightLeft"] = Fit.Round(w.Residual),
            ["stepsToOnePercent"] = (int)Math.Ceiling(Math.Log(0.01) / Math.Log(1 - bn.Momentum) / callsPerStep),
            ["fittedDistanceDecayPerStep"] = decay is double dd ? Fit.Round(dd) : null,
            ["runningToBatchMeanDistanceFirst"] = distances.Count > 0 ? Fit.Round(distances[0].Distance) : null,
            ["runningToBatchMeanDistanceLast"] = distances.Count > 0 ? Fit.Round(distances[^1].Distance) : null,
        };
        return new Finding(Cause, backend.Name, new FindingLocation(w.Step, RecordPhase.Eval, new TensorKey(TensorKind.EvalAccuracy, "")),
            $"eval accuracy {Fit.Round(w.Eval)} trails train accuracy {Fit.Round(w.Train)} at step {w.Step}: the running statistics of '{bn.Name}' (momentum {bn.Momentum}) still hold {Fit.Round(w.Residual * 100)}% of their initial values",
            evidence,
            $"Use a larger momentum for short runs (seed 001: slim decay 0.95, i.e. momentum 0.05), or train for about {evidence["stepsToOnePercent"]} steps before judging eval accuracy.")
        {
            IsModelProperty = true,
        };
    }

    /// <summary>Geometric fit of the running-to-batch distance over the steps up to <paramref name="until"/>: exp(slope of log distance per step).</summary>
    private static double? FittedDecay(List<(int Step, double Distance)> distances, int until)
    {
        var points = distances.Where(d => d.Step <= until && d.Distance > 0).ToList();
        if (points.Count < 3) return null;
        double mx = points.Average(p => (double)p.Step), my = points.Average(p => Math.Log(p.Distance));
        double sxy = points.Sum(p => (p.Step - mx) * (Math.Log(p.Distance) - my)), sxx = points.Sum(p => (p.Step - mx) * (p.Step - mx));
        return sxx > 0 ? Math.Exp(sxy / sxx) : null;
    }
}
