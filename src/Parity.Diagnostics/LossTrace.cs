using Parity.Data;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Diagnostics;

/// <summary>One train step's loss inputs and results as a backend traced them, with the batch it ran on.</summary>
/// <param name="Step">The step.</param>
/// <param name="Outputs">The last call's traced output [rows, width].</param>
/// <param name="Gradient">The traced gradient of the loss with respect to it, or null when not traced.</param>
/// <param name="Loss">The traced loss.</param>
/// <param name="Batch">The plan's batch of that step (labels and float targets).</param>
/// <param name="DType">The traced precision.</param>
public sealed record LossSample(int Step, Tensor Outputs, Tensor? Gradient, double Loss, Batch Batch, DType DType);

/// <summary>
/// The loss samples of a backend's trace for the loss detectors: the train steps from the one its deciding comparison
/// first diverges at, at most <see cref="Fit.MaxCheckedSteps"/>; none without the plan (the batches) or the last output.
/// </summary>
internal static class LossTrace
{
    public static IEnumerable<LossSample> Samples(DiagnosisContext context, BackendTrace backend)
    {
        if (context.Plan is not { } plan) yield break;
        string last = context.Graph.Calls[^1].Id;
        int first = context.FirstStepToCheck(backend.Name), taken = 0;
        foreach (var step in TraceWalk.Steps(backend.Trace))
        {
            var r = step.Record;
            if (r.Step < first || r.Phase != RecordPhase.Train || r.Step > plan.TotalSteps) continue;
            if (r.Find(TensorKind.Forward, last) is not { Shape: [_, _] } y || r.Find(TensorKind.Loss, "") is not { } loss) continue;
            if (++taken > Fit.MaxCheckedSteps) yield break;
            var g = r.Find(TensorKind.OutputGradient, last);
            yield return new LossSample(r.Step, y, g is not null && g.Length == y.Length ? g : null, loss.Data[0], plan.BatchFor(r.Step), y.DType);
        }
    }

    /// <summary>
    /// The relative error of a recomputed loss and gradient against the traced ones: the larger of the two (the gradient
    /// only when traced).
    /// </summary>
    public static double Error(LossSample s, double loss, double[] gradient) =>
        Math.Max(Fit.RelativeError([loss], [s.Loss]), s.Gradient is { } g ? Fit.RelativeError(gradient, g.Data) : 0);
}
