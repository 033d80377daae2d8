using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>loss-reduction</c>: recomputes an element-wise loss (mean squared error, binary cross-entropy from logits) and its
/// output gradient from the backend's traced outputs and the batch's targets, divided by the element count (the spec's
/// mean), by 1 (a sum: PyTorch reduction='sum') and by the sample count (per-sample sums averaged: Chainer's
/// normalize=False, a hand-written sum over the outputs), and names the divisor the trace fits when the mean does not.
/// Shows in the loss and the output gradient of the first train step; an optimizer without normalization (SGD) then
/// takes steps that many times larger.
/// </summary>
public sealed class LossReductionDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.LossReduction;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) => mismatch.Setting == "loss.reduction";

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        if (!context.Spec.Loss.ElementWise) yield break;
        foreach (var backend in context.Backends)
            if (Check(context, backend) is { } finding) yield return finding;
    }

    private Finding? Check(DiagnosisContext context, BackendTrace backend)
    {
        var function = context.Spec.Loss.Function;
        string last = context.Graph.Calls[^1].Id;
        foreach (var s in LossTrace.Samples(context, backend))
        {
            if (s.Batch.Targets is not { } targets || targets.Length != s.Outputs.Length) return null;
            int n = s.Outputs.Shape[0], width = s.Outputs.Shape[1];
            double canonical = Error(s, targets.Data, function, n * width);
            if (canonical <= Fit.Tolerance(s.DType)) return null;
            (string Reduction, int Divisor, double Error)[] alternatives =
            [
                ("sum", 1, Error(s, targets.Data, function, 1)),
                ("sumOverOutputs", n, Error(s, targets.Data, function, n)),
            ];
            var best = alternatives.MinBy(a => a.Error);
            if (!Fit.AlternativeWins(canonical, best.Error, s.DType)) continue;
            var kind = s.Gradient is null ? TensorKind.Loss : TensorKind.OutputGradient;
            string what = best.Reduction == "sum" ? "the sum over all elements" : "per-sample sums averaged over the batch";
            return new Finding(Cause, backend.Name, new FindingLocation(s.Step, RecordPhase.Train, new TensorKey(kind, kind == TensorKind.Loss ? "" : last)),
                $"the {context.Spec.Loss.Type} loss and its gradient fit {what} ({n * width / best.Divisor} times the mean); the spec means the mean over all {n * width} elements",
                new Dictionary<string, object?>
                {
                    ["loss"] = context.Spec.Loss.Type,
                    ["fittedReduction"] = best.Reduction,
                    ["factor"] = n * width / best.Divisor,
                    ["relativeErrorMean"] = Fit.Round(canonical),
                    ["relativeErrorFitted"] = Fit.Round(best.Error),
                },
                "Use the mean over every element: PyTorch MSELoss / BCEWithLogitsLoss with reduction 'mean' (the default), Keras's " +
                "losses (per-sample mean over the outputs, then the batch mean), tf.losses with their default reduction; a sum " +
                "scales the gradient by the element count (docs/conventions.md, losses).");
        }
        return null;
    }

    private static double Error(LossSample s, double[] t, LossFunction function, int divisor)
    {
        var y = s.Outputs.Data;
        var gradient = new double[y.Length];
        double total = 0;
        for (int i = 0; i < y.Length; i++)
        {
            if (function == LossFunction.MeanSquaredError)
            {
                double d = y[i] - t[i];
                total += d * d;
                gradient[i] = 2 * d / divisor;
            }
            else
            {
                total += Math.Max(y[i], 0) - y[i] * t[i] + Math.Log(1 + Math.Exp(-Math.Abs(y[i])));
                gradient[i] = (1 / (1 + Math.Exp(-y[i])) - t[i]) / divisor;
            }
        }
        return LossTrace.Error(s, total / divisor, gradient);
    }
}
