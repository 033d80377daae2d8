using Parity.Models;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Planning;

/// <summary>Samples and features of a data source, known before its data is read (from the spec or a file header).</summary>
/// <param name="Count">Samples used (after <c>limit</c> or <c>evalLimit</c>).</param>
/// <param name="Features">Features per sample.</param>
/// <param name="Origin">Where the samples come from, for messages.</param>
/// <param name="HeldBytes">Memory the loaded set takes, at its peak while it is read.</param>
public readonly record struct DataExtent(int Count, int Features, string Origin, long HeldBytes);

/// <summary>One part of a run's estimated peak memory.</summary>
/// <param name="JsonPath">The spec value that sizes it, where a smaller value shrinks it.</param>
/// <param name="What">What holds the memory, for people.</param>
/// <param name="Bytes">The estimate.</param>
public sealed record MemoryTerm(string JsonPath, string What, long Bytes);

/// <summary>
/// The peak memory a run of a plan needs on this machine, estimated from sizes alone before anything is allocated:
/// data sets, parameters with gradients and optimizer state, activations and gradients of a training batch, those of
/// an evaluation chunk, and the captured copies of each. Sized for a float64 backend (the widest) running in this
/// process; backends run one after another, so one backend's state counts once. Out-of-process workers and device
/// memory are not counted. Deliberately generous: it exists to refuse a mistyped size before it takes the machine
/// down, not to predict usage to the byte.
/// </summary>
public sealed class MemoryEstimate
{
    // Copies of every parameter a run holds at once: the plan's initial state, the backend's values, gradients and
    // scratch for shared instances, the captured parameters and gradients of a step, plus the optimizer's state.
    private const int ParameterCopies = 5;

    // Activations are held twice on a captured step: the backend's buffers and the record's copies.
    private const int ActivationCopies = 2;

    private MemoryEstimate(IReadOnlyList<MemoryTerm> terms) => Terms = terms;

    /// <summary>The parts, largest first.</summary>
    public IReadOnlyList<MemoryTerm> Terms { get; }

    /// <summary>The sum of the parts.</summary>
    public long TotalBytes => Terms.Sum(t => t.Bytes);

    /// <summary>The largest part: where to look first when the total is too much.</summary>
    public MemoryTerm Dominant => Terms[0];

    /// <summary>Estimates a run of <paramref name="spec"/> over data of the given extents.</summary>
    /// <param name="spec">The spec.</param>
    /// <param name="graph">Its model graph.</param>
    /// <param name="train">The training set.</param>
    /// <param name="eval">The eval set (after <c>evalLimit</c>).</param>
    /// <param name="evalIsSeparate">True when the eval set is its own source, held beside the training set.</param>
    /// <param name="evalBatchSize">Samples per evaluation call.</param>
    public static MemoryEstimate Of(ScenarioSpec spec, ModelGraph graph, DataExtent train, DataExtent eval, bool evalIsSeparate, int evalBatchSize)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(graph);
        const long Float64 = sizeof(double);
        // Per sample: the input and its gradient, then every call's output and output gradient, and the normalized
        // input of a normalization call.
        long activations = 2L * graph.Calls[0].InWidth + graph.Calls.Sum(c => (long)c.OutWidth * (c.Layer is BatchNormSpec or LayerNormSpec ? 3 : 2));
        long parameters = graph.Parameters.Sum(p => p.Shape.Aggregate(1L, (a, b) => a * b)) + 2L * graph.BatchNorms.Sum(b => b.Features);
        int optimizerState = spec.Optimizer is AdamSpec ? 2 : 1;
        int evalChunk = Math.Min(evalBatchSize, Math.Max(eval.Count, 1));
        string evalBatchPath = spec.Schedule.EvalBatchSize is null ? "$.data.batchSize" : "$.evaluation.batchSize";

        var terms = new List<MemoryTerm>
        {
            new("$.data.train", $"the training set ({train.Count} samples of {train.Features} features)", train.HeldBytes),
            new("$.model.layers", $"{parameters} parameters and running statistics with their gradients and optimizer state",
                Float64 * parameters * (ParameterCopies + optimizerState)),
            new("$.data.batchSize", $"activations and gradients of {graph.Calls.Count} calls at batch size {spec.Data.BatchSize}",
                Float64 * ActivationCopies * activations * spec.Data.BatchSize),
            new(evalBatchPath, $"activations of {graph.Calls.Count} calls at the evaluation batch size {evalChunk}",
                Float64 * activations * evalChunk),
        };
        if (evalIsSeparate) terms.Add(new("$.data.eval", $"the eval set ({eval.Count} samples of {eval.Features} features)", eval.HeldBytes));
        if (spec.Capture.Kinds.Contains(TensorKind.EvalOutput))
        {
            terms.Add(new(evalIsSeparate ? "$.data.eval" : "$.data.evalLimit",
                $"the captured eval-mode outputs of {graph.Calls.Count} calls over {eval.Count} eval samples",
                Float64 * eval.Count * graph.Calls.Sum(c => (long)c.OutWidth)));
        }
        return new MemoryEstimate(terms.OrderByDescending(t => t.Bytes).ToList());
    }

    /// <summary>
    /// What a data set of <paramref name="count"/> samples takes: float32 inputs and int labels, plus the file's
    /// bytes while they are converted when <paramref name="fromFile"/>.
    /// </summary>
    public static long DataBytes(int count, int features, bool fromFile) =>
        (long)count * ((long)features * (sizeof(float) + (fromFile ? 1 : 0)) + sizeof(int) + (fromFile ? 1 : 0));
}
