using Parity.Backends;
using Parity.Data;
using Parity.Randomness;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

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

    /// <summary>
    /// The declared mismatch of every dropout layer of <paramref name="spec"/> with <c>masks: framework</c> in a backend that
    /// draws its masks with <paramref name="rng"/> (its framework's own generator): another mask than the harness's and
    /// every other framework's, so everything from the first dropout on differs from the reference's trajectory by design.
    /// Its value is the spec's own (<c>framework</c>): the step checks replay each step with the mask the backend recorded,
    /// so the math after the mask is still judged strictly.
    /// </summary>
    public static IReadOnlyList<ConventionMismatch> FrameworkMasks(ScenarioSpec spec, string rng)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var mismatches = new List<ConventionMismatch>();
        for (int i = 0; i < spec.Model.Layers.Count; i++)
        {
            if (spec.Model.Layers[i] is DropoutSpec { Masks: DropoutMasks.Framework } dropout)
                mismatches.Add(new ConventionMismatch(
                    $"$.model.layers[{i}].masks",
                    $"framework: '{dropout.Name}' drops with probability {dropout.P} using each framework's own RNG (the reference applies the harness's masks)",
                    $"{rng}: another mask than the harness's and any other framework's; the trajectory differs from the dropout on by design",
                    s_afterDropout) { Value = System.Text.Json.Nodes.JsonValue.Create("framework") });
        }
        return mismatches;
    }

    // Everything a different mask reaches: the mask, then (from the next step on) every tensor of the trajectory.
    private static readonly IReadOnlyList<string> s_afterDropout =
        [.. Enum.GetValues<TensorKind>().Where(k => k != TensorKind.OptimizerStep).Select(k => k.Name())];
}
