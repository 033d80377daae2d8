using Parity.Comparison;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>weight-layout</c>: a failing weight (or weight gradient) of the actual trace holds the reference's values
/// transposed: the backend stored or traced a Keras/TF.js/cs231n kernel [in, out] where the canonical layout is
/// PyTorch's [out, in] (docs/conventions.md section 2). Tested element by element: actual == expected^T within the fit
/// tolerance of the actual dtype.
/// </summary>
public sealed class WeightLayoutDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.WeightLayout;

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        foreach (var comparison in context.Comparisons)
        {
            // The first failing check of each weight only: a layout shows from the first step on, and each test reads the
            // traces up to its step, so testing every failing step of a long run would re-read them thousands of times.
            var check = comparison.Checks.Where(c => c.CountsAsFailure && IsWeight(c.Key)).GroupBy(c => c.Key).Select(g => g.First())
                .FirstOrDefault(c => IsTransposed(context, comparison, c));
            if (check is null) continue;
            yield return new Finding(Cause, comparison.Actual, new FindingLocation(check.Step, check.Phase, check.Key),
                $"{check.Key} equals {comparison.Expected}'s transposed: the weight is laid out [in, out] instead of the canonical [out, in]",
                new Dictionary<string, object?>
                {
                    ["tensor"] = check.Key.ToString(),
                    ["relativeErrorAsIs"] = Fit.Round(check.Metrics.ReferenceRms > 0 ? check.Metrics.Rmse / check.Metrics.ReferenceRms : check.Metrics.Rmse),
                    ["relativeErrorTransposed"] = Fit.Round(TransposedError(context, comparison, check) ?? double.NaN),
                    ["actualShape"] = check.Metrics.ActualShape,
                },
                "Transpose linear weights when moving them between the canonical layout [out, in] (PyTorch, Chainer) and kernels [in, out] (Keras, TF.js, cs231n), both when loading and when tracing.");
        }
    }

    private static bool IsWeight(TensorKey key) =>
        key.Kind is TensorKind.Parameter or TensorKind.ParameterGradient && key.Site.EndsWith(".weight", StringComparison.Ordinal);

    /// <summary>True when the failing check's actual tensor is the expected one transposed.</summary>
    internal static bool IsTransposed(DiagnosisContext context, ComparisonResult comparison, TensorCheck check) =>
        IsWeight(check.Key) && TransposedError(context, comparison, check) is double e && e <= Fit.Tolerance(Tensors.DType.Float32);

    private static double? TransposedError(DiagnosisContext context, ComparisonResult comparison, TensorCheck check)
    {
        if (context.ExpectedTraceOf(comparison) is not { } expected || context.TraceOf(comparison.Actual) is not { } actual) return null;
        var e = TraceWalk.Find(expected.Trace, check.Step, check.Phase)?.Find(check.Key.Kind, check.Key.Site);
        var a = TraceWalk.Find(actual.Trace, check.Step, check.Phase)?.Find(check.Key.Kind, check.Key.Site);
        if (e is null || a is null || e.Shape.Length != 2 || e.Length != a.Length) return null;
        // A square matrix equal to its own transpose proves nothing.
        if (e.Shape[0] == e.Shape[1] && Fit.RelativeError(e.Transpose2D().Data, e.Data) <= Fit.Tolerance(Tensors.DType.Float32)) return null;
        return Fit.RelativeError(a.Data, e.Transpose2D().Data);
    }
}
