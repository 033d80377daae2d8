using Parity.Backends;
using Parity.Planning;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Running;

/// <summary>
/// One evaluation of a backend over the whole eval set, asked for in chunks of <see cref="Plan.EvalBatchSize"/>
/// (<see cref="Plan.EvalBatches"/>) so that no call holds the activations of more than one chunk, and merged into the
/// record of one evaluation: <c>evalOutput</c> rows concatenated in order, <c>evalLoss</c> the sample-weighted mean of
/// the chunks' losses and <c>evalAccuracy</c> correct over total, both computed in float64 and stored in the
/// backend's dtype. An eval set of one chunk gives the backend's record unchanged. Every backend gets the same
/// chunks, so their records stay comparable. Over several chunks, each chunk's record is released once merged (its
/// pooled arrays go back to <see cref="TensorPool"/>): the merged record holds copies.
/// </summary>
public static class ChunkedEvaluation
{
    /// <summary>Evaluates <paramref name="session"/> after step <paramref name="step"/>.</summary>
    /// <param name="session">The backend.</param>
    /// <param name="plan">The plan: its eval set and chunk size.</param>
    /// <param name="step">The step the evaluation follows.</param>
    /// <param name="capture">What to ask for.</param>
    /// <param name="check">
    /// Checks one chunk's record over its number of rows and returns it in canonical form (the runner's trace-layout
    /// check), or throws <see cref="BackendException"/>.
    /// </param>
    /// <exception cref="BackendException">A chunk's record fails the check, or the chunks cannot be merged.</exception>
    public static StepRecord Evaluate(IBackendSession session, Plan plan, int step, CaptureRequest capture, Func<StepRecord, int, StepRecord> check)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(capture);
        ArgumentNullException.ThrowIfNull(check);
        int total = plan.Eval.Count, rowsDone = 0;
        StepRecord? first = null;
        var merged = new List<(TensorKey Key, DType DType, Tensor? Value)>();
        double lossSum = 0, correct = 0;
        foreach (var batch in plan.EvalBatches())
        {
            var record = check(session.Evaluate(step, batch, capture), batch.Size);
            if (batch.Size == total) return record;
            int rows = batch.Size;
            if (first is null)
            {
                first = record;
                foreach (var e in record.Entries) merged.Add(Start(e, total));
            }
            else if (record.Entries.Count != first.Entries.Count || record.Entries.Where((e, i) => e.Key != first.Entries[i].Key).Any())
            {
                throw new BackendException($"evaluation chunk at sample {rowsDone} returned [{string.Join(", ", record.Entries.Select(e => e.Key))}]; "
                    + $"the first chunk returned [{string.Join(", ", first.Entries.Select(e => e.Key))}]");
            }
            foreach (var (e, i) in record.Entries.Select((e, i) => (e, i)))
            {
                var t = e.Value;
                switch (e.Key.Kind)
                {
                    case TensorKind.EvalLoss:
                        lossSum += Scalar(e) * rows;
                        break;
                    case TensorKind.EvalAccuracy:
                        correct += Math.Round(Scalar(e) * rows);
                        break;
                    default: // EvalOutput, checked by Start
                        int width = merged[i].Value!.Shape[1];
                        if (t.Shape.Length != 2 || t.Shape[0] != rows || t.Shape[1] != width)
                            throw new BackendException($"{e.Key} of the evaluation chunk at sample {rowsDone} has shape {t.ShapeText}; expected [{rows},{width}]");
                        t.Data.CopyTo(merged[i].Value!.Data, (long)rowsDone * width);
                        break;
                }
            }
            if (!ReferenceEquals(record, first)) record.Release();
            rowsDone += rows;
        }

        first?.Release();
        var result = new StepRecord(step, RecordPhase.Eval);
        foreach (var (key, dtype, value) in merged)
        {
            double? scalar = key.Kind switch
            {
                TensorKind.EvalLoss => lossSum / total,
                TensorKind.EvalAccuracy => correct / total,
                _ => null,
            };
            if (scalar is double v) result.AddScalar(key.Kind, dtype == DType.Float32 ? (float)v : v, dtype);
            else result.Add(key.Kind, key.Site, value!);
        }
        return result;
    }

    // The merged tensor of an entry (every row is written by one chunk), or null for the scalars computed at the end.
    private static (TensorKey, DType, Tensor?) Start(TraceEntry e, int total)
    {
        var t = e.Value;
        return e.Key.Kind switch
        {
            TensorKind.EvalLoss or TensorKind.EvalAccuracy => (e.Key, t.DType, null),
            TensorKind.EvalOutput when t.Shape.Length == 2 => (e.Key, t.DType, Tensor.Pooled([total, t.Shape[1]], t.DType)),
            _ => throw new BackendException($"the backend returned {e.Key} with shape {t.ShapeText} in an evaluation record; "
                + "only evalOutput [rows, width], evalLoss and evalAccuracy can be merged over evaluation chunks"),
        };
    }

    private static double Scalar(TraceEntry e) =>
        e.Value.Length == 1 ? e.Value.Data[0] : throw new BackendException($"{e.Key} has shape {e.Value.ShapeText}; expected a scalar");
}
