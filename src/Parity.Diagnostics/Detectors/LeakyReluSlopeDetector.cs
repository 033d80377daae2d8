using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>leaky-relu-slope</c>: from a LeakyReLU call's traced input x and output y, fit the slope of the negative branch
/// (the median of y / x over clearly negative inputs) and ask whether it, rather than the spec's slope, reproduces y.
/// The frameworks' defaults differ (PyTorch 0.01, the Keras layer 0.3, tf.nn.leaky_relu and Chainer 0.2;
/// docs/conventions.md section 6), so a slope left to a framework's default shows here, in the forward output of the
/// first train step the backend diverges at.
/// </summary>
public sealed class LeakyReluSlopeDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.LeakyReluSlope;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) =>
        mismatch.Setting.Contains("layers", StringComparison.Ordinal) && mismatch.Setting.EndsWith(".slope", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        foreach (var call in ActivationTrace.CallsOf<LeakyReluSpec>(context.Graph))
            foreach (var backend in context.Backends)
                if (Check(context, backend, call) is { } finding) yield return finding;
    }

    private Finding? Check(DiagnosisContext context, BackendTrace backend, Models.CallSite call)
    {
        var leaky = (LeakyReluSpec)call.Layer;
        foreach (var (step, x, y) in ActivationTrace.Samples(context, backend, call))
        {
            double canonical = Fit.RelativeError(Apply(x.Data, leaky.Slope), y.Data);
            if (canonical <= Fit.Tolerance(y.DType)) return null;
            // Inputs near 0 carry the rounding of both sides and nothing about the slope.
            double scale = x.Data.Max(Math.Abs);
            var ratios = new List<double>();
            for (int i = 0; i < x.Length; i++)
                if (x.Data[i] < -1e-3 * scale) ratios.Add(y.Data[i] / x.Data[i]);
            double fitted = Fit.Median(ratios);
            if (!double.IsFinite(fitted)) continue;
            double alternative = Fit.RelativeError(Apply(x.Data, fitted), y.Data);
            if (!Fit.AlternativeWins(canonical, alternative, y.DType)) continue;
            return new Finding(Cause, backend.Name, new FindingLocation(step, RecordPhase.Train, new TensorKey(TensorKind.Forward, call.Id)),
                $"LeakyReLU call '{call.Id}' has negative slope {Fit.Round(fitted)}; the spec says {leaky.Slope}",
                new Dictionary<string, object?>
                {
                    ["instance"] = leaky.Name,
                    ["specSlope"] = leaky.Slope,
                    ["fittedSlope"] = Fit.Round(fitted),
                    ["negativeInputs"] = ratios.Count,
                    ["relativeErrorSpecSlope"] = Fit.Round(canonical),
                    ["relativeErrorFittedSlope"] = Fit.Round(alternative),
                },
                "Pass the slope explicitly in every framework: the defaults differ (PyTorch 0.01, the Keras LeakyReLU layer 0.3, " +
                "tf.nn.leaky_relu and Chainer 0.2; docs/conventions.md section 6).");
        }
        return null;
    }

    private static double[] Apply(double[] x, double slope) => [.. x.Select(v => v > 0 ? v : slope * v)];
}
