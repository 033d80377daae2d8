using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
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

        return Finite(actual.Data, expected.Data, tolerance, referenceRms) ?? WithNonFinite(actual.Data, expected.Data, tolerance, referenceRms);
    }

    // The element loop, for tensors with a NaN or an infinity on either side.
    private static TensorMetrics WithNonFinite(double[] a, double[] e, Tolerance tolerance, double referenceRms)
    {
        var sums = new Sums();
        int nonFinite = 0, worst = -1;
        for (int i = 0; i < e.Length; i++)
        {
            double ai = a[i], ei = e[i];
            if (!double.IsFinite(ai) || !double.IsFinite(ei))
            {
                // assert_close(equal_nan=True): NaN matches NaN at the same element; an infinity only itself.
                bool same = (double.IsNaN(ai) && double.IsNaN(ei)) || ai == ei;
                if (!same)
                {
                    sums.Mismatched++;
                    nonFinite++;
                    if (worst < 0 || double.IsFinite(sums.MaxAbs)) worst = i;
                    sums.MaxAbs = sums.MaxRel = double.PositiveInfinity;
                }
                continue;
            }
            double before = sums.MaxAbs, diff = sums.Add(ai, ei, tolerance);
            if (diff > before || (worst < 0 && diff == before)) worst = i;
        }
        return Summarize(e.Length, sums.MaxAbs, sums.MaxRel, sums.Mismatched, nonFinite, worst, sums.SumSquares, sums.Dot, sums.NormA,
            sums.NormE, referenceRms);
    }

    // The running figures of finite element pairs: the one element rule, used by the element loop and the vector loop's tail.
    private struct Sums
    {
        internal double MaxAbs, MaxRel, SumSquares, Dot, NormA, NormE;
        internal int Mismatched;

        // Adds one pair of finite values and returns their absolute difference.
        internal double Add(double ai, double ei, Tolerance tolerance)
        {
            double diff = Math.Abs(ai - ei);
            MaxAbs = Math.Max(MaxAbs, diff);
            MaxRel = Math.Max(MaxRel, Relative(diff, ei));
            if (!(diff <= tolerance.Allowed(ei))) Mismatched++;
            SumSquares += diff * diff;
            Dot += ai * ei;
            NormA += ai * ai;
            NormE += ei * ei;
            return diff;
        }
    }

    // The same figures in 256-bit vectors when every element of both sides is finite (null otherwise): maxima, the mismatch
    // count and the worst index are exactly the element loop's; the four sums run in four lanes added in a fixed order, so
    // they are deterministic and differ from a one-chain sum only in their last bits.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector loops: never run them unoptimized first
    private static TensorMetrics? Finite(double[] a, double[] e, Tolerance tolerance, double referenceRms)
    {
        int width = Vector256<double>.Count;
        if (!Vector256.IsHardwareAccelerated || e.Length < width) return null;
        ref double ra = ref MemoryMarshal.GetArrayDataReference(a);
        ref double re = ref MemoryMarshal.GetArrayDataReference(e);
        var zero = Vector256<double>.Zero;
        Vector256<double> atol = Vector256.Create(tolerance.Atol), rtol = Vector256.Create(tolerance.Rtol);
        Vector256<double> nonFinite = zero, maxAbs = zero, maxRel = zero, sumSquares = zero, dot = zero, normA = zero, normE = zero;
        Vector256<long> mismatched = Vector256<long>.Zero;
        int i = 0;
        for (; i <= e.Length - width; i += width)
        {
            var va = Vector256.LoadUnsafe(ref ra, (nuint)i);
            var ve = Vector256.LoadUnsafe(ref re, (nuint)i);
            nonFinite += (va - va) + (ve - ve); // stays 0 while every value is finite; NaN once one is not
            var diff = Vector256.Abs(va - ve);
            var absE = Vector256.Abs(ve);
            maxAbs = Vector256.Max(maxAbs, diff);
            maxRel = Vector256.Max(maxRel, Vector256.ConditionalSelect(Vector256.Equals(diff, zero), zero, diff / absE));
            mismatched -= (~Vector256.LessThanOrEqual(diff, atol + rtol * absE)).AsInt64();
            sumSquares += diff * diff;
            dot += va * ve;
            normA += va * va;
            normE += ve * ve;
        }
        if (Vector256.Sum(nonFinite) != 0) return null;
        var tail = new Sums { MaxAbs = Max(maxAbs), MaxRel = Max(maxRel), Mismatched = (int)Vector256.Sum(mismatched) };
        for (; i < e.Length; i++)
        {
            if (!double.IsFinite(a[i]) || !double.IsFinite(e[i])) return null;
            tail.Add(a[i], e[i], tolerance);
        }
        return Summarize(e.Length, tail.MaxAbs, tail.MaxRel, tail.Mismatched, 0, FirstAt(a, e, tail.MaxAbs), Sum(sumSquares) + tail.SumSquares,
            Sum(dot) + tail.Dot, Sum(normA) + tail.NormA, Sum(normE) + tail.NormE, referenceRms);
    }

    // The first element whose absolute difference is the largest one.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector loops: never run them unoptimized first
    private static int FirstAt(double[] a, double[] e, double maxAbs)
    {
        int width = Vector256<double>.Count, i = 0;
        var target = Vector256.Create(maxAbs);
        for (; i <= e.Length - width; i += width)
        {
            var hit = Vector256.Equals(Vector256.Abs(Vector256.Create(a.AsSpan(i, width)) - Vector256.Create(e.AsSpan(i, width))), target);
            if (hit != Vector256<double>.Zero) return i + BitOperations.TrailingZeroCount(hit.ExtractMostSignificantBits());
        }
        for (; i < e.Length; i++)
            if (Math.Abs(a[i] - e[i]) == maxAbs) return i;
        return -1;
    }

    private static double Relative(double diff, double expected) => diff == 0 ? 0 : expected == 0 ? double.PositiveInfinity : diff / Math.Abs(expected);

    private static double Max(Vector256<double> v) => Math.Max(Math.Max(v[0], v[1]), Math.Max(v[2], v[3]));

    private static double Sum(Vector256<double> v) => (v[0] + v[1]) + (v[2] + v[3]);

    private static TensorMetrics Summarize(int count, double maxAbs, double maxRel, int mismatched, int nonFinite, int worst,
        double sumSquares, double dot, double normA, double normE, double referenceRms)
    {
        double rmse = nonFinite > 0 ? double.PositiveInfinity : count == 0 ? 0 : Math.Sqrt(sumSquares / count);
        double cosine = normA == 0 && normE == 0 ? 1 : normA == 0 || normE == 0 ? 0 : dot / Math.Sqrt(normA * normE);
        return new TensorMetrics(maxAbs, maxRel, mismatched, count, rmse, cosine, referenceRms)
        {
            NonFiniteMismatched = nonFinite,
            WorstIndex = worst,
        };
    }

    /// <summary>Metrics for a tensor present in one trace only.</summary>
    internal static TensorMetrics Absent(Tensor? present) =>
        new(double.NaN, double.NaN, present?.Length ?? 0, present?.Length ?? 0, double.NaN, double.NaN, present is null ? double.NaN : Rms(present.Data));

    /// <summary>Root mean square of the finite values (0 for none).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // vector loops: never run them unoptimized first
    internal static double Rms(ReadOnlySpan<double> values)
    {
        int width = Vector256<double>.Count, i = 0;
        if (Vector256.IsHardwareAccelerated && values.Length >= width)
        {
            // Four lanes added in a fixed order; the element loop below when a value is not finite.
            Vector256<double> sum = Vector256<double>.Zero, nonFinite = Vector256<double>.Zero;
            for (; i <= values.Length - width; i += width)
            {
                var v = Vector256.Create(values.Slice(i, width));
                nonFinite += v - v;
                sum += v * v;
            }
            double total = Sum(sum);
            for (; i < values.Length && double.IsFinite(values[i]); i++) total += values[i] * values[i];
            if (i == values.Length && Vector256.Sum(nonFinite) == 0) return Math.Sqrt(total / values.Length);
        }
        double squares = 0;
        int n = 0;
        foreach (double v in values)
        {
            if (!double.IsFinite(v)) continue;
            squares += v * v;
            n++;
        }
        return n == 0 ? 0 : Math.Sqrt(squares / n);
    }
}
