using System.Numerics;
using ILGPU;

namespace Parity.Backends.Native.Kernels;

/// <summary>
/// Deterministic sums inside one group laid out as [lanes (Y), columns (X)]: every thread stores its partial in
/// shared memory, then a binary tree over the lanes halves the active lanes with a barrier per level, so each column
/// gets the sum of its lanes. The pairing is fixed by thread index: the same group shape gives bit-identical sums
/// on every run (no atomics). Columns are features (batchnorm) or rows (layernorm); lanes stride the other axis.
/// </summary>
public static class GroupReduction
{
    /// <summary>Largest group a reduction kernel is launched with (columns x lanes).</summary>
    public const int MaxThreads = 256;

    /// <summary>Columns per group of the reduction kernels (features or rows handled by one group).</summary>
    public const int Columns = 16;

    /// <summary>The sum of <paramref name="value"/> over the lanes of this thread's column, returned to every lane.</summary>
    public static T SumLanes<T>(ArrayView<T> scratch, T value)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int x = Group.IdxX, y = Group.IdxY, width = Group.DimX;
        scratch[y * width + x] = value;
        Group.Barrier();
        for (int half = Group.DimY / 2; half > 0; half /= 2)
        {
            if (y < half) scratch[y * width + x] += scratch[(y + half) * width + x];
            Group.Barrier();
        }
        T total = scratch[x];
        Group.Barrier();
        return total;
    }

    /// <summary>Two lane sums at once (one barrier per level for both), returned to every lane.</summary>
    public static (T First, T Second) SumLanes2<T>(ArrayView<T> first, ArrayView<T> second, T a, T b)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int x = Group.IdxX, y = Group.IdxY, width = Group.DimX;
        first[y * width + x] = a;
        second[y * width + x] = b;
        Group.Barrier();
        for (int half = Group.DimY / 2; half > 0; half /= 2)
        {
            if (y < half)
            {
                first[y * width + x] += first[(y + half) * width + x];
                second[y * width + x] += second[(y + half) * width + x];
            }
            Group.Barrier();
        }
        var total = (first[x], second[x]);
        Group.Barrier();
        return total;
    }

    /// <summary>Two sums over a one-dimensional group (a tree over all its threads), returned to every thread.</summary>
    public static (T First, T Second) SumGroup2<T>(ArrayView<T> first, ArrayView<T> second, T a, T b)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int tid = Group.IdxX;
        first[tid] = a;
        second[tid] = b;
        Group.Barrier();
        for (int half = Group.DimX / 2; half > 0; half /= 2)
        {
            if (tid < half)
            {
                first[tid] += first[tid + half];
                second[tid] += second[tid + half];
            }
            Group.Barrier();
        }
        var total = (first[0], second[0]);
        Group.Barrier();
        return total;
    }
}
