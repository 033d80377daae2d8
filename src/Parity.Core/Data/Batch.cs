using Parity.Tensors;

namespace Parity.Data;

/// <summary>
/// The samples of one step, identical bytes for every backend: inputs as float32 values [B, features]
/// (held in a <see cref="Tensor"/>; a float64 backend widens them exactly) and class labels.
/// </summary>
public sealed record Batch(Tensor Inputs, int[] Labels)
{
    /// <summary>
    /// The float targets [B, outputs] of an element-wise loss (float32 values, like the inputs), or null for softmax
    /// cross-entropy, which reads the labels (<see cref="DataSet.Targets"/>).
    /// </summary>
    public Tensor? Targets { get; init; }

    /// <summary>Number of samples.</summary>
    public int Size => Labels.Length;

    /// <summary>Number of input features.</summary>
    public int Features => Inputs.Shape[1];
}
