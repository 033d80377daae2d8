using Parity.Comparison;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>weight-layout</c>, in either of two forms (docs/conventions.md section 2):
/// <list type="bullet">
/// <item>a failing weight (or weight gradient) of the actual trace holds the reference's values transposed: the backend
/// stored or traced a Keras/TF.js/cs231n kernel [in, out] where the canonical layout is PyTorch's [out, in]. Tested
/// element by element: actual == expected^T within the fit tolerance of the actual dtype;</item>
/// <item>a failing output of a linear call with a square weight is x W + b of the backend's own input and traced weight,
/// not x W^T + b: the weight is traced right but multiplied as a kernel [in, out] (a non-square weight cannot be
/// multiplied the wrong way round, and a wrongly shaped one is refused when recorded).</item>
/// </list>
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
            if (check is null)
            {
                if (MultipliedTransposed(context, comparison) is { } forward) yield return forward;
                continue;
            }
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

    // The first failing train output of a linear call with a square weight, when x W + b fits it and x W^T + b does not.
    private Finding? MultipliedTransposed(DiagnosisContext context, ComparisonResult comparison)
    {
        if (context.TraceOf(comparison.Actual) is not { } actual) return null;
        var calls = context.Graph.Calls;
        var failing = comparison.Checks.Where(c => c.CountsAsFailure && c.Phase == RecordPhase.Train && c.Key.Kind == TensorKind.Forward)
            .GroupBy(c => c.Key).Select(g => g.First())
            .Select(c => (Check: c, Call: calls.FirstOrDefault(k => k.Id == c.Key.Site)))
            .Where(p => p.Call?.Layer is LinearSpec { In: var n, Out: var m } && n == m)
            .Take(Fit.MaxCheckedSteps).ToList();
        var dtype = DTypes.TryParse(actual.Trace.Header.DType) ?? DType.Float32;
        foreach (var (check, call) in failing)
        {
            var linear = (LinearSpec)call!.Layer;
            var walk = TraceWalk.Steps(actual.Trace).FirstOrDefault(w => w.Record.Step == check.Step && w.Record.Phase == RecordPhase.Train);
            if (walk is null || walk.Record.Find(TensorKind.Forward, call.Id) is not { } y) continue;
            var x = call.Index == 0 ? context.Plan?.BatchFor(check.Step).Inputs : walk.Record.Find(TensorKind.Forward, calls[call.Index - 1].Id);
            var w = walk.State.At(TensorKind.Parameter, linear.Name + ".weight", check.Step - 1);
            var b = linear.Bias ? walk.State.At(TensorKind.Parameter, linear.Name + ".bias", check.Step - 1) : null;
            if (x is null || w is null || linear.Bias && b is null || x.Shape.Length != 2 || x.Shape[1] != linear.In || y.Length != x.Shape[0] * linear.Out) continue;
            double asCanonical = Fit.RelativeError(Linear(x, w, b, transposed: true), y.Data);
            double asKernel = Fit.RelativeError(Linear(x, w, b, transposed: false), y.Data);
            if (!Fit.AlternativeWins(asCanonical, asKernel, dtype)) continue;
            return new Finding(Cause, comparison.Actual, new FindingLocation(check.Step, check.Phase, check.Key),
                $"{check.Key} is x W + b of its own input and its traced {linear.Name}.weight W, not x W^T + b: the weight is traced [out, in] but multiplied as a kernel [in, out]",
                new Dictionary<string, object?>
                {
                    ["tensor"] = check.Key.ToString(),
                    ["weight"] = linear.Name + ".weight",
                    ["relativeErrorAsXWt"] = Fit.Round(asCanonical),
                    ["relativeErrorAsXW"] = Fit.Round(asKernel),
                },
                "Multiply by the weight in the layout it is stored in: y = x W^T + b for [out, in] (PyTorch), y = x K + b for a kernel K [in, out] (Keras); convert when moving weights between the two.");
        }
        return null;
    }

    // x [rows, in] times W^T (transposed: W is [out, in]) or W (W read as [in, out]), plus b, in float64.
    private static double[] Linear(Tensor x, Tensor w, Tensor? b, bool transposed)
    {
        int rows = x.Shape[0], n = x.Shape[1], m = w.Length / n;
        var y = new double[rows * m];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < m; o++)
            {
                double sum = b?.Data[o] ?? 0;
                for (int i = 0; i < n; i++) sum += x.Data[r * n + i] * (transposed ? w.Data[o * n + i] : w.Data[i * m + o]);
                y[r * m + o] = sum;
            }
        return y;
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
