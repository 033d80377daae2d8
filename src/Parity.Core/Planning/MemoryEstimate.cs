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
/// the harness itself, data sets, parameters with gradients and optimizer state, activations and gradients of a
/// training batch, those of an evaluation chunk, the merged eval outputs, and the copies of each that captured records
/// and their comparison hold. Sized for a float64 backend (the widest) running in this process, one at a time; a run with
/// several lanes (<c>--jobs</c>) takes as many lanes as fit the budget (<see cref="LanesWithin"/>). Out-of-process workers
/// and device memory are not counted. Deliberately
/// generous: it exists to refuse a size the machine cannot hold before it takes the machine down, not to predict usage
/// to the byte.
/// </summary>
/// <remarks>
/// Calibration (<c>parity run</c> with the default backends, two steps, every kind captured, 2 cores, 23 GB): a
/// 1 -> 65536 linear layer with 22 relu calls at batch 24 completes under a managed-heap limit of 4 GiB and runs out of
/// memory under 2.5 GiB (its comparison phase holds the records of the reference, the judged backend and its noise
/// envelope at once); its estimate is 5.7 GiB. Without a limit the garbage collector lets freed records pile up while
/// memory is plentiful (peak RSS 7.6 to 9.6 GB there; 1.8 GB for 60 steps of seed000-shared-bn, which completes under a
/// 512 MiB limit and is estimated at 856 MiB): it collects them once memory grows scarce, so the estimate counts what
/// must be live, not that slack.
/// </remarks>
public sealed class MemoryEstimate
{
    // The .NET runtime, the harness's code and its small buffers, whatever the spec.
    private const long RuntimeBytes = 256L << 20;

    // A captured step's tensors exist as the record being written, then in the comparison as the records of the
    // reference, of the judged backend and of its noise envelope, plus the judge's centered and difference arrays.
    private const int RecordCopies = 4;

    // Parameters held by the backend: the plan's initial state, the values, the gradients, scratch for shared instances.
    private const int BackendParameterCopies = 4;

    private MemoryEstimate(IReadOnlyList<MemoryTerm> terms, long sharedBytes)
    {
        Terms = terms;
        SharedBytes = sharedBytes;
    }

    /// <summary>The parts, largest first.</summary>
    public IReadOnlyList<MemoryTerm> Terms { get; }

    /// <summary>The sum of the parts and of what the harness itself takes.</summary>
    public long TotalBytes => RuntimeBytes + Terms.Sum(t => t.Bytes);

    /// <summary>What the run holds once whatever runs at once: the harness and the data sets.</summary>
    public long SharedBytes { get; }

    /// <summary>
    /// How many backends may train (and be judged) at once within <paramref name="budget"/>: each lane holds its own
    /// parameters, activations and records, the data sets are shared. At least 1 (a run that does not fit one lane is
    /// refused by the planner), at most <paramref name="wanted"/>.
    /// </summary>
    public int LanesWithin(long budget, int wanted)
    {
        long lane = Math.Max(1, TotalBytes - SharedBytes);
        long fit = (budget - SharedBytes) / lane;
        return (int)Math.Clamp(fit, 1, Math.Max(1, wanted));
    }

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
        int optimizerState = Math.Max(1, spec.Optimizer.Slots.Count); // centered RMSprop with momentum keeps three
        int evalChunk = Math.Min(evalBatchSize, Math.Max(eval.Count, 1));
        string evalBatchPath = spec.Schedule.EvalBatchSize is null ? "$.data.batchSize" : "$.evaluation.batchSize";

        var terms = new List<MemoryTerm>
        {
            new("$.data.train", $"the training set ({train.Count} samples of {train.Features} features)", train.HeldBytes),
            new("$.model.layers", $"{parameters} parameters and running statistics with their gradients and optimizer state",
                Float64 * parameters * (BackendParameterCopies + optimizerState + RecordCopies * (2 + optimizerState))),
            new("$.data.batchSize", $"activations and gradients of {graph.Calls.Count} calls at batch size {spec.Data.BatchSize}, with their captured copies",
                Float64 * (1 + RecordCopies) * activations * spec.Data.BatchSize),
            new(evalBatchPath, $"activations of {graph.Calls.Count} calls at the evaluation batch size {evalChunk}",
                Float64 * activations * evalChunk),
        };
        if (evalIsSeparate) terms.Add(new("$.data.eval", $"the eval set ({eval.Count} samples of {eval.Features} features)", eval.HeldBytes));
        if (spec.Capture.Kinds.Contains(TensorKind.EvalOutput))
        {
            terms.Add(new(evalIsSeparate ? "$.data.eval" : "$.data.evalLimit",
                $"the captured eval-mode outputs of {graph.Calls.Count} calls over {eval.Count} eval samples",
                Float64 * RecordCopies * eval.Count * graph.Calls.Sum(c => (long)c.OutWidth)));
        }
        long shared = RuntimeBytes + train.HeldBytes + (evalIsSeparate ? eval.HeldBytes : 0);
        return new MemoryEstimate(terms.OrderByDescending(t => t.Bytes).ToList(), shared);
    }

    /// <summary>
    /// What a data set of <paramref name="count"/> samples takes: float32 inputs and int labels, plus the file's
    /// bytes while they are converted when <paramref name="fromFile"/>.
    /// </summary>
    public static long DataBytes(int count, int features, bool fromFile) =>
        (long)count * ((long)features * (sizeof(float) + (fromFile ? 1 : 0)) + sizeof(int) + (fromFile ? 1 : 0));
}
