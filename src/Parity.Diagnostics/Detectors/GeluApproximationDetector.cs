using Parity.Backends;
using Parity.Models;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>gelu-approximation</c>: recompute a GELU call's output from its traced input both exactly (erf) and with the tanh
/// approximation, and ask which one the traced output is. The two differ by up to about 5e-4 in absolute value (near
/// |x| = 2), far beyond float32 rounding, so the other form shows in the forward output of the first train step the
/// backend diverges at. Frameworks default differently: PyTorch and Keras activations to exact, keras.ops.gelu to tanh,
/// and TF.js names the tanh form 'gelu_new' (docs/conventions.md section 6).
/// </summary>
public sealed class GeluApproximationDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.GeluApproximation;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) =>
        mismatch.Setting.Contains("layers", StringComparison.Ordinal) && mismatch.Setting.EndsWith(".approximation", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        foreach (var call in ActivationTrace.CallsOf<GeluSpec>(context.Graph))
            foreach (var backend in context.Backends)
                if (Check(context, backend, call) is { } finding) yield return finding;
    }

    private Finding? Check(DiagnosisContext context, BackendTrace backend, CallSite call)
    {
        var gelu = (GeluSpec)call.Layer;
        var other = gelu.Approximation == GeluApproximation.Exact ? GeluApproximation.Tanh : GeluApproximation.Exact;
        foreach (var (step, x, y) in ActivationTrace.Samples(context, backend, call))
        {
            double canonical = Fit.RelativeError(Apply(x.Data, gelu.Approximation), y.Data);
            if (canonical <= Fit.Tolerance(y.DType)) return null;
            double alternative = Fit.RelativeError(Apply(x.Data, other), y.Data);
            if (!Fit.AlternativeWins(canonical, alternative, y.DType)) continue;
            string name = Name(other);
            return new Finding(Cause, backend.Name, new FindingLocation(step, RecordPhase.Train, new TensorKey(TensorKind.Forward, call.Id)),
                $"GELU call '{call.Id}' computes the {name} form; the spec says {Name(gelu.Approximation)}",
                new Dictionary<string, object?>
                {
                    ["instance"] = gelu.Name,
                    ["specApproximation"] = Name(gelu.Approximation),
                    ["fittedApproximation"] = name,
                    ["relativeErrorSpec"] = Fit.Round(canonical),
                    ["relativeErrorOther"] = Fit.Round(alternative),
                },
                "Name the GELU form explicitly in every framework: nn.GELU(approximate='none' or 'tanh') in PyTorch, " +
                "approximate=False or True in Keras (keras.ops.gelu defaults to True), 'gelu' or 'gelu_new' in TF.js.");
        }
        return null;
    }

    private static string Name(GeluApproximation approximation) => approximation == GeluApproximation.Exact ? "exact" : "tanh";

    private static double[] Apply(double[] x, GeluApproximation approximation)
    {
        var c = ActivationConstants<double>.For(new GeluSpec("gelu", approximation));
        return [.. x.Select(v => Activations.Forward(c, v))];
    }
}
