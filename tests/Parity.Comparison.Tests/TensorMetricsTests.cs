using Parity.Tensors;

namespace Parity.Comparison.Tests;

public class TensorMetricsTests
{
    private static Tensor T(params double[] values) => new([values.Length], values, DType.Float64);

    [Test]
    public void Identical_tensors_have_zero_error_and_cosine_one()
    {
        var m = TensorMetrics.Of(T(1, -2, 3), T(1, -2, 3), Tolerance.Exact);
        Assert.That((m.MaxAbs, m.MaxRel, m.Mismatched, m.Count, m.Rmse, m.Cosine), Is.EqualTo((0.0, 0.0, 0, 3, 0.0, 1.0)));
        Assert.That(m.ReferenceRms, Is.EqualTo(Math.Sqrt(14.0 / 3)).Within(1e-15));
    }

    [Test]
    public void Mismatches_are_counted_as_assert_close_counts_them()
    {
        // allowed = atol + rtol*|e| = 0.06, 0.07, 1.05; differences 0.1 (fails), 0, 0.5 (passes).
        var m = TensorMetrics.Of(T(1.1, 2, 100.5), T(1, 2, 100), new Tolerance(0.05, 0.01));
        Assert.That(m.Mismatched, Is.EqualTo(1));
        Assert.That(m.MaxAbs, Is.EqualTo(0.5).Within(1e-12));
        Assert.That(m.MaxRel, Is.EqualTo(0.1).Within(1e-12));
        Assert.That(m.WorstIndex, Is.EqualTo(2));
        Assert.That(m.Rmse, Is.EqualTo(Math.Sqrt((0.01 + 0.25) / 3)).Within(1e-12));
    }

    [Test]
    public void An_element_exactly_at_the_bound_passes()
    {
        var m = TensorMetrics.Of(T(1.5), T(1), new Tolerance(0.5, 0));
        Assert.That(m.Mismatched, Is.Zero);
    }

    [Test]
    public void NaN_equals_NaN_only_at_the_same_element()
    {
        var same = TensorMetrics.Of(T(double.NaN, 1), T(double.NaN, 1), Tolerance.Exact);
        Assert.That((same.Mismatched, same.NonFiniteMismatched, same.Rmse), Is.EqualTo((0, 0, 0.0)));

        var shifted = TensorMetrics.Of(T(double.NaN, 1), T(1, double.NaN), new Tolerance(1, 1));
        Assert.That((shifted.Mismatched, shifted.NonFiniteMismatched), Is.EqualTo((2, 2)));
        Assert.That(shifted.Rmse, Is.EqualTo(double.PositiveInfinity));
        Assert.That(shifted.MaxAbs, Is.EqualTo(double.PositiveInfinity));
        Assert.That(shifted.WorstIndex, Is.EqualTo(0));
    }

    [Test]
    public void Infinity_must_match_exactly()
    {
        Assert.That(TensorMetrics.Of(T(double.PositiveInfinity), T(double.PositiveInfinity), Tolerance.Exact).Mismatched, Is.Zero);
        Assert.That(TensorMetrics.Of(T(double.NegativeInfinity), T(double.PositiveInfinity), new Tolerance(1e300, 1)).Mismatched, Is.EqualTo(1));
        Assert.That(TensorMetrics.Of(T(1e308), T(double.PositiveInfinity), new Tolerance(1e300, 1)).Mismatched, Is.EqualTo(1));
    }

    [Test]
    public void A_shape_mismatch_is_its_own_failure()
    {
        var m = TensorMetrics.Of(new Tensor([2, 3], new double[6], DType.Float32), new Tensor([3, 2], new double[6], DType.Float64), new Tolerance(1, 1));
        Assert.That(m.ShapeMismatch, Is.True);
        Assert.That(m.ActualShape, Is.EqualTo("[2,3]"));
        Assert.That(m.Mismatched, Is.EqualTo(6));
        Assert.That(m.Rmse, Is.EqualTo(double.PositiveInfinity));
    }

    [Test]
    public void Relative_error_against_zero_is_infinite_and_cosine_of_orthogonal_vectors_is_zero()
    {
        var m = TensorMetrics.Of(T(0, 1), T(1, 0), Tolerance.Exact);
        Assert.That(m.MaxRel, Is.EqualTo(double.PositiveInfinity));
        Assert.That(m.Cosine, Is.EqualTo(0));
        Assert.That(TensorMetrics.Of(T(0, 0), T(0, 0), Tolerance.Exact).Cosine, Is.EqualTo(1));
        Assert.That(TensorMetrics.Of(T(0, 0), T(1, 0), Tolerance.Exact).Cosine, Is.EqualTo(0));
    }

    [Test]
    public void Scalars_compare()
    {
        var m = TensorMetrics.Of(Tensor.Scalar(2.5, DType.Float32), Tensor.Scalar(2, DType.Float64), new Tolerance(0, 0.1));
        Assert.That((m.Count, m.Mismatched, m.MaxAbs), Is.EqualTo((1, 1, 0.5)));
    }

    [TestCase(1003, -1)]
    [TestCase(1003, 500)]
    [TestCase(1003, 1001)]
    [TestCase(4, -1)]
    public void Long_tensors_give_the_element_rule_s_figures(int length, int nonFiniteAt)
    {
        // Long tensors take the vector path (finite) or the element loop (a NaN anywhere); both must give the element rule's
        // counts, maxima and worst index exactly, ties resolved to the first element, and the sums to rounding.
        var random = new Random(7);
        var expected = new double[length];
        var actual = new double[length];
        for (int i = 0; i < length; i++)
        {
            expected[i] = i % 97 == 0 ? 0 : (random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-3, 3));
            actual[i] = expected[i] + (random.NextDouble() - 0.5) * 1e-3;
        }
        actual[length / 2] = expected[length / 2] + 0.25;
        actual[length - 1] = expected[length - 1] + 0.25; // the same largest difference later: the first one is the worst
        if (nonFiniteAt >= 0) actual[nonFiniteAt] = double.NaN;
        var tolerance = new Tolerance(1e-4, 1e-3);

        var m = TensorMetrics.Of(T(actual), T(expected), tolerance);

        int mismatched = 0, worst = -1;
        double maxAbs = 0, maxRel = 0, squares = 0;
        for (int i = 0; i < length; i++)
        {
            if (i == nonFiniteAt)
            {
                mismatched++;
                continue;
            }
            double diff = Math.Abs(actual[i] - expected[i]);
            if (worst < 0 || diff > maxAbs) (maxAbs, worst) = (diff, i);
            maxRel = Math.Max(maxRel, diff == 0 ? 0 : expected[i] == 0 ? double.PositiveInfinity : diff / Math.Abs(expected[i]));
            if (!(diff <= tolerance.Atol + tolerance.Rtol * Math.Abs(expected[i]))) mismatched++;
            squares += diff * diff;
        }
        Assert.That(m.Mismatched, Is.EqualTo(mismatched));
        Assert.That(m.NonFiniteMismatched, Is.EqualTo(nonFiniteAt >= 0 ? 1 : 0));
        if (nonFiniteAt >= 0)
        {
            Assert.That((m.MaxAbs, m.Rmse, m.WorstIndex), Is.EqualTo((double.PositiveInfinity, double.PositiveInfinity, nonFiniteAt)));
            return;
        }
        Assert.That((m.MaxAbs, m.MaxRel, m.WorstIndex), Is.EqualTo((maxAbs, maxRel, worst)));
        Assert.That(m.Rmse, Is.EqualTo(Math.Sqrt(squares / length)).Within(1e-12).Percent);
        Assert.That(m.ReferenceRms, Is.EqualTo(Math.Sqrt(expected.Sum(v => v * v) / length)).Within(1e-12).Percent);
    }

    [Test]
    public void Tolerance_rejects_negative_values()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new Tolerance(-1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new Tolerance(0, double.NaN));
    }
}
