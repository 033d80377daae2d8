using Parity.Tensors;

namespace Parity.Comparison;

/// <summary>
/// How far one tensor is from another, element by element and as a whole. Plain and serializable, so
/// results from different processes compare offline (the Polygraphy habit).
/// </summary>
/// <param name="MaxAbs">Largest |actual - expected| (infinity when a NaN or infinity does not match).</param>
/// <param name="MaxRel">Largest |actual - expected| / |expected| (infinity where expected is 0 and actual is not).</param>
/// <param name="Mismatched">
/// Elements that fail <c>|a - e| &lt;= atol + rtol * |e|</c>, counted as <c>torch.testing.assert_close</c>
/// counts them: NaN equals NaN only at the same element in both, an infinity only the same infinity.
/// </param>
/// <param name="Count">Elements of the expected tensor.</param>
/// <param name="Rmse">Root mean square of actual - expected (infinity when a non-finite element does not match).</param>
/// <param name="Cosine">Cosine similarity of the finite elements (1 when both are all zeros, 0 when only one is).</param>
/// <param name="ReferenceRms">Root mean square of the finite expected values: the scale errors are read against.</param>
public sealed record TensorMetrics(double MaxAbs, double MaxRel, int Mismatched, int Count, double Rmse, double Cosine, double ReferenceRms)
{
    /// <summary>True when the shapes differ; no element was compared and every element counts as mismatched.</summary>
    public bool ShapeMismatch { get; init; }

    /// <summary>Elements where a NaN or an infinity in one tensor is not matched by the same value in the other.</summary>
    public int NonFiniteMismatched { get; init; }

    /// <summary>Flat (row-major) index of the element with the largest absolute difference; -1 when there is none.</summary>
    public int WorstIndex { get; init; } = -1;

    /// <summary>Actual shape when it differs from the expected one (e.g. <c>[10,100]</c>), else null.</summary>
    public string? ActualShape { get; init; }

    /// <summary>Metrics of <paramref name="actual"/> against <paramref name="expected"/>, counting mismatches under <paramref name="tolerance"/>.</summary>
    public static TensorMetrics Of(Tensor actual, Tensor expected, Tolerance tolerance)
    {
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(tolerance);
        double referenceRms = Rms(expected.Data);
        if (!actual.SameShape(expected))
        {
            return new TensorMetrics(double.PositiveInfinity, double.PositiveInfinity, expected.Length, expected.Length,
                double.PositiveInfinity, double.NaN, referenceRms)
            {
                ShapeMismatch = true,
                ActualShape = actual.ShapeText,
            };
        }

        double[] a = actual.Data, e = expected.Data;
        int mismatched = 0, nonFinite = 0, worst = -1;
        double maxAbs = 0, maxRel = 0, sumSquares = 0, dot = 0, normA = 0, normE = 0;
        for (int i = 0; i < e.Length; i++)
        {
            double ai = a[i], ei = e[i];
            if (!double.IsFinite(ai) || !double.IsFinite(ei))
            {
                // assert_close(equal_nan=True): NaN matches NaN at the same element; an infinity only itself.
                bool same = (double.IsNaN(ai) && double.IsNaN(ei)) || ai == ei;
                if (!same)
                {
                    mismatched++;
                    nonFinite++;
                    if (worst < 0 || double.IsFinite(maxAbs)) worst = i;
                    maxAbs = maxRel = double.PositiveInfinity;
                }
                continue;
            }
            double diff = Math.Abs(ai - ei);
            if (diff > maxAbs || (worst < 0 && diff == maxAbs))
            {
                maxAbs = diff;
                worst = i;
            }
            double rel = diff == 0 ? 0 : ei == 0 ? double.PositiveInfinity : diff / Math.Abs(ei);
            if (rel > maxRel) maxRel = rel;
            if (!(diff <= tolerance.Allowed(ei))) mismatched++;
            sumSquares += diff * diff;
            dot += ai * ei;
            normA += ai * ai;
            normE += ei * ei;
        }
        double rmse = nonFinite > 0 ? double.PositiveInfinity : e.Length == 0 ? 0 : Math.Sqrt(sumSquares / e.Length);
        double cosine = normA == 0 && normE == 0 ? 1 : normA == 0 || normE == 0 ? 0 : dot / Math.Sqrt(normA * normE);
        return new TensorMetrics(maxAbs, maxRel, mismatched, e.Length, rmse, cosine, referenceRms)
        {
            NonFiniteMismatched = nonFinite,
            WorstIndex = worst,
        };
    }

    /// <summary>Metrics for a tensor present in one trace only.</summary>
    internal static TensorMetrics Absent(Tensor? present) =>
        new(double.NaN, double.NaN, present?.Length ?? 0, present?.Length ?? 0, double.NaN, double.NaN, present is null ? double.NaN : Rms(present.Data));

    /// <summary>Root mean square of the finite values (0 for none).</summary>
    internal static double Rms(ReadOnlySpan<double> values)
    {
        double sum = 0;
        int n = 0;
        foreach (double v in values)
        {
            if (!double.IsFinite(v)) continue;
            sum += v * v;
            n++;
        }
        return n == 0 ? 0 : Math.Sqrt(sum / n);
    }
}
