using Parity.Models;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>train-eval-mode</c>: each batchnorm call's output is recomputed from its traced input twice, once with the
/// input's own batch statistics and once with the instance's running statistics. An eval output that fits the batch
/// statistics and not the running ones means the framework evaluated in train mode (Keras <c>training=None</c>
/// under a train learning phase, a missing <c>.eval()</c>); a train output that fits the running statistics means the
/// reverse (a missing <c>.train()</c>, TF1 <c>training=False</c> by default [T1]).
/// </summary>
public sealed class TrainEvalModeDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.TrainEvalMode;

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        var calls = context.Graph.Calls.Where(c => c.Layer is BatchNormSpec && c.Index > 0).ToList();
        if (calls.Count == 0) yield break;
        foreach (var backend in context.Backends)
            if (Check(context, backend, calls) is { } finding) yield return finding;
    }

    private Finding? Check(DiagnosisContext context, BackendTrace backend, List<CallSite> calls)
    {
        int checkedRecords = 0;
        // From the step the backend first diverges at: a convention that changes at step K is tested at step K.
        int first = context.FirstStepToCheck(backend.Name);
        foreach (var step in TraceWalk.Steps(backend.Trace))
        {
            var r = step.Record;
            if (r.Step < first) continue;
            bool eval = r.Phase == RecordPhase.Eval;
            var outputKind = eval ? TensorKind.EvalOutput : TensorKind.Forward;
            // Eval uses the state after its step; a train step normalizes before its own update.
            int stateStep = eval ? r.Step : r.Step - 1;
            bool any = false;
            foreach (var call in calls)
            {
                var bn = (BatchNormSpec)call.Layer;
                if (r.Find(outputKind, context.Graph.Calls[call.Index - 1].Id) is not { Shape.Length: 2 } x || r.Find(outputKind, call.Id) is not { } y) continue;
                if (step.State.At(TensorKind.RunningMean, bn.Name, stateStep) is not { } runMean
                    || step.State.At(TensorKind.RunningVariance, bn.Name, stateStep) is not { } runVariance) continue;
                if (BatchNormTrace.Affine(bn, step.State, stateStep) is not { } affine) continue;
                any = true;
                // The eval set is evaluated in chunks (Plan.EvalBatches): a model left in train mode normalizes each chunk with its own statistics.
                int batchRows = eval ? context.Spec.Schedule.EvalBatchSize ?? context.Spec.Data.BatchSize : x.Shape[0];
                double withBatch = Fit.RelativeError(WithBatchStatistics(x, batchRows, bn.Eps, affine.Gamma, affine.Beta), y.Data);
                double withRunning = Fit.RelativeError(BatchNormTrace.Normalize(x, runMean.Data, runVariance.Data, bn.Eps, affine.Gamma, affine.Beta), y.Data);
                double expected = eval ? withRunning : withBatch, swapped = eval ? withBatch : withRunning;
                if (Fit.AlternativeWins(expected, swapped, y.DType))
                    return Report(backend, r, call, eval, expected, swapped, context);
            }
            if (any && ++checkedRecords > 2 * Fit.MaxCheckedSteps) return null;
        }
        return null;
    }

    private static double[] WithBatchStatistics(Tensor x, int batchRows, double eps, double[] gamma, double[] beta)
    {
        int rows = x.Shape[0], cols = x.Shape[1];
        var y = new double[x.Length];
        for (int start = 0; start < rows; start += batchRows)
        {
            int n = Math.Min(batchRows, rows - start);
            var batch = new Tensor([n, cols], x.Data[(start * cols)..((start + n) * cols)], x.DType);
            var (mean, variance) = Fit.ColumnMoments(batch);
            BatchNormTrace.Normalize(batch, mean, variance, eps, gamma, beta).CopyTo(y, start * cols);
        }
        return y;
    }

    private Finding Report(BackendTrace backend, StepRecord r, CallSite call, bool eval, double expected, double swapped, DiagnosisContext context) =>
        new(Cause, backend.Name, new FindingLocation(r.Step, r.Phase, new TensorKey(eval ? TensorKind.EvalOutput : TensorKind.Forward, call.Id)),
            eval
                ? $"eval-mode output of '{call.Id}' is normalized with the eval batch's own statistics, not the running statistics: the model evaluated in train mode"
                : $"train-mode output of '{call.Id}' is normalized with the running statistics, not the batch's: the model trained in eval mode",
            new Dictionary<string, object?>
            {
                ["call"] = call.Id,
                ["phase"] = eval ? "eval" : "train",
                ["relativeErrorExpectedStatistics"] = Fit.Round(expected),
                ["relativeErrorSwappedStatistics"] = Fit.Round(swapped),
                ["statisticsUsed"] = eval ? "batch" : "running",
                ["tolerance"] = Fit.Tolerance(DType.Float32),
            },
            eval
                ? "Switch the model to inference mode for evaluation: PyTorch model.eval(), Keras/TF.js apply(x, {training: false}), Chainer chainer.using_config('train', False)."
                : "Switch the model to training mode for training steps: PyTorch model.train(), Keras training=True, TF1 training=True / is_training=True.");
}
