using System.Numerics;
using ILGPU;

namespace Parity.Backends.Native.Kernels;

/// <summary>Dropout's one kernel: forward and backward both multiply by the mask scaled by 1/(1-p).</summary>
public static class Masking
{
    /// <summary>y = x * scaledMask (forward: the input; backward: the output gradient).</summary>
    public static void Multiply<T>(Index1D index, ArrayView<T> input, ArrayView<T> scaledMask, ArrayView<T> output)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        output[index] = input[index] * scaledMask[index];
    }
}
