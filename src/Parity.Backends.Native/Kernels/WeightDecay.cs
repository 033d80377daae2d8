using System.Numerics;
using ILGPU;

namespace Parity.Backends.Native.Kernels;

/// <summary>
/// Weight decay on a slice of the flat parameter buffer (docs/conventions.md, weight decay): the decoupled shrink, the
/// gradient term (coupled rate p, or the loss term's 2 coefficient p) and the loss term's value.
/// </summary>
public static class WeightDecay
{
    /// <summary>One thread per element: p -= factor p (the decoupled shrink, from the pre-update p).</summary>
    public static void Shrink<T>(Index1D index, ArrayView<T> parameters, T factor)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        parameters[index] -= factor * parameters[index];
    }

    /// <summary>One thread per element: g += rate p.</summary>
    public static void AddGradientTerm<T>(Index1D index, ArrayView<T> gradients, ArrayView<T> parameters, T rate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        gradients[index] += rate * parameters[index];
    }

    /// <summary>
    /// One group: each thread sums the squares of elements tid, tid + threads, ...; the partial sums are tree-reduced
    /// (deterministic), and thread 0 adds coefficient * sum(w^2) to <paramref name="scalars"/>[0], the step's loss.
    /// </summary>
    public static void AddLossTerm<T>(ArrayView<T> parameters, ArrayView<T> scalars, T coefficient)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var first = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        var second = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        int tid = Group.IdxX, threads = Group.DimX;
        T squares = T.Zero;
        for (int i = tid; i < parameters.IntLength; i += threads) squares += parameters[i] * parameters[i];
        // The two-sum tree with nothing in its second sum: one reduction shared with the loss kernel.
        (squares, _) = GroupReduction.SumGroup2(first, second, squares, T.Zero);
        if (tid == 0) scalars[0] += coefficient * squares;
    }
}
