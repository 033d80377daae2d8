using System.Numerics;
using Parity.Data;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.Reference;

/// <summary>
/// One reference run in precision <typeparamref name="T"/>: the plan's model loaded from
/// <see cref="Plan.InitialState"/>, its optimizer state (slots and update count), and records in the layout of
/// <see cref="TraceLayout"/> (docs/trace.md). Any state can be loaded between steps (<see cref="LoadState"/>): the
/// step checks replay another backend's step from that backend's own state here.
/// </summary>
internal sealed class ReferenceSession<T> : IStateLoadingSession where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Plan _plan;
    private readonly TraceLayout _layout;
    private readonly Network<T> _network;
    private readonly DType _dtype;
    private readonly Dictionary<string, T[]> _slots = []; // by slot site: SGD momentum buffer, Adam m and v
    private readonly Dictionary<string, string> _runtime;
    private readonly Dictionary<int, T[]> _inputs = [];
    private readonly Dictionary<int, T[]> _targets = [];
    private int _updates; // optimizer updates done: Adam's t after the last step
    private readonly WeightDecay<T>? _decay;

    public ReferenceSession(Plan plan, DType dtype, ParallelOptions parallel, Dictionary<string, string> runtime)
    {
        _plan = plan;
        _layout = TraceLayout.Of(plan);
        _dtype = dtype;
        _runtime = runtime;
        // Under init "framework" the plan's state is used as well: the reference has no initializers of
        // its own (BackendCapabilities.FrameworkInit is false).
        _network = new Network<T>(plan.Graph, plan.InitialState, parallel) { Loss = plan.Spec.Loss };
        if (plan.Spec.Init.Mode == InitMode.Framework)
            _runtime["init"] = "the plan's initial state (the reference has no initializers of its own)";
        foreach (var key in _layout.KeysOf(TensorKind.OptimizerSlot))
        {
            var slot = new T[_network.Parameters[_layout.ParameterOfSlot(key.Site)!].Length];
            // RMSprop's mean square and Adagrad's accumulator may start above zero (TF1: 1; TF, Keras, TF.js: 0.1).
            Array.Fill(slot, T.CreateTruncating(plan.Spec.Optimizer.SlotInitialValue(key.Site[(key.Site.LastIndexOf('/') + 1)..])));
            _slots[key.Site] = slot;
        }
        _decay = WeightDecay<T>.For(plan.Spec.Optimizer, _network);
    }

    public IReadOnlyList<ConventionMismatch> Mismatches => [];

    public IReadOnlyDictionary<string, string> RuntimeInfo => _runtime;

    /// <summary>Every parameter, running statistic and optimizer state as it is now, in phase Initial (the runner asks at step 0).</summary>
    public StepRecord ReadState(int step) => _layout.Record(step, RecordPhase.Initial, CaptureRequest.StateOnly, StateTensor);

    public void LoadState(StepRecord state)
    {
        ArgumentNullException.ThrowIfNull(state);
        foreach (var key in _layout.StateKeys)
        {
            var tensor = state.Find(key.Kind, key.Site) ?? throw new BackendException($"the state to load has no {key}");
            if (_layout.ShapeOf(key, 0) is { } shape && !tensor.Shape.AsSpan().SequenceEqual(shape))
                throw new BackendException($"the state to load has {key} of shape {tensor.ShapeText}; the model needs [{string.Join(",", shape)}]");
            if (key.Kind == TensorKind.OptimizerStep)
            {
                double t = tensor.Data[0];
                if (!(t >= 0 && t <= int.MaxValue && t == Math.Floor(t))) throw new BackendException($"the state to load has optimizer step {t}; expected a count >= 0");
                _updates = (int)t;
                continue;
            }
            var target = key.Kind switch
            {
                TensorKind.Parameter => _network.Parameters[key.Site],
                TensorKind.RunningMean => _network.Running[key.Site].Mean,
                TensorKind.RunningVariance => _network.Running[key.Site].Variance,
                _ => _slots[key.Site],
            };
            for (int i = 0; i < target.Length; i++) target[i] = T.CreateTruncating(tensor.Data[i]);
        }
    }

    public StepRecord Step(int step, Batch batch, CaptureRequest capture) => Step(step, batch, capture, null);

    public StepRecord Step(int step, Batch batch, CaptureRequest capture, StepRecord? followSigns)
    {
        if (step < 1) throw new BackendException($"training steps count from 1; got step {step}");
        var calls = _plan.Graph.Calls;
        // A replay applies the mask the replayed backend recorded (its own draw under masks: framework), else the harness's.
        var pass = _network.Forward(Inputs(batch), batch.Labels, Targets(batch), PassMode.Train, updateRunning: true,
            i => (followSigns?.Find(TensorKind.DropoutMask, calls[i].Id) ?? batch.DropoutMask(calls[i].Id)).Data);
        _network.Backward(pass, inputGradient: false, followSigns is null ? null
            : i => i > 0 && followSigns.Find(TensorKind.Forward, calls[i - 1].Id) is { } input ? input.Data : null);
        _decay?.AddLossTerm(pass);
        int t = ++_updates;
        if (_decay is null) Update(t);
        else _decay.AroundUpdate(_plan.Spec.Optimizer.LearningRateAt(t - 1), () => Update(t));
        return _layout.Record(step, RecordPhase.Train, capture, key => key.Kind switch
        {
            TensorKind.Forward => Matrix(pass.Outputs[CallIndex(key)], pass.N),
            TensorKind.BatchMean => Vector(pass.Mean[CallIndex(key)]),
            TensorKind.BatchVariance => Vector(pass.Variance[CallIndex(key)]),
            TensorKind.DropoutMask => DropoutMask(pass.DropoutScaled[CallIndex(key)], pass.N),
            TensorKind.Loss => Tensor.Scalar(double.CreateTruncating(pass.Loss), _dtype),
            TensorKind.TrainAccuracy => Tensor.Scalar((double)pass.Correct / pass.N, _dtype),
            TensorKind.OutputGradient => Matrix(pass.OutputGradients[CallIndex(key)], pass.N),
            TensorKind.ParameterGradient => Shaped(_network.Gradients[key.Site], _plan.Graph.Parameter(key.Site).Shape),
            _ => StateTensor(key),
        });
    }

    public StepRecord Evaluate(int step, Batch data, CaptureRequest capture)
    {
        var pass = _network.Forward(Inputs(data), data.Labels, Targets(data), PassMode.Eval, updateRunning: false);
        return _layout.Record(step, RecordPhase.Eval, capture, key => key.Kind switch
        {
            TensorKind.EvalOutput => Matrix(pass.Outputs[CallIndex(key)], pass.N),
            TensorKind.EvalLoss => Tensor.Scalar(double.CreateTruncating(pass.Loss), _dtype),
            _ => Tensor.Scalar((double)pass.Correct / pass.N, _dtype),
        });
    }

    public void Dispose()
    {
        // Managed buffers only; nothing to release.
    }

    private void Update(int t)
    {
        // Update t (1-based) is update k = t - 1 of the schedule; the clipped gradients feed the update only.
        var optimizer = _plan.Spec.Optimizer;
        int k = t - 1;
        // Clipping first, then the coupled decay term (docs/spec.md); _network.Gradients stays the raw gradients.
        IReadOnlyDictionary<string, T[]> gradients = optimizer.Clipping is { } clip ? clip.Apply(_network.Gradients) : _network.Gradients;
        if (_decay is not null) gradients = _decay.WithGradientTerm(gradients);
        switch (optimizer)
        {
            case SgdSpec sgd:
                T lr = T.CreateTruncating(sgd.LearningRateAt(k)), momentum = T.CreateTruncating(sgd.Momentum), decay = T.CreateTruncating(sgd.VelocityDecayAt(k));
                foreach (var p in _plan.Graph.Parameters)
                {
                    // Without momentum there is no buffer: v = g, p -= lr g.
                    var velocity = sgd.Momentum > 0 ? _slots[TraceLayout.SlotSite(p.Name, "momentum")] : new T[_network.Parameters[p.Name].Length];
                    ReferenceOps.SgdUpdate<T>(_network.Parameters[p.Name], velocity, gradients[p.Name], lr, decay, momentum, sgd.Nesterov);
                }
                break;
            case AdamSpec adam:
                T alr = T.CreateTruncating(adam.LearningRateAt(k)), eps = T.CreateTruncating(adam.Eps);
                var constants = AdamConstants<T>.From(adam.ConstantsAt(t));
                foreach (var p in _plan.Graph.Parameters)
                    ReferenceOps.AdamUpdate<T>(_network.Parameters[p.Name], _slots[TraceLayout.SlotSite(p.Name, "m")], _slots[TraceLayout.SlotSite(p.Name, "v")],
                        gradients[p.Name], alr, constants, eps, adam.EpsilonForm);
                break;
            case RmspropSpec rmsprop:
                foreach (var p in _plan.Graph.Parameters)
                    ReferenceOps.RmspropUpdate<T>(_network.Parameters[p.Name], gradients[p.Name], rmsprop with { LearningRate = rmsprop.LearningRateAt(k) },
                        _slots[TraceLayout.SlotSite(p.Name, "meanSquare")],
                        rmsprop.Momentum > 0 ? _slots[TraceLayout.SlotSite(p.Name, "momentum")] : [],
                        rmsprop.Centered ? _slots[TraceLayout.SlotSite(p.Name, "meanGradient")] : []);
                break;
            case AdagradSpec adagrad:
                foreach (var p in _plan.Graph.Parameters)
                    ReferenceOps.AdagradUpdate<T>(_network.Parameters[p.Name], gradients[p.Name], adagrad with { LearningRate = adagrad.LearningRateAt(k) }, _slots[TraceLayout.SlotSite(p.Name, "accumulator")]);
                break;
            default:
                throw new BackendException($"the reference backend has no optimizer '{_plan.Spec.Optimizer.Type}'");
        }
    }

    private Tensor StateTensor(TensorKey key) => key.Kind switch
    {
        TensorKind.RunningMean => Vector(_network.Running[key.Site].Mean),
        TensorKind.RunningVariance => Vector(_network.Running[key.Site].Variance),
        TensorKind.OptimizerStep => Tensor.Scalar(_updates, _dtype),
        TensorKind.OptimizerSlot => Shaped(_slots[key.Site], _plan.Graph.Parameter(_layout.ParameterOfSlot(key.Site)!).Shape),
        TensorKind.Parameter => Shaped(_network.Parameters[key.Site], _plan.Graph.Parameter(key.Site).Shape),
        _ => throw new InvalidOperationException($"{key} is not state"),
    };

    private int CallIndex(TensorKey key) => _plan.Graph.Calls.First(c => c.Id == key.Site).Index;

    /// <summary>The batch's float targets in T (an element-wise loss), or null; one buffer per batch size like the inputs'.</summary>
    private T[]? Targets(Batch batch)
    {
        if (!_plan.Spec.Loss.ElementWise) return null;
        var targets = batch.Targets ?? throw new BackendException($"the loss '{_plan.Spec.Loss.Type}' needs float targets and the batch has none");
        if (targets.Shape is not [int rows, int width] || rows != batch.Size || width != _plan.Graph.OutputWidth)
            throw new BackendException($"batch targets have shape {targets.ShapeText}; the loss needs [{batch.Size},{_plan.Graph.OutputWidth}]");
        if (!_targets.TryGetValue(targets.Length, out var buffer))
        {
            buffer = new T[targets.Length];
            _targets[targets.Length] = buffer;
        }
        FloatConversion.Convert<double, T>(targets.Data, buffer);
        return buffer;
    }

    private T[] Inputs(Batch batch)
    {
        int expected = _plan.Graph.Calls[0].InWidth;
        if (batch.Inputs.Shape.Length != 2 || batch.Features != expected || batch.Inputs.Shape[0] != batch.Size)
            throw new BackendException($"batch inputs have shape {batch.Inputs.ShapeText} for {batch.Size} labels; the model takes [{batch.Size},{expected}]");
        // One buffer per batch size (train and eval), reused: the inputs are the largest per-step tensor.
        var data = batch.Inputs.Data;
        if (!_inputs.TryGetValue(data.Length, out var buffer))
        {
            buffer = new T[data.Length];
            _inputs[data.Length] = buffer;
        }
        FloatConversion.Convert<double, T>(data, buffer); // rounds to nearest as a cast does
        return buffer;
    }

    // The 0/1 mask back from the scaled one the pass multiplied by.
    private Tensor DropoutMask(T[] scaled, int n)
    {
        var mask = Tensor.Pooled([n, scaled.Length / n], _dtype);
        var data = mask.Data;
        for (int i = 0; i < data.Length; i++) data[i] = scaled[i] == T.Zero ? 0 : 1;
        return mask;
    }

    private Tensor Matrix(T[] values, int n) => Shaped(values, [n, values.Length / n]);

    private Tensor Vector(T[] values) => Shaped(values, [values.Length]);

    private Tensor Shaped(T[] values, int[] shape) => Tensor.Copied<T>(values, (int[])shape.Clone(), _dtype);
}
