using System.Numerics;

namespace Parity.Backends.Native.Tests;

/// <summary>The batch conversion of a step (<see cref="HostConversion"/>): the same rounding as <c>T.CreateChecked</c>, on both paths.</summary>
[TestFixture(typeof(float))]
[TestFixture(typeof(double))]
public sealed class HostConversionTests<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    // 1000 values: one chunk; 3 chunks and a bit: the thread-pool path and its last partial chunk.
    [TestCase(1000)]
    [TestCase(3 * (1 << 18) + 5)]
    public void Rounds_every_value_as_CreateChecked(int length)
    {
        var random = new Random(length);
        // Not float32-exact on purpose (the batches are, but the conversion must not rely on it), with tiny and huge values.
        double[] source = Enumerable.Range(0, length).Select(i => (random.NextDouble() - 0.5) * Math.Pow(10, i % 20 - 10)).ToArray();
        var target = new T[length];
        HostConversion.FromDoubles(source, target);
        for (int i = 0; i < length; i++)
            if (target[i] != T.CreateChecked(source[i])) Assert.Fail($"[{i}]: {source[i]:R} became {target[i]}, expected {T.CreateChecked(source[i])}");
    }

    [Test]
    public void A_staging_array_of_another_length_is_refused() =>
        Assert.Throws<ArgumentException>(() => HostConversion.FromDoubles(new double[3], new T[4]));
}
