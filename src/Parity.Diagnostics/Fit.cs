using System.Globalization;
using Parity.Tensors;

namespace Parity.Diagnostics;

/// <summary>
/// How well a recomputed tensor fits a traced one. Detectors recompute a tensor under two hypotheses (the spec's
/// convention and the alternative) from the backend's own traced inputs and ask which one it matches.
/// </summary>
internal static class Fit
{
    /// <summary>
    /// Largest relative error at which a recomputation "fits": the traced tensor was rounded to its dtype and our
    /// recomputation in double from traced (rounded) inputs takes a different summation order, so float32 gets
    /// ~1e3 times its unit roundoff (6e-8) of slack, float64 the same multiple of its own.
    /// </summary>
    public static double Tolerance(DType dtype) => dtype == DType.Float32 ? 1e-4 : 1e-10;

    /// <summary>A convention shows at every step; checking this many bounds a detector's time on long traces.</summary>
    public const int MaxCheckedSteps = 20;

    /// <summary>RMS(predicted - actual) / RMS(actual) (absolute when the actual is all zeros).</summary>
    public static double RelativeError(ReadOnlySpan<double> predicted, ReadOnlySpan<double> actual)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = predicted[i] - actual[i];
            diff += d * d;
            norm += actual[i] * actual[i];
        }
        if (actual.Length == 0) return 0;
        diff = Math.Sqrt(diff / actual.Length);
        norm = Math.Sqrt(norm / actual.Length);
        return norm > 0 ? diff / norm : diff;
    }

    /// <summary>True when the alternative fits and the canonical hypothesis does not (by a clear margin).</summary>
    public static bool AlternativeWins(double canonicalError, double alternativeError, DType dtype) =>
        canonicalError > Tolerance(dtype) && alternativeError <= Tolerance(dtype) && alternativeError * 10 < canonicalError;

    /// <summary>Per-column mean and biased variance of a [rows, columns] tensor.</summary>
    public static (double[] Mean, double[] Variance) ColumnMoments(Tensor x)
    {
        int rows = x.Shape[0], cols = x.Shape[1];
        var mean = new double[cols];
        var variance = new double[cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) mean[c] += x.Data[r * cols + c];
        for (int c = 0; c < cols; c++) mean[c] /= rows;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                double d = x.Data[r * cols + c] - mean[c];
                variance[c] += d * d;
            }
        for (int c = 0; c < cols; c++) variance[c] /= rows;
        return (mean, variance);
    }

    /// <summary>True when every element is finite.</summary>
    public static bool AllFinite(Tensor t)
    {
        foreach (double v in t.Data)
            if (!double.IsFinite(v)) return false;
        return true;
    }

    /// <summary>The median of <paramref name="values"/> (NaN when empty).</summary>
    public static double Median(List<double> values)
    {
        if (values.Count == 0) return double.NaN;
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
    }

    /// <summary>Rounds for evidence: 4 significant digits keep reports readable and still prove the point.</summary>
    public static double Round(double value) =>
        double.IsFinite(value) ? double.Parse(value.ToString("G4", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) : value;
}
