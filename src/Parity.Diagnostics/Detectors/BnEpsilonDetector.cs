using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>bn-epsilon</c>: from a batchnorm call's traced input x, output y and affine parameters, solve for the eps
/// that makes y = gamma (x - mu) / s + beta hold, with s = sqrt(var + eps) (every framework in docs/conventions.md
/// section 1) or s = sqrt(var) + eps (old CNTK). Per element: eps_in = (x - mu)^2 / z^2 - var and
/// eps_out = |x - mu| / |z| - sqrt(var) with z = (y - beta) / gamma; the median over elements is the estimate. The
/// finding says which form and value fit when the spec's eps inside the root does not.
/// </summary>
public sealed class BnEpsilonDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.BnEpsilon;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) =>
        mismatch.Setting.Contains("layers", StringComparison.Ordinal) && mismatch.Setting.EndsWith(".eps", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        foreach (var call in context.Graph.Calls.Where(c => c.Layer is BatchNormSpec && c.Index > 0))
            foreach (var backend in context.Backends)
                if (Check(context, backend, call) is { } finding) yield return finding;
    }

    private Finding? Check(DiagnosisContext context, BackendTrace backend, Models.CallSite call)
    {
        var bn = (BatchNormSpec)call.Layer;
        string inputId = context.Graph.Calls[call.Index - 1].Id;
        int checkedSteps = 0;
        // From the step the backend first diverges at: a convention that changes at step K is tested at step K.
        int first = context.FirstStepToCheck(backend.Name);
        foreach (var step in TraceWalk.Steps(backend.Trace))
        {
            var r = step.Record;
            if (r.Step < first) continue;
            if (r.Phase != RecordPhase.Train) continue;
            if (r.Find(TensorKind.Forward, inputId) is not { Shape.Length: 2 } x || r.Find(TensorKind.Forward, call.Id) is not { } y) continue;
            if (BatchNormTrace.Affine(bn, step.State, r.Step - 1) is not { } affine) continue;
            var (gamma, beta) = affine;
            if (++checkedSteps > Fit.MaxCheckedSteps) return null;
            var (mean, variance) = Fit.ColumnMoments(x);
            double canonical = Fit.RelativeError(BatchNormTrace.Normalize(x, mean, variance, bn.Eps, gamma, beta), y.Data);
            if (canonical <= Fit.Tolerance(y.DType)) return null;
            var (epsInside, epsOutside) = Estimate(x, y, mean, variance, gamma, beta);
            double inside = double.IsFinite(epsInside) ? Fit.RelativeError(BatchNormTrace.Normalize(x, mean, variance, epsInside, gamma, beta), y.Data) : double.PositiveInfinity;
            double outside = double.IsFinite(epsOutside) ? Fit.RelativeError(BatchNormTrace.Normalize(x, mean, variance, epsOutside, gamma, beta, epsOutside: true), y.Data) : double.PositiveInfinity;
            bool outsideWins = outside < inside;
            double best = Math.Min(inside, outside);
            if (!Fit.AlternativeWins(canonical, best, y.DType)) continue;
            double fitted = outsideWins ? epsOutside : epsInside;
            string form = outsideWins ? "outside the square root, (x-mu)/(sqrt(var)+eps)" : "inside the square root";
            return new Finding(Cause, backend.Name, new FindingLocation(r.Step, r.Phase, new TensorKey(TensorKind.Forward, call.Id)),
                $"batchnorm call '{call.Id}' normalizes with eps {Fit.Round(fitted)} {form}; the spec says eps {bn.Eps} inside the square root",
                new Dictionary<string, object?>
                {
                    ["instance"] = bn.Name,
                    ["specEps"] = bn.Eps,
                    ["form"] = outsideWins ? "outside" : "inside",
                    ["fittedEps"] = Fit.Round(fitted),
                    ["fittedEpsInside"] = Fit.Round(epsInside),
                    ["fittedEpsOutside"] = Fit.Round(epsOutside),
                    ["relativeErrorSpecEps"] = Fit.Round(canonical),
                    ["relativeErrorInside"] = Fit.Round(inside),
                    ["relativeErrorOutside"] = Fit.Round(outside),
                },
                outsideWins
                    ? "The framework adds eps to the standard deviation (old CNTK form); use sqrt(var + eps) or declare the mismatch."
                    : "Pass eps explicitly: framework defaults differ (PyTorch 1e-5, Keras/TF.js 1e-3, Chainer 2e-5; docs/conventions.md section 1).");
        }
        return null;
    }

    private static (double Inside, double Outside) Estimate(Tensors.Tensor x, Tensors.Tensor y, double[] mean, double[] variance, double[] gamma, double[] beta)
    {
        int rows = x.Shape[0], cols = x.Shape[1];
        var inside = new List<double>();
        var outside = new List<double>();
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                double centered = x.Data[r * cols + c] - mean[c];
                if (Math.Abs(gamma[c]) < 1e-12) continue;
                double z = (y.Data[r * cols + c] - beta[c]) / gamma[c];
                // Elements near the mean carry no information about the scale.
                if (centered * centered < 0.25 * variance[c] || Math.Abs(z) < 1e-12) continue;
                inside.Add(centered * centered / (z * z) - variance[c]);
                outside.Add(Math.Abs(centered) / Math.Abs(z) - Math.Sqrt(variance[c]));
            }
        return (Fit.Median(inside), Fit.Median(outside));
    }
}
