using Parity.Backends;
using Parity.Models;
using Parity.Specs;
using Parity.Tensors;

namespace Parity.Tracing;

/// <summary>
/// Which tensors a trace of one model holds, with which shapes, in which order (docs/trace.md): the one place that
/// knows the trace layout. Backends emit their records through it, the runner checks every record against it, the
/// comparison orders by it and the report shapes by it.
/// <para>Sites: call ids for per-call kinds (forward, outputGradient, evalOutput; batchMean and batchVariance for
/// batchnorm calls; dropoutMask for dropout calls), parameter names (<c>instance.local</c>) for parameters and their gradients, batchnorm instance
/// names for running statistics, <c>parameter/slot</c> for optimizer slots, and "" for scalars.</para>
/// <para>Order within a record: forward pass call by call (a batchnorm call's batch mean and variance before its
/// output, a dropout call's mask likewise); loss and train accuracy; output gradients from the last call to the first; parameter gradients; running
/// means, then running variances; the optimizer step count and slots; parameters; then eval outputs, eval loss and
/// accuracy. Beyond the forward pass this is <see cref="TensorKind"/>'s declaration order, each kind's sites in model order.</para>
/// </summary>
public sealed class TraceLayout
{
    private readonly Dictionary<string, int> _callIndex = [];
    private readonly Dictionary<string, int> _parameterIndex = [];
    private readonly Dictionary<string, int> _batchNormIndex = [];
    private readonly Dictionary<string, (int Parameter, int Slot)> _slotIndex = [];

    /// <summary>
    /// The layout of traces of <paramref name="graph"/> trained by <paramref name="optimizer"/>; without the accuracies
    /// when <paramref name="accuracy"/> is false (a loss whose targets are not class labels, <see cref="LossSpec.HasAccuracy"/>).
    /// </summary>
    public TraceLayout(ModelGraph graph, OptimizerSpec optimizer, bool accuracy = true)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(optimizer);
        Graph = graph;
        HasAccuracy = accuracy;
        Slots = optimizer.Slots;
        foreach (var call in graph.Calls) _callIndex[call.Id] = call.Index;
        for (int i = 0; i < graph.Parameters.Count; i++)
        {
            _parameterIndex[graph.Parameters[i].Name] = i;
            for (int s = 0; s < Slots.Count; s++) _slotIndex[SlotSite(graph.Parameters[i].Name, Slots[s])] = (i, s);
        }
        for (int i = 0; i < graph.BatchNorms.Count; i++) _batchNormIndex[graph.BatchNorms[i].Name] = i;
        StateKeys = [.. TensorKinds.State.Order().SelectMany(KeysOf)];
    }

    /// <summary>The layout of a plan's traces.</summary>
    public static TraceLayout Of(Planning.Plan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return new TraceLayout(plan.Graph, plan.Spec.Optimizer, plan.Spec.Loss.HasAccuracy);
    }

    /// <summary>True when records hold the train and eval accuracies (the loss's targets are class labels).</summary>
    public bool HasAccuracy { get; }

    /// <summary>The model.</summary>
    public ModelGraph Graph { get; }

    /// <summary>The optimizer's slot names (<see cref="OptimizerSpec.Slots"/>).</summary>
    public IReadOnlyList<string> Slots { get; }

    /// <summary>Every key of the state between steps: parameters, running statistics, optimizer step count and slots.</summary>
    public IReadOnlyList<TensorKey> StateKeys { get; }

    /// <summary>The site of slot <paramref name="slot"/> of <paramref name="parameter"/>: <c>l1.weight/m</c>.</summary>
    public static string SlotSite(string parameter, string slot) => $"{parameter}/{slot}";

    /// <summary>Every key of <paramref name="kind"/> in this model, in canonical order.</summary>
    public IReadOnlyList<TensorKey> KeysOf(TensorKind kind)
    {
        var g = Graph;
        return kind switch
        {
            TensorKind.Forward or TensorKind.OutputGradient or TensorKind.EvalOutput => [.. g.Calls.Select(c => new TensorKey(kind, c.Id))],
            TensorKind.BatchMean or TensorKind.BatchVariance => [.. g.Calls.Where(c => c.IsBatchNorm).Select(c => new TensorKey(kind, c.Id))],
            TensorKind.DropoutMask => [.. g.Calls.Where(c => c.IsDropout).Select(c => new TensorKey(kind, c.Id))],
            TensorKind.ParameterGradient or TensorKind.Parameter => [.. g.Parameters.Select(p => new TensorKey(kind, p.Name))],
            TensorKind.RunningMean or TensorKind.RunningVariance => [.. g.BatchNorms.Select(b => new TensorKey(kind, b.Name))],
            TensorKind.OptimizerSlot => [.. g.Parameters.SelectMany(p => Slots.Select(s => new TensorKey(kind, SlotSite(p.Name, s))))],
            TensorKind.TrainAccuracy or TensorKind.EvalAccuracy when !HasAccuracy => [],
            _ => [new TensorKey(kind, "")],
        };
    }

    /// <summary>
    /// The canonical shape of <paramref name="key"/> in a record over <paramref name="rows"/> samples ([rows, width] per
    /// call, [features] for statistics, the parameter's shape, [] for scalars); null when this model has no such key.
    /// </summary>
    public int[]? ShapeOf(TensorKey key, int rows)
    {
        var g = Graph;
        switch (key.Kind)
        {
            case TensorKind.Forward or TensorKind.OutputGradient or TensorKind.EvalOutput:
                return _callIndex.TryGetValue(key.Site, out int c) ? [rows, g.Calls[c].OutWidth] : null;
            case TensorKind.BatchMean or TensorKind.BatchVariance:
                return _callIndex.TryGetValue(key.Site, out int b) && g.Calls[b].IsBatchNorm ? [g.Calls[b].OutWidth] : null;
            case TensorKind.DropoutMask:
                return _callIndex.TryGetValue(key.Site, out int d) && g.Calls[d].IsDropout ? [rows, g.Calls[d].OutWidth] : null;
            case TensorKind.ParameterGradient or TensorKind.Parameter:
                return _parameterIndex.TryGetValue(key.Site, out int p) ? (int[])g.Parameters[p].Shape.Clone() : null;
            case TensorKind.RunningMean or TensorKind.RunningVariance:
                return _batchNormIndex.TryGetValue(key.Site, out int n) ? [g.BatchNorms[n].Features] : null;
            case TensorKind.OptimizerSlot:
                return _slotIndex.TryGetValue(key.Site, out var slot) ? (int[])g.Parameters[slot.Parameter].Shape.Clone() : null;
            case TensorKind.TrainAccuracy or TensorKind.EvalAccuracy when !HasAccuracy:
                return null;
            default:
                return key.Kind.IsScalar() && key.Site.Length == 0 ? [] : null;
        }
    }

    /// <summary>The parameter an optimizer slot belongs to, or null when <paramref name="site"/> names no slot of this model.</summary>
    public string? ParameterOfSlot(string site) => _slotIndex.TryGetValue(site, out var slot) ? Graph.Parameters[slot.Parameter].Name : null;

    /// <summary>A sort key for canonical order within one record; unknown sites sort last within their group.</summary>
    public (int Group, int Index) Rank(TensorKey key)
    {
        int n = Graph.Calls.Count;
        int call = _callIndex.GetValueOrDefault(key.Site, -1);
        return key.Kind switch
        {
            TensorKind.BatchMean => (0, call < 0 ? int.MaxValue : 3 * call),
            TensorKind.BatchVariance => (0, call < 0 ? int.MaxValue : 3 * call + 1),
            TensorKind.DropoutMask => (0, call < 0 ? int.MaxValue : 3 * call + 1),
            TensorKind.Forward => (0, call < 0 ? int.MaxValue : 3 * call + 2),
            TensorKind.Loss => (1, 0),
            TensorKind.TrainAccuracy => (1, 1),
            TensorKind.OutputGradient => (2, call < 0 ? int.MaxValue : n - 1 - call),
            TensorKind.ParameterGradient => (3, _parameterIndex.GetValueOrDefault(key.Site, int.MaxValue)),
            TensorKind.RunningMean => (4, _batchNormIndex.GetValueOrDefault(key.Site, int.MaxValue)),
            TensorKind.RunningVariance => (5, _batchNormIndex.GetValueOrDefault(key.Site, int.MaxValue)),
            TensorKind.OptimizerStep => (6, 0),
            TensorKind.OptimizerSlot => (7, _slotIndex.TryGetValue(key.Site, out var s) ? s.Parameter * Math.Max(1, Slots.Count) + s.Slot : int.MaxValue),
            TensorKind.Parameter => (8, _parameterIndex.GetValueOrDefault(key.Site, int.MaxValue)),
            TensorKind.EvalOutput => (9, call < 0 ? int.MaxValue : call),
            TensorKind.EvalLoss => (10, 0),
            _ => (10, 1),
        };
    }

    /// <summary>Sorts keys into canonical order (ties and unknown sites by site name).</summary>
    public IEnumerable<TensorKey> InOrder(IEnumerable<TensorKey> keys) =>
        keys.OrderBy(k => Rank(k).Group).ThenBy(k => Rank(k).Index).ThenBy(k => k.Site, StringComparer.Ordinal);

    /// <summary>A copy of <paramref name="record"/> with its entries in canonical order.</summary>
    public StepRecord Canonical(StepRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var sorted = new StepRecord(record.Step, record.Phase);
        foreach (var e in record.Entries.OrderBy(e => Rank(e.Key).Group).ThenBy(e => Rank(e.Key).Index).ThenBy(e => e.Key.Site, StringComparer.Ordinal))
            sorted.Add(e.Key.Kind, e.Key.Site, e.Value);
        return sorted;
    }

    /// <summary>
    /// The keys a record of <paramref name="phase"/> must hold when <paramref name="capture"/> was asked for: every site of
    /// every asked-for kind of that phase, plus the losses and accuracies; an initial record holds the state.
    /// </summary>
    public IEnumerable<TensorKey> Required(RecordPhase phase, CaptureRequest capture)
    {
        ArgumentNullException.ThrowIfNull(capture);
        IEnumerable<TensorKind> kinds = phase switch
        {
            RecordPhase.Initial => capture.Kinds.Where(k => k.IsState()),
            RecordPhase.Train => capture.Kinds.Where(k => !k.IsEval()).Append(TensorKind.Loss).Append(TensorKind.TrainAccuracy),
            _ => capture.Kinds.Where(k => k.IsEval()).Append(TensorKind.EvalLoss).Append(TensorKind.EvalAccuracy),
        };
        return InOrder(kinds.Distinct().SelectMany(KeysOf).Where(k => capture.Filter?.IncludesSite(k.Kind, k.Site) ?? true));
    }

    /// <summary>
    /// The names <c>--sites</c> accepts for this model: every call site, layer instance and parameter (a name covers the
    /// tensors at it and below it, <see cref="Planning.CaptureFilter.Covers"/>).
    /// </summary>
    public IReadOnlyList<string> SiteNames() =>
        [.. TensorKinds.All.SelectMany(KeysOf).Select(k => k.Site).Where(s => s.Length > 0 && !s.Contains('/', StringComparison.Ordinal))
            .SelectMany(s => s.Split('.') is [var instance, _] ? new[] { instance, s } : [s]).Distinct().Order(StringComparer.Ordinal)];

    /// <summary>
    /// What is wrong with <paramref name="record"/> as an answer to <paramref name="capture"/> over <paramref name="rows"/>
    /// samples: a key this model does not have, a kind of the wrong phase, a key twice, a wrong shape, a required key
    /// missing; null when nothing is. Kinds not asked for may be present (they are checked like the others).
    /// </summary>
    public string? Problem(StepRecord record, CaptureRequest capture, int rows)
    {
        ArgumentNullException.ThrowIfNull(record);
        return Problem(record.Phase, record.Entries.Select(e => (e.Key, e.Value.Shape)), capture, rows);
    }

    /// <summary>
    /// <see cref="Problem(StepRecord, CaptureRequest, int)"/> for a record of <paramref name="phase"/> known only by its keys
    /// and shapes (an answer checked before its values are read).
    /// </summary>
    public string? Problem(RecordPhase phase, IEnumerable<(TensorKey Key, int[] Shape)> entries, CaptureRequest capture, int rows)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var seen = new HashSet<TensorKey>();
        foreach (var (key, actual) in entries)
        {
            if (!seen.Add(key)) return $"it holds {key} twice";
            bool phaseFits = phase switch
            {
                RecordPhase.Initial => key.Kind.IsState(),
                RecordPhase.Train => !key.Kind.IsEval(),
                _ => key.Kind.IsEval(),
            };
            if (!phaseFits) return $"it holds {key}, which belongs to another phase than {phase.ToString().ToLowerInvariant()}";
            if (ShapeOf(key, rows) is not int[] shape)
                return $"it holds {key}, which this model does not have (sites are call ids, parameter names instance.local, batchnorm instance names, parameter/slot for optimizer slots {SlotList})";
            if (!actual.AsSpan().SequenceEqual(shape))
            {
                // A linear weight laid out [in, out] (Keras, TF.js) instead of [out, in] is the commonest wrong shape: say so.
                string transposed = shape.Length == 2 && actual is [int r, int c] && r == shape[1] && c == shape[0]
                    ? " (its transpose: a weight laid out [in, out] where the trace layout is [out, in]; transpose it when tracing)"
                    : "";
                return $"{key} has shape [{string.Join(",", actual)}]; expected [{string.Join(",", shape)}]{transposed}";
            }
        }
        var missing = Required(phase, capture).Where(k => !seen.Contains(k)).Select(k => k.ToString()).ToList();
        if (missing.Count > 0) return $"it lacks {string.Join(", ", missing.Take(8))}{(missing.Count > 8 ? $" and {missing.Count - 8} more" : "")}";
        return null;
    }

    /// <summary>
    /// A record of every key <see cref="Required"/> names for <paramref name="capture"/>, in canonical order, each value
    /// asked of <paramref name="valueOf"/>: how a backend emits its records without a layout of its own.
    /// </summary>
    public StepRecord Record(int step, RecordPhase phase, CaptureRequest capture, Func<TensorKey, Tensor> valueOf)
    {
        ArgumentNullException.ThrowIfNull(valueOf);
        var record = new StepRecord(step, phase);
        foreach (var key in Required(phase, capture)) record.Add(key.Kind, key.Site, valueOf(key));
        return record;
    }

    /// <summary>True when <paramref name="record"/> holds every state key (a step check can start from it).</summary>
    public bool HoldsState(StepRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return StateKeys.All(k => record.Find(k.Kind, k.Site) is not null);
    }

    private string SlotList => Slots.Count == 0 ? "(this optimizer has none)" : $"({string.Join(", ", Slots)})";
}
