using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>dropout-keep-probability</c>: a dropout call whose kept elements are scaled by 1/p instead of 1/(1 - p), p read
/// as the KEEP probability (TF1's tf.nn.dropout keep_prob) where the spec, PyTorch and Keras mean the drop probability.
/// From the call's traced input x, output y and the mask m the backend recorded, it asks whether x * m / p reproduces
/// y where x * m / (1 - p) does not. It shows in the dropout call's forward output at the first train step (step 1
/// when the backend does it from the start). At p = 0.5 the two readings are the same function and nothing is found.
/// </summary>
public sealed class DropoutKeepProbabilityDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.DropoutKeepProbability;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) =>
        mismatch.Setting.Contains("layers", StringComparison.Ordinal) && mismatch.Setting.EndsWith(".p", StringComparison.Ordinal);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        foreach (var call in ActivationTrace.CallsOf<DropoutSpec>(context.Graph))
            foreach (var backend in context.Backends)
                if (Check(context, backend, call) is { } finding) yield return finding;
    }

    private Finding? Check(DiagnosisContext context, BackendTrace backend, Models.CallSite call)
    {
        var dropout = (DropoutSpec)call.Layer;
        if (dropout.P is 0 or 0.5) return null; // one function under both readings (p = 0: 1/p is infinite, and nothing is dropped)
        foreach (var (step, x, y) in ActivationTrace.Samples(context, backend, call))
        {
            if (TraceWalk.Find(backend.Trace, step, RecordPhase.Train)?.Find(TensorKind.DropoutMask, call.Id) is not { } mask || mask.Length != x.Length) continue;
            double canonical = Fit.RelativeError(Apply(x.Data, mask.Data, 1 / (1 - dropout.P)), y.Data);
            if (canonical <= Fit.Tolerance(y.DType)) return null;
            double keep = Fit.RelativeError(Apply(x.Data, mask.Data, 1 / dropout.P), y.Data);
            if (!Fit.AlternativeWins(canonical, keep, y.DType)) continue;
            return new Finding(Cause, backend.Name, new FindingLocation(step, RecordPhase.Train, new TensorKey(TensorKind.Forward, call.Id)),
                $"dropout call '{call.Id}' scales kept elements by 1/p = {Fit.Round(1 / dropout.P)}, not 1/(1-p) = {Fit.Round(1 / (1 - dropout.P))}: p = {dropout.P} read as the keep probability",
                new Dictionary<string, object?>
                {
                    ["instance"] = dropout.Name,
                    ["specP"] = dropout.P,
                    ["specScale"] = Fit.Round(1 / (1 - dropout.P)),
                    ["keepProbabilityScale"] = Fit.Round(1 / dropout.P),
                    ["keptFraction"] = Fit.Round(mask.Data.Average()),
                    ["relativeErrorSpecScale"] = Fit.Round(canonical),
                    ["relativeErrorKeepProbabilityScale"] = Fit.Round(keep),
                },
                "Pass the DROP probability: PyTorch's p and Keras's rate drop with it and scale by 1/(1-p); TF1's tf.nn.dropout " +
                "keep_prob is the keep probability (rate = 1 - keep_prob), so a p copied into keep_prob (or the reverse) drops " +
                "the wrong fraction and scales by 1/p (docs/conventions.md, dropout).");
        }
        return null;
    }

    private static double[] Apply(double[] x, double[] mask, double scale) => [.. x.Select((v, i) => v * (mask[i] * scale))];
}
