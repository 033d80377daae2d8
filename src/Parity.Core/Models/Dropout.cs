using Parity.Data;
using Parity.Randomness;
using Parity.Specs;
using Parity.Tensors;

namespace Parity.Models;

/// <summary>
/// The harness's dropout masks (docs/spec.md#dropout): one stream of the scenario's seed per step and call site, so adding a
/// dropout call or a step never shifts another call's masks, and every backend applies the same mask.
/// </summary>
public static class Dropout
{
    /// <summary>
    /// The mask of dropout call <paramref name="callId"/> at training step <paramref name="step"/>: [rows, width], element
    /// 0 (dropped) where a uniform draw of stream <c>dropout/step{step}/{callId}</c> falls below <paramref name="p"/>,
    /// else 1 (kept); row-major order. float32 (0 and 1 are exact in every precision).
    /// </summary>
    public static Tensor Mask(ulong seed, int step, string callId, int rows, int width, double p)
    {
        ArgumentNullException.ThrowIfNull(callId);
        var rng = ParityRandom.Derive(seed, $"dropout/step{step}/{callId}");
        var values = new double[rows * width];
        for (int i = 0; i < values.Length; i++) values[i] = rng.NextDouble() < p ? 0 : 1;
        return new Tensor([rows, width], values, DType.Float32);
    }

    /// <summary><paramref name="batch"/> with the mask of every dropout call of <paramref name="graph"/> at <paramref name="step"/>.</summary>
    public static Batch WithMasks(Batch batch, ModelGraph graph, ulong seed, int step)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(graph);
        var masks = new Dictionary<string, Tensor>();
        foreach (var call in graph.Calls)
            if (call.Layer is DropoutSpec dropout)
                masks[call.Id] = Mask(seed, step, call.Id, batch.Size, call.OutWidth, dropout.P);
        return masks.Count == 0 ? batch : batch with { DropoutMasks = masks };
    }
}
