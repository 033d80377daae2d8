using Parity.Tensors;

namespace Parity.Data;

/// <summary>
/// The samples of one step, identical bytes for every backend: inputs as float32 values [B, features]
/// (held in a <see cref="Tensor"/>; a float64 backend widens them exactly) and class labels.
/// </summary>
public sealed record Batch(Tensor Inputs, int[] Labels)
{
    /// <summary>Number of samples.</summary>
    public int Size => Labels.Length;

    /// <summary>Number of input features.</summary>
    public int Features => Inputs.Shape[1];
}
