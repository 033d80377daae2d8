using Parity.Models;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Comparison;

/// <summary>
/// What every traced tensor is computed from, its place in comparison order, and which tensors are not
/// identifiable, all derived from the model graph (docs/tolerances.md, "Comparison order" and "Origin or inherited").
/// <para>Order within a step: forward calls in call order, each call's batch mean and variance before its
/// output; loss and train accuracy; output gradients from the last call to the first; parameter gradients;
/// running means and variances; parameters. Eval records follow the train record of the same step.</para>
/// <para>Dependencies (s = step, s-1 = the previous train record or the initial state):</para>
/// <list type="bullet">
/// <item>Forward(i, s) &lt;- Forward(i-1, s) (none for the first call: the input), the parameters of call i's
/// instance at s-1, and for batchnorm calls BatchMean(i, s), BatchVariance(i, s), for dropout calls DropoutMask(i, s).</item>
/// <item>DropoutMask(i, s): none (the harness's or the framework's draw).</item>
/// <item>BatchMean(i, s), BatchVariance(i, s) &lt;- Forward(i-1, s).</item>
/// <item>Loss(s), TrainAccuracy(s) &lt;- Forward(last, s).</item>
/// <item>OutputGradient(last, s) &lt;- Forward(last, s); OutputGradient(i, s) &lt;- OutputGradient(i+1, s) and what call
/// i+1 used: its input Forward(i, s), its output Forward(i+1, s), its instance's parameters at s-1, its batch statistics
/// or dropout mask.</item>
/// <item>ParameterGradient(p, s) &lt;- for each call c of p's instance: OutputGradient(c, s), its input Forward(c-1, s),
/// its batch statistics.</item>
/// <item>RunningMean(bn, s) &lt;- BatchMean(c, s) of bn's calls and RunningMean(bn, s-1); RunningVariance likewise.</item>
/// <item>OptimizerStep(s) &lt;- OptimizerStep(s-1). OptimizerSlot(p/slot, s) &lt;- ParameterGradient(p, s), OptimizerSlot(p/slot, s-1).</item>
/// <item>Parameter(p, s) &lt;- ParameterGradient(p, s), Parameter(p, s-1), p's optimizer slots at s and OptimizerStep(s).</item>
/// <item>EvalOutput(i, s) &lt;- EvalOutput(i-1, s), the parameters of call i's instance at s, and for batchnorm calls
/// its running mean and variance at s. EvalLoss(s), EvalAccuracy(s) &lt;- EvalOutput(last, s).</item>
/// <item>Initial-state tensors have no upstream.</item>
/// </list>
/// A not-identifiable bias is left out of the upstream of its own linear call's Forward and EvalOutput,
/// since those are compared column-centered and do not see it.
/// </summary>
public sealed class TensorDependencies
{
    private readonly ModelGraph _graph;
    private readonly Dictionary<string, int> _callIndex = [];
    private readonly Dictionary<string, List<int>> _callsOfInstance = [];
    private readonly Dictionary<string, List<string>> _parametersOfInstance = [];
    private readonly Dictionary<string, int> _parameterIndex = [];
    private readonly Dictionary<string, int> _batchNormIndex = [];
    private readonly HashSet<TensorKey> _notIdentifiable = [];
    private readonly HashSet<string> _notIdentifiableParameters = [];
    private readonly HashSet<string> _centeredCalls = [];

    /// <summary>Derives the rules for traces of <paramref name="layout"/>.</summary>
    public TensorDependencies(TraceLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        Layout = layout;
        var graph = layout.Graph;
        _graph = graph;
        foreach (var call in graph.Calls)
        {
            _callIndex[call.Id] = call.Index;
            if (!_callsOfInstance.TryGetValue(call.Layer.Name, out var list)) _callsOfInstance[call.Layer.Name] = list = [];
            list.Add(call.Index);
        }
        for (int i = 0; i < graph.Parameters.Count; i++)
        {
            var p = graph.Parameters[i];
            _parameterIndex[p.Name] = i;
            if (!_parametersOfInstance.TryGetValue(p.Instance, out var list)) _parametersOfInstance[p.Instance] = list = [];
            list.Add(p.Name);
        }
        for (int i = 0; i < graph.BatchNorms.Count; i++) _batchNormIndex[graph.BatchNorms[i].Name] = i;

        // Not identifiable (docs/tolerances.md): a bias whose every call feeds batchnorm only shifts the batch mean,
        // which batchnorm subtracts; its gradient is rounding noise that Adam scales to full steps.
        foreach (var p in graph.Parameters.Where(p => !p.Identifiable))
        {
            _notIdentifiableParameters.Add(p.Name);
            _notIdentifiable.Add(new TensorKey(TensorKind.ParameterGradient, p.Name));
            _notIdentifiable.Add(new TensorKey(TensorKind.Parameter, p.Name));
            foreach (var slot in layout.Slots) _notIdentifiable.Add(new TensorKey(TensorKind.OptimizerSlot, TraceLayout.SlotSite(p.Name, slot)));
            foreach (int c in _callsOfInstance.GetValueOrDefault(p.Instance, []))
            {
                _centeredCalls.Add(graph.Calls[c].Id);
                if (c + 1 < graph.Calls.Count && graph.Calls[c + 1].Layer is BatchNormSpec bn)
                {
                    _notIdentifiable.Add(new TensorKey(TensorKind.BatchMean, graph.Calls[c + 1].Id));
                    _notIdentifiable.Add(new TensorKey(TensorKind.RunningMean, bn.Name));
                }
            }
        }
    }

    /// <summary>The trace layout: keys, shapes and comparison order.</summary>
    public TraceLayout Layout { get; }

    /// <summary>Tensor keys whose values carry a not-identifiable bias and stay out of the verdict.</summary>
    public IReadOnlySet<TensorKey> NotIdentifiable => _notIdentifiable;

    /// <summary>Call ids whose Forward and EvalOutput are compared column-centered.</summary>
    public IReadOnlySet<string> CenteredCalls => _centeredCalls;

    /// <summary>True when <paramref name="key"/> is kept out of the verdict.</summary>
    public bool IsNotIdentifiable(TensorKey key) => _notIdentifiable.Contains(key);

    /// <summary>True when <paramref name="key"/> is compared column-centered (what the following batchnorm sees).</summary>
    public bool IsCentered(TensorKey key) =>
        key.Kind is TensorKind.Forward or TensorKind.EvalOutput && _centeredCalls.Contains(key.Site);

    /// <summary>
    /// For the output gradient of a call whose next call has a kink at 0 (ReLU, LeakyReLU, ELU;
    /// <see cref="Activations.HasKink"/>): that call's id, whose forward output decides the branch of the derivative
    /// (ReLU: dL/dx = dL/dy * [x &gt; 0]); null otherwise. Where two traces put an element of that output on opposite
    /// sides of zero (a value within rounding of the kink), the gradient element legitimately differs by up to its whole
    /// size.
    /// </summary>
    public string? KinkSource(TensorKey key)
    {
        if (key.Kind != TensorKind.OutputGradient || !_callIndex.TryGetValue(key.Site, out int i)) return null;
        return i + 1 < _graph.Calls.Count && Activations.HasKink(_graph.Calls[i + 1].Layer) ? key.Site : null;
    }

    /// <summary>Width of the last call's output: the number of classes the loss is taken over.</summary>
    public int Classes => _graph.OutputWidth;

    /// <summary>
    /// The logits a scalar is computed from: forward:&lt;last call&gt; for the loss and the train accuracy,
    /// evalOutput:&lt;last call&gt; for the eval loss and accuracy; null for other kinds.
    /// </summary>
    public TensorKey? LogitsOf(TensorKey key) => key.Kind switch
    {
        TensorKind.Loss or TensorKind.TrainAccuracy => new TensorKey(TensorKind.Forward, _graph.Calls[^1].Id),
        TensorKind.EvalLoss or TensorKind.EvalAccuracy => new TensorKey(TensorKind.EvalOutput, _graph.Calls[^1].Id),
        _ => null,
    };

    /// <summary>Sorts keys of one record into comparison order (<see cref="TraceLayout.InOrder"/>).</summary>
    public IEnumerable<TensorKey> InOrder(IEnumerable<TensorKey> keys) => Layout.InOrder(keys);

    /// <summary>The tensors <paramref name="at"/> is computed from (rules in the class summary).</summary>
    public IReadOnlyList<TensorAt> Upstream(TensorAt at)
    {
        var result = new List<TensorAt>();
        if (at.Phase == RecordPhase.Initial) return result;
        int s = at.Step;
        var here = at.Phase;
        // State "before" a train step is the previous train record, or the initial state before step 1.
        (int Step, RecordPhase Phase) before = s <= 1 ? (0, RecordPhase.Initial) : (s - 1, RecordPhase.Train);
        // State an evaluation after step s reads: the train record of step s.
        (int Step, RecordPhase Phase) after = s == 0 ? (0, RecordPhase.Initial) : (s, RecordPhase.Train);
        int last = _graph.Calls.Count - 1;
        int call = _callIndex.GetValueOrDefault(at.Key.Site, -1);

        void Add(TensorKind kind, string site, (int Step, RecordPhase Phase) where) => result.Add(new TensorAt(where.Step, where.Phase, new TensorKey(kind, site)));
        void AddHere(TensorKind kind, string site) => Add(kind, site, (s, here));
        void AddParameters(int c, (int Step, RecordPhase Phase) where, bool skipNotIdentifiable)
        {
            foreach (string p in _parametersOfInstance.GetValueOrDefault(_graph.Calls[c].Layer.Name, []))
                if (!(skipNotIdentifiable && _notIdentifiableParameters.Contains(p))) Add(TensorKind.Parameter, p, where);
        }
        void AddBatchStatistics(int c)
        {
            // A dropout call's mask is, like batch statistics, a per-step input of the call.
            if (_graph.Calls[c].IsDropout) AddHere(TensorKind.DropoutMask, _graph.Calls[c].Id);
            if (!_graph.Calls[c].IsBatchNorm) return;
            AddHere(TensorKind.BatchMean, _graph.Calls[c].Id);
            AddHere(TensorKind.BatchVariance, _graph.Calls[c].Id);
        }

        switch (at.Key.Kind)
        {
            case TensorKind.Forward when call >= 0:
                if (call > 0) AddHere(TensorKind.Forward, _graph.Calls[call - 1].Id);
                AddParameters(call, before, skipNotIdentifiable: _centeredCalls.Contains(at.Key.Site));
                AddBatchStatistics(call);
                break;
            case TensorKind.BatchMean or TensorKind.BatchVariance when call > 0:
                AddHere(TensorKind.Forward, _graph.Calls[call - 1].Id);
                break;
            case TensorKind.Loss or TensorKind.TrainAccuracy when last >= 0:
                AddHere(TensorKind.Forward, _graph.Calls[last].Id);
                break;
            case TensorKind.OutputGradient when call == last:
                AddHere(TensorKind.Forward, _graph.Calls[last].Id);
                break;
            case TensorKind.OutputGradient when call >= 0:
                AddHere(TensorKind.OutputGradient, _graph.Calls[call + 1].Id);
                AddHere(TensorKind.Forward, _graph.Calls[call].Id);
                AddHere(TensorKind.Forward, _graph.Calls[call + 1].Id);
                AddParameters(call + 1, before, skipNotIdentifiable: false);
                AddBatchStatistics(call + 1);
                break;
            case TensorKind.ParameterGradient when _graph.Parameters.FirstOrDefault(p => p.Name == at.Key.Site) is { } parameter:
                foreach (int c in _callsOfInstance.GetValueOrDefault(parameter.Instance, []))
                {
                    AddHere(TensorKind.OutputGradient, _graph.Calls[c].Id);
                    if (c > 0) AddHere(TensorKind.Forward, _graph.Calls[c - 1].Id);
                    AddBatchStatistics(c);
                }
                break;
            case TensorKind.RunningMean or TensorKind.RunningVariance when _batchNormIndex.ContainsKey(at.Key.Site):
                var statistic = at.Key.Kind == TensorKind.RunningMean ? TensorKind.BatchMean : TensorKind.BatchVariance;
                foreach (int c in _callsOfInstance[at.Key.Site]) AddHere(statistic, _graph.Calls[c].Id);
                Add(at.Key.Kind, at.Key.Site, before);
                break;
            case TensorKind.OptimizerStep:
                Add(TensorKind.OptimizerStep, "", before);
                break;
            case TensorKind.OptimizerSlot when Layout.ParameterOfSlot(at.Key.Site) is { } owner:
                AddHere(TensorKind.ParameterGradient, owner);
                Add(TensorKind.OptimizerSlot, at.Key.Site, before);
                break;
            case TensorKind.Parameter when _parameterIndex.ContainsKey(at.Key.Site):
                AddHere(TensorKind.ParameterGradient, at.Key.Site);
                foreach (string slot in Layout.Slots) AddHere(TensorKind.OptimizerSlot, TraceLayout.SlotSite(at.Key.Site, slot));
                if (Layout.Slots.Count > 0) AddHere(TensorKind.OptimizerStep, "");
                Add(TensorKind.Parameter, at.Key.Site, before);
                break;
            case TensorKind.EvalOutput when call >= 0:
                if (call > 0) AddHere(TensorKind.EvalOutput, _graph.Calls[call - 1].Id);
                AddParameters(call, after, skipNotIdentifiable: _centeredCalls.Contains(at.Key.Site));
                if (_graph.Calls[call].Layer is BatchNormSpec bn)
                {
                    Add(TensorKind.RunningMean, bn.Name, after);
                    Add(TensorKind.RunningVariance, bn.Name, after);
                }
                break;
            case TensorKind.EvalLoss or TensorKind.EvalAccuracy when last >= 0:
                AddHere(TensorKind.EvalOutput, _graph.Calls[last].Id);
                break;
        }
        return result;
    }

}
