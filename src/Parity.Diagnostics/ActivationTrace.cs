using Parity.Models;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Diagnostics;

/// <summary>An activation call's traced input and output at one train step.</summary>
/// <param name="Step">The step.</param>
/// <param name="Input">The previous call's forward output.</param>
/// <param name="Output">The call's forward output.</param>
public sealed record ActivationSample(int Step, Tensor Input, Tensor Output);

/// <summary>Activation facts read back from a trace: what an elementwise call received and produced.</summary>
public static class ActivationTrace
{
    /// <summary>
    /// The calls of activation type <typeparamref name="TLayer"/> that have a traced input (every call but the first).
    /// </summary>
    public static IEnumerable<CallSite> CallsOf<TLayer>(ModelGraph graph) =>
        graph.Calls.Where(c => c.Layer is TLayer && c.Index > 0);

    /// <summary>
    /// <paramref name="call"/>'s input and output at the train steps of <paramref name="backend"/> from the step its
    /// deciding comparison first diverges at (a convention that changes at step K is tested at step K), at most
    /// <see cref="Fit.MaxCheckedSteps"/> of them.
    /// </summary>
    public static IEnumerable<ActivationSample> Samples(DiagnosisContext context, BackendTrace backend, CallSite call)
    {
        string inputId = context.Graph.Calls[call.Index - 1].Id;
        int first = context.FirstStepToCheck(backend.Name), taken = 0;
        foreach (var step in TraceWalk.Steps(backend.Trace))
        {
            var r = step.Record;
            if (r.Step < first || r.Phase != RecordPhase.Train) continue;
            if (r.Find(TensorKind.Forward, inputId) is not { } x || r.Find(TensorKind.Forward, call.Id) is not { } y || x.Length != y.Length) continue;
            if (++taken > Fit.MaxCheckedSteps) yield break;
            yield return new ActivationSample(r.Step, x, y);
        }
    }
}
