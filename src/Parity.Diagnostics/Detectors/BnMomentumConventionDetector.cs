using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>bn-momentum-convention</c>: the running mean is recomputed from the backend's own batch means with the spec's
/// momentum m (run = (1-m) run + m batch, PyTorch meaning [P1]) and with 1 - m (the Keras/ONNX/Chainer meaning
/// [K2, O, C]); the finding says the trace fits 1 - m and not m. The running mean is used because it does not
/// depend on the variance estimator.
/// </summary>
public sealed class BnMomentumConventionDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.BnMomentumConvention;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) =>
        mismatch.Setting.Contains("layers", StringComparison.Ordinal) && mismatch.Setting.EndsWith(".momentum", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        foreach (var bn in context.Graph.BatchNorms)
        {
            if (Math.Abs(bn.Momentum - 0.5) < 1e-12) continue; // m and 1 - m are the same number
            foreach (var backend in context.Backends)
                if (Check(context, backend, bn) is { } finding) yield return finding;
        }
    }

    private Finding? Check(DiagnosisContext context, BackendTrace backend, BatchNormSpec bn)
    {
        var calls = BatchNormTrace.CallsOf(context.Graph, bn.Name);
        int checkedSteps = 0;
        // From the step the backend first diverges at: a convention that changes at step K is tested at step K.
        int first = context.FirstStepToCheck(backend.Name);
        foreach (var step in TraceWalk.Steps(backend.Trace))
        {
            var r = step.Record;
            if (r.Step < first) continue;
            if (r.Phase != RecordPhase.Train || r.Find(TensorKind.RunningMean, bn.Name) is not { } actual) continue;
            if (step.State.At(TensorKind.RunningMean, bn.Name, r.Step - 1) is not { } before) continue;
            var stats = calls.Select(c => BatchNormTrace.BatchStatistics(r, context.Graph, c)).ToList();
            if (stats.Any(s => s is null)) continue;
            if (++checkedSteps > Fit.MaxCheckedSteps) return null;
            var means = stats.Select(s => s!.Value.Mean).ToList();
            double canonical = Fit.RelativeError(BatchNormTrace.Predict(before.Data, means, bn.Momentum), actual.Data);
            double flipped = Fit.RelativeError(BatchNormTrace.Predict(before.Data, means, 1 - bn.Momentum), actual.Data);
            if (!Fit.AlternativeWins(canonical, flipped, actual.DType))
            {
                if (canonical <= Fit.Tolerance(actual.DType)) return null; // the first checkable step fits the spec
                continue;
            }
            return new Finding(Cause, backend.Name, new FindingLocation(r.Step, r.Phase, new TensorKey(TensorKind.RunningMean, bn.Name)),
                $"running mean of '{bn.Name}' follows momentum {Fit.Round(1 - bn.Momentum)} (1 - m), not the spec's {bn.Momentum} (weight of the new batch statistic)",
                new Dictionary<string, object?>
                {
                    ["instance"] = bn.Name,
                    ["specMomentum"] = bn.Momentum,
                    ["fittedMomentum"] = Fit.Round(1 - bn.Momentum),
                    ["relativeErrorWithM"] = Fit.Round(canonical),
                    ["relativeErrorWithOneMinusM"] = Fit.Round(flipped),
                    ["tolerance"] = Fit.Tolerance(actual.DType),
                },
                "Translate the momentum into the framework's meaning: PyTorch/TorchSharp momentum = m; Keras, TF.js, ONNX momentum and Chainer/slim decay = 1 - m (docs/conventions.md section 1).");
        }
        return null;
    }
}
