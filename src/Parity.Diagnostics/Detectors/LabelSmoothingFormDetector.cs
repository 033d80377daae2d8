using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>label-smoothing-form</c>: recomputes a softmax cross-entropy step's loss and logit gradient from the backend's traced
/// logits and the batch's labels under three smoothings: the spec's (1 - e) onehot + e/C, none (smoothing dropped), and the
/// binary form y(1 - e) + e/2 (Keras's and TF.js's sigmoid smoothing applied to one-hot targets), and names the one the
/// trace fits when the spec's does not. Shows in the loss and the output gradient of the first train step.
/// </summary>
public sealed class LabelSmoothingFormDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.LabelSmoothingForm;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) => mismatch.Setting == "loss.labelSmoothing";

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        var loss = context.Spec.Loss;
        if (loss.Function != LossFunction.SoftmaxCrossEntropy || loss.LabelSmoothing == 0) yield break;
        foreach (var backend in context.Backends)
            if (Check(context, backend, loss.LabelSmoothing) is { } finding) yield return finding;
    }

    private Finding? Check(DiagnosisContext context, BackendTrace backend, double e)
    {
        string last = context.Graph.Calls[^1].Id;
        foreach (var s in LossTrace.Samples(context, backend))
        {
            int classes = s.Outputs.Shape[1];
            double canonical = Error(s, e, classes);
            if (canonical <= Fit.Tolerance(s.DType)) return null;
            (string Form, double Error)[] alternatives =
            [
                ("none", Error(s, 0, classes)),
                ("binary", Error(s, e, 2)),
            ];
            var best = alternatives.MinBy(a => a.Error);
            if (!Fit.AlternativeWins(canonical, best.Error, s.DType)) continue;
            var kind = s.Gradient is null ? TensorKind.Loss : TensorKind.OutputGradient;
            string what = best.Form == "none"
                ? "no label smoothing at all"
                : $"the binary form y(1 - e) + e/2 (off-label target {Fit.Round(e / 2)} instead of e/C = {Fit.Round(e / classes)})";
            return new Finding(Cause, backend.Name, new FindingLocation(s.Step, RecordPhase.Train, new TensorKey(kind, kind == TensorKind.Loss ? "" : last)),
                $"the loss and logit gradient fit {what}; the spec smooths by {e} over {classes} classes, (1 - e) onehot + e/C",
                new Dictionary<string, object?>
                {
                    ["specSmoothing"] = e,
                    ["classes"] = classes,
                    ["fittedForm"] = best.Form,
                    ["relativeErrorSpecForm"] = Fit.Round(canonical),
                    ["relativeErrorFittedForm"] = Fit.Round(best.Error),
                },
                "Smooth categorical targets as (1 - e) onehot + e/C in every framework: PyTorch CrossEntropyLoss(label_smoothing=e), " +
                "Keras CategoricalCrossentropy(label_smoothing=e) and tf.losses.softmaxCrossEntropy do; a sigmoid loss's smoothing " +
                "(y(1 - e) + e/2) or a loss without the argument does not (docs/conventions.md, losses).");
        }
        return null;
    }

    // Mean over the batch of sum_c q_c (lse - z_c), gradient (softmax - q) / n, with q = (1 - e) onehot + e/spreadOver.
    private static double Error(LossSample s, double e, int spreadOver)
    {
        int n = s.Outputs.Shape[0], classes = s.Outputs.Shape[1];
        var z = s.Outputs.Data;
        var gradient = new double[z.Length];
        double total = 0, off = e / spreadOver, on = 1 - e + off;
        for (int i = 0; i < n; i++)
        {
            double max = double.NegativeInfinity;
            for (int c = 0; c < classes; c++) max = Math.Max(max, z[i * classes + c]);
            double sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.Exp(z[i * classes + c] - max);
            double lse = Math.Log(sum) + max;
            for (int c = 0; c < classes; c++)
            {
                double q = c == s.Batch.Labels[i] ? on : off;
                total += q * (lse - z[i * classes + c]);
                gradient[i * classes + c] = (Math.Exp(z[i * classes + c] - lse) - q) / n;
            }
        }
        return LossTrace.Error(s, total / n, gradient);
    }
}
