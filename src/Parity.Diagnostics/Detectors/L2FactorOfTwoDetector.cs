using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>l2-factor-of-two</c>: the L2 term in the backend's reported loss is not the spec's. An L2 loss term
/// coefficient * sum(w^2) has the gradient 2 coefficient w, so PyTorch's weight_decay = wd equals a Keras or TF.js l2 of
/// wd / 2: porting one number unchanged doubles or halves the decay, and only a loss-term form reports it in the loss.
/// The backend's loss term is fitted per step as (loss - cross-entropy of its own traced logits) / sum(w^2) over the
/// decayed parameters before the step, and compared with the spec's coefficient (0 for a gradient-term or decoupled decay)
/// and the factor-of-two alternatives. It shows in the loss value of step 1.
/// </summary>
public sealed class L2FactorOfTwoDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.L2FactorOfTwo;

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        if (context.Spec.Optimizer.WeightDecay is not { } decay || context.Plan is not { } plan) yield break;
        var decayed = context.Graph.Parameters.Where(decay.Applies).Select(p => p.Name).ToList();
        string logitsSite = context.Graph.Calls[^1].Id;
        bool lossTerm = decay.Form == WeightDecayForm.L2Loss;
        double expected = lossTerm ? decay.Rate : 0;
        (double Coefficient, string Meaning)[] candidates = lossTerm
            ? [(0, "no L2 term in the loss: the decay is a gradient term (PyTorch weight_decay=), which the loss does not report"),
               (decay.Rate / 2, "half the coefficient: scale * sum(w^2) / 2 (tf.nn.l2_loss, slim l2_regularizer)")]
            : [(decay.Rate, "the rate used as an L2 loss coefficient (Keras l2(wd)): the gradient gains 2*wd*w, twice the spec's decay"),
               (decay.Rate / 2, "the equivalent L2 loss coefficient wd/2: the same gradient, but the reported loss includes the term")];
        foreach (var backend in context.Backends)
        {
            int first = context.FirstStepToCheck(backend.Name);
            foreach (var step in TraceWalk.Steps(backend.Trace))
            {
                var r = step.Record;
                if (r.Phase != RecordPhase.Train || r.Step < first) continue;
                if (r.Step >= first + Fit.MaxCheckedSteps) break;
                if (r.Find(TensorKind.Loss) is not { } loss || r.Find(TensorKind.Forward, logitsSite) is not { } logits) continue;
                double squares = 0;
                bool complete = true;
                foreach (var name in decayed)
                {
                    if (step.State.At(TensorKind.Parameter, name, r.Step - 1) is not { } w)
                    {
                        complete = false;
                        break;
                    }
                    foreach (var x in w.Data) squares += x * x;
                }
                if (!complete || squares == 0) continue;
                double fitted = (loss.Data[0] - CrossEntropy(logits, plan.BatchFor(r.Step).Labels)) / squares;
                double nearest = candidates.Min(c => Math.Abs(c.Coefficient - expected));
                if (Math.Abs(fitted - expected) <= 0.1 * nearest) continue;
                foreach (var (coefficient, meaning) in candidates)
                {
                    if (!DecayFit.IsRather(fitted, coefficient, expected)) continue;
                    yield return new Finding(Cause, backend.Name, new FindingLocation(r.Step, RecordPhase.Train, new TensorKey(TensorKind.Loss, "")),
                        $"the loss holds {Fit.Round(fitted)} * sum(w^2), not the spec's {(lossTerm ? $"l2Loss coefficient {decay.Rate}" : $"{decay.FormName} decay (no loss term, rate {decay.Rate})")}: {meaning}",
                        new Dictionary<string, object?>
                        {
                            ["specForm"] = decay.FormName,
                            ["specLossCoefficient"] = expected,
                            ["fittedLossCoefficient"] = Fit.Round(fitted),
                            ["fittedGradientRate"] = Fit.Round(2 * fitted),
                            ["sumOfSquares"] = Fit.Round(squares),
                        },
                        "An L2 loss coefficient l2 decays like a gradient-term rate of 2*l2: PyTorch weight_decay = 2 * Keras/TF.js l2. Write the framework's form in "
                        + "optimizer.weightDecay (l2Loss with its coefficient, or coupled with its rate) instead of carrying the number over (docs/conventions.md, weight decay).");
                    break;
                }
                break;
            }
        }
    }

    /// <summary>Mean softmax cross-entropy of traced logits [n, classes] against the batch's labels, in float64.</summary>
    private static double CrossEntropy(Tensors.Tensor logits, int[] labels)
    {
        int n = logits.Shape[0], classes = logits.Shape[1];
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            var row = logits.Data.AsSpan(i * classes, classes);
            double max = double.NegativeInfinity;
            foreach (var x in row) max = Math.Max(max, x);
            double sum = 0;
            foreach (var x in row) sum += Math.Exp(x - max);
            total += Math.Log(sum) - (row[labels[i]] - max);
        }
        return total / n;
    }
}
