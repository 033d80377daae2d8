using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Parity.Tensors;

/// <summary>
/// Converts spans between float32 and float64, the one conversion every capture, trace read and write, batch and
/// reference buffer goes through: widening is exact, narrowing rounds to nearest (as a cast does). The loops are compiled
/// optimized from their first call: a generic library routine starts in the runtime's unoptimized tier, where vector
/// code is many times slower, and a run's first steps would pay for that.
/// </summary>
public static class FloatConversion
{
    /// <summary>
    /// Copies <paramref name="from"/> into <paramref name="to"/> (the same length), converting float32 and float64 either
    /// way; both element types must be <see cref="float"/> or <see cref="double"/>.
    /// </summary>
    public static void Convert<TFrom, TTo>(ReadOnlySpan<TFrom> from, Span<TTo> to)
        where TFrom : unmanaged
        where TTo : unmanaged
    {
        if (typeof(TFrom) == typeof(TTo))
        {
            CheckLengths(from.Length, to.Length);
            MemoryMarshal.Cast<TFrom, byte>(from).CopyTo(MemoryMarshal.Cast<TTo, byte>(to));
        }
        else if (typeof(TFrom) == typeof(float) && typeof(TTo) == typeof(double)) Widen(MemoryMarshal.Cast<TFrom, float>(from), MemoryMarshal.Cast<TTo, double>(to));
        else if (typeof(TFrom) == typeof(double) && typeof(TTo) == typeof(float)) Narrow(MemoryMarshal.Cast<TFrom, double>(from), MemoryMarshal.Cast<TTo, float>(to));
        else throw new NotSupportedException($"no conversion from {typeof(TFrom).Name} to {typeof(TTo).Name}: only float and double");
    }

    /// <summary>float32 to float64, exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Widen(ReadOnlySpan<float> from, Span<double> to)
    {
        CheckLengths(from.Length, to.Length);
        ref float source = ref MemoryMarshal.GetReference(from);
        ref double target = ref MemoryMarshal.GetReference(to);
        int i = 0, width = Vector256<float>.Count;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= from.Length - width; i += width)
            {
                var (lower, upper) = Vector256.Widen(Vector256.LoadUnsafe(ref source, (nuint)i));
                lower.StoreUnsafe(ref target, (nuint)i);
                upper.StoreUnsafe(ref target, (nuint)(i + width / 2));
            }
        }
        for (; i < from.Length; i++) Unsafe.Add(ref target, i) = Unsafe.Add(ref source, i);
    }

    /// <summary>float64 to float32, each value rounded to the nearest float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Narrow(ReadOnlySpan<double> from, Span<float> to)
    {
        CheckLengths(from.Length, to.Length);
        ref double source = ref MemoryMarshal.GetReference(from);
        ref float target = ref MemoryMarshal.GetReference(to);
        int i = 0, width = Vector256<float>.Count;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= from.Length - width; i += width)
            {
                var lower = Vector256.LoadUnsafe(ref source, (nuint)i);
                var upper = Vector256.LoadUnsafe(ref source, (nuint)(i + width / 2));
                Vector256.Narrow(lower, upper).StoreUnsafe(ref target, (nuint)i);
            }
        }
        for (; i < from.Length; i++) Unsafe.Add(ref target, i) = (float)Unsafe.Add(ref source, i);
    }

    private static void CheckLengths(int from, int to)
    {
        if (from != to) throw new ArgumentException($"{from} values cannot go into {to} places", nameof(to));
    }
}
