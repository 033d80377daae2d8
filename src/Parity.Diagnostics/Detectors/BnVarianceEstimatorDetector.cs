using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>bn-variance-estimator</c>: the running variance is recomputed from the backend's own batch variances with the
/// spec's estimator and with the other one (unbiased = biased * N/(N-1) [P1, C]; biased [K2, JS, O]). Evidence: the
/// implied ratio of the stored batch variance to the biased one, (run_t - (1-m) run_{t-1}) / (m var_B), against N/(N-1).
/// </summary>
public sealed class BnVarianceEstimatorDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.BnVarianceEstimator;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) => mismatch.Setting.EndsWith(".runningVariance", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        if (context.BatchSize < 2) yield break;
        foreach (var bn in context.Graph.BatchNorms)
            foreach (var backend in context.Backends)
                if (Check(context, backend, bn) is { } finding) yield return finding;
    }

    private Finding? Check(DiagnosisContext context, BackendTrace backend, BatchNormSpec bn)
    {
        var calls = BatchNormTrace.CallsOf(context.Graph, bn.Name);
        int n = context.BatchSize;
        var other = bn.RunningVariance == RunningVarianceEstimator.Unbiased ? RunningVarianceEstimator.Biased : RunningVarianceEstimator.Unbiased;
        int checkedSteps = 0;
        // From the step the backend first diverges at: a convention that changes at step K is tested at step K.
        int first = context.FirstStepToCheck(backend.Name);
        foreach (var step in TraceWalk.Steps(backend.Trace))
        {
            var r = step.Record;
            if (r.Step < first) continue;
            if (r.Phase != RecordPhase.Train || r.Find(TensorKind.RunningVariance, bn.Name) is not { } actual) continue;
            if (step.State.At(TensorKind.RunningVariance, bn.Name, r.Step - 1) is not { } before) continue;
            var stats = calls.Select(c => BatchNormTrace.BatchStatistics(r, context.Graph, c)).ToList();
            if (stats.Any(s => s is null)) continue;
            if (++checkedSteps > Fit.MaxCheckedSteps) return null;
            var variances = stats.Select(s => s!.Value.Variance).ToList();
            double canonical = Fit.RelativeError(BatchNormTrace.Predict(before.Data, variances, bn.Momentum, BatchNormTrace.VarianceScale(bn.RunningVariance, n)), actual.Data);
            double alternative = Fit.RelativeError(BatchNormTrace.Predict(before.Data, variances, bn.Momentum, BatchNormTrace.VarianceScale(other, n)), actual.Data);
            if (!Fit.AlternativeWins(canonical, alternative, actual.DType))
            {
                if (canonical <= Fit.Tolerance(actual.DType)) return null;
                continue;
            }
            var evidence = new Dictionary<string, object?>
            {
                ["instance"] = bn.Name,
                ["specEstimator"] = Name(bn.RunningVariance),
                ["fittedEstimator"] = Name(other),
                ["batchSize"] = n,
                ["nOverNMinus1"] = Fit.Round(n / (n - 1.0)),
                ["relativeErrorSpecEstimator"] = Fit.Round(canonical),
                ["relativeErrorOtherEstimator"] = Fit.Round(alternative),
            };
            if (calls.Count == 1) evidence["impliedRatio"] = Fit.Round(ImpliedRatio(before.Data, actual.Data, variances[0], bn.Momentum));
            return new Finding(Cause, backend.Name, new FindingLocation(r.Step, r.Phase, new TensorKey(TensorKind.RunningVariance, bn.Name)),
                $"running variance of '{bn.Name}' uses the {Name(other)} batch variance, not the spec's {Name(bn.RunningVariance)} one (factor N/(N-1) = {Fit.Round(n / (n - 1.0))})",
                evidence,
                "Set the spec's runningVariance to what the framework stores (PyTorch, Chainer, TF fused kernels: unbiased; Keras on 2-D input, TF.js, ONNX: biased), or declare the mismatch (docs/conventions.md section 1).");
        }
        return null;
    }

    /// <summary>Median over features of (run_t - (1-m) run_{t-1}) / (m var_B): the factor the backend stored.</summary>
    private static double ImpliedRatio(double[] before, double[] after, double[] batchVariance, double m)
    {
        var ratios = new List<double>();
        for (int i = 0; i < after.Length; i++)
            if (batchVariance[i] > 1e-12) ratios.Add((after[i] - (1 - m) * before[i]) / (m * batchVariance[i]));
        return Fit.Median(ratios);
    }

    private static string Name(RunningVarianceEstimator e) => e == RunningVarianceEstimator.Unbiased ? "unbiased" : "biased";
}
