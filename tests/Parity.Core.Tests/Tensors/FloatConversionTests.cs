namespace Parity.Tensors.Tests;

public sealed class FloatConversionTests
{
    // Values where a conversion can go wrong: signed zeros, subnormals of both widths, the float32 limits and beyond,
    // infinities, NaN, halfway cases of float32 rounding, and ordinary values.
    private static readonly double[] Awkward =
    [
        0.0, -0.0, double.Epsilon, -double.Epsilon, float.Epsilon, -float.Epsilon, 1e-40, -1e-45, float.MaxValue, -float.MaxValue,
        3.4028235677973366e38, 1e39, -1e300, double.PositiveInfinity, double.NegativeInfinity, double.NaN,
        1 + Math.Pow(2, -24), 1 + 3 * Math.Pow(2, -24), 0.1, -2.5, Math.PI, 12345.678, 1e-7,
    ];

    // Every length from 0 to 40, so that each vector body meets every tail length, at several offsets into the values.
    private static IEnumerable<TestCaseData> Lengths() =>
        Enumerable.Range(0, 41).SelectMany(n => new[] { 0, 5 }.Select(offset => new TestCaseData(n, offset)));

    private static double[] Values(int count, int offset) =>
        Enumerable.Range(0, count).Select(i => Awkward[(i + offset) % Awkward.Length] * (i % 3 == 2 ? -1 : 1)).ToArray();

    [TestCaseSource(nameof(Lengths))]
    public void NarrowingRoundsEachValueAsACastDoes(int count, int offset)
    {
        var values = Values(count, offset);
        var narrowed = new float[count];
        FloatConversion.Narrow(values, narrowed);
        for (int i = 0; i < count; i++)
            Assert.That(BitConverter.SingleToInt32Bits(narrowed[i]), Is.EqualTo(BitConverter.SingleToInt32Bits((float)values[i])), $"element {i} ({values[i]:R})");
    }

    [TestCaseSource(nameof(Lengths))]
    public void WideningIsExact(int count, int offset)
    {
        var floats = Values(count, offset).Select(v => (float)v).ToArray();
        var widened = new double[count];
        FloatConversion.Widen(floats, widened);
        for (int i = 0; i < count; i++)
            Assert.That(BitConverter.DoubleToInt64Bits(widened[i]), Is.EqualTo(BitConverter.DoubleToInt64Bits(floats[i])), $"element {i} ({floats[i]:R})");
    }

    [Test]
    public void ConvertCopiesSameTypesAndRefusesMismatchedLengthsAndOtherTypes()
    {
        double[] values = [1.5, double.NaN, -0.0];
        var copy = new double[3];
        FloatConversion.Convert<double, double>(values, copy);
        Assert.That(copy.Select(BitConverter.DoubleToInt64Bits), Is.EqualTo(values.Select(BitConverter.DoubleToInt64Bits)));
        Assert.Throws<ArgumentException>(() => FloatConversion.Convert<double, float>(values, new float[2]));
        Assert.Throws<NotSupportedException>(() => FloatConversion.Convert<int, double>(new int[3], copy));
    }
}
