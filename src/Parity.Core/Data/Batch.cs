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

    /// <summary>
    /// The harness's dropout mask of each dropout call of a training step, by call id ([B, width], 1 kept and 0 dropped;
    /// docs/spec.md#dropout); empty for eval batches and models without dropout.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> DropoutMasks { get; init; } = new Dictionary<string, Tensor>();

    /// <summary>The harness's mask of dropout call <paramref name="callId"/>; a backend error names the call when it is missing.</summary>
    public Tensor DropoutMask(string callId) =>
        DropoutMasks.TryGetValue(callId, out var mask) ? mask
            : throw new Backends.BackendException($"the batch holds no dropout mask for call '{callId}' (an eval batch, or a batch not made by the plan)");
}
