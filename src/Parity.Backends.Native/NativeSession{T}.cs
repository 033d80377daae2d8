using System.Numerics;
using ILGPU;
using ILGPU.Runtime;
using Parity.Backends.Native.Kernels;
using Parity.Data;
using Parity.Models;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.Native;

/// <summary>
/// The session for one element type. Per call it keeps a forward buffer and a gradient buffer (an identity call
/// shares both with its input, so it costs no launch); fusions: relu into the producing linear/batchnorm/layernorm
/// kernel (forward) and into the dX product (backward); bias gradient into the dW product; batch statistics,
/// normalization and running-statistics update into one batchnorm launch; loss and its gradient into one launch;
/// the optimizer update of every parameter into one launch over flat buffers.
/// </summary>
internal sealed class NativeSession<T> : NativeSession
    where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Context _context;
    private readonly Accelerator _accelerator;
    private readonly NativeKernels<T> _kernels;
    private readonly Plan _plan;
    private readonly TraceLayout _layout;
    private readonly IReadOnlyList<CallSite> _calls;
    private readonly DType _dtype;
    private readonly Dictionary<string, (int Offset, int Length)> _parameterSlices = [];
    private readonly Dictionary<string, int> _runningOffsets = [];
    private readonly MemoryBuffer1D<T, Stride1D.Dense> _parameters;
    private readonly MemoryBuffer1D<T, Stride1D.Dense> _gradients;
    private readonly MemoryBuffer1D<T, Stride1D.Dense> _optimizerFirst;
    private readonly MemoryBuffer1D<T, Stride1D.Dense> _optimizerSecond;
    private readonly MemoryBuffer1D<T, Stride1D.Dense> _optimizerThird; // centered RMSprop's mean gradient; one element otherwise
    private readonly MemoryBuffer1D<T, Stride1D.Dense>? _clipped; // the clipped gradients the update reads; _gradients stays unclipped for the trace
    private readonly MemoryBuffer1D<T, Stride1D.Dense>? _running;
    private readonly MemoryBuffer1D<T, Stride1D.Dense> _scalars;
    private readonly bool[] _reluFusedForward;
    private readonly List<ConventionMismatch> _mismatches = [];
    private readonly Dictionary<string, string> _runtimeInfo;
    private Workspace? _train;
    private Workspace? _eval;
    private int _updates; // optimizer updates done: Adam's t after the last step
    private readonly WeightDecaySpec? _decay;
    private readonly List<(int Offset, int Length)> _decayedSlices = [];
    private readonly MemoryBuffer1D<T, Stride1D.Dense>? _rawGradients; // coupled decay: the traced gradient kept aside

    public NativeSession(Plan plan, Context context, Device device, NativeDeviceChoice choice, DType dtype)
    {
        _plan = plan;
        _layout = TraceLayout.Of(plan);
        _calls = plan.Graph.Calls;
        _context = context;
        _dtype = dtype;
        Device = choice;
        _accelerator = device.CreateAccelerator(context);
        _kernels = new NativeKernels<T>(_accelerator, NativeDevices.ReductionLanes(_accelerator));

        int total = 0;
        foreach (var p in plan.Graph.Parameters)
        {
            int length = p.Shape.Aggregate(1, (a, b) => a * b);
            _parameterSlices[p.Name] = (total, length);
            total += length;
        }
        var initial = new T[Math.Max(total, 1)];
        foreach (var p in plan.Graph.Parameters)
        {
            var value = plan.InitialState.Find(TensorKind.Parameter, p.Name)
                ?? throw new BackendException($"native: the plan's initial state has no parameter '{p.Name}'");
            var (offset, length) = _parameterSlices[p.Name];
            for (int i = 0; i < length; i++) initial[offset + i] = T.CreateChecked(value.Data[i]);
        }
        _parameters = _accelerator.Allocate1D(initial);
        _gradients = _accelerator.Allocate1D<T>(initial.Length);
        _optimizerFirst = _accelerator.Allocate1D<T>(initial.Length);
        _optimizerSecond = _accelerator.Allocate1D<T>(initial.Length);
        _gradients.MemSetToZero();
        _optimizerFirst.MemSetToZero();
        _optimizerSecond.MemSetToZero();
        _optimizerThird = _accelerator.Allocate1D<T>(plan.Spec.Optimizer is RmspropSpec { Centered: true } ? initial.Length : 1);
        _optimizerThird.MemSetToZero();
        // The one slot that may start above zero (RMSprop's mean square, Adagrad's accumulator) is the first, in the first buffer.
        if (plan.Spec.Optimizer.Slots.Count > 0 && plan.Spec.Optimizer.SlotInitialValue(plan.Spec.Optimizer.Slots[0]) is var start and not 0)
            _optimizerFirst.View.CopyFromCPU(Enumerable.Repeat(T.CreateChecked(start), initial.Length).ToArray());
        if (plan.Spec.Optimizer.Clipping is not null) _clipped = _accelerator.Allocate1D<T>(initial.Length);

        int runningTotal = 0;
        var running = new List<T>();
        foreach (var bn in plan.Graph.BatchNorms)
        {
            _runningOffsets[bn.Name] = runningTotal;
            runningTotal += 2 * bn.Features;
            var mean = plan.InitialState.Find(TensorKind.RunningMean, bn.Name);
            var variance = plan.InitialState.Find(TensorKind.RunningVariance, bn.Name);
            for (int i = 0; i < bn.Features; i++) running.Add(T.CreateChecked(mean?.Data[i] ?? 0.0));
            for (int i = 0; i < bn.Features; i++) running.Add(T.CreateChecked(variance?.Data[i] ?? 1.0));
        }
        if (runningTotal > 0) _running = _accelerator.Allocate1D(running.ToArray());
        _scalars = _accelerator.Allocate1D<T>(2);
        _decay = plan.Spec.Optimizer.WeightDecay;
        if (_decay is not null)
        {
            _decayedSlices.AddRange(plan.Graph.Parameters.Where(_decay.Applies).Select(p => _parameterSlices[p.Name]));
            if (_decay.Form == WeightDecayForm.Coupled) _rawGradients = _accelerator.Allocate1D<T>(initial.Length);
        }

        _reluFusedForward = new bool[_calls.Count];
        for (int c = 0; c + 1 < _calls.Count; c++)
            _reluFusedForward[c + 1] = _calls[c + 1].Layer is ReluSpec && _calls[c].Layer is LinearSpec or BatchNormSpec or LayerNormSpec;

        if (plan.Spec.Init.Mode == InitMode.Framework)
        {
            _mismatches.Add(new ConventionMismatch("$.init.mode", "framework (each framework's own seeded initializers)",
                "the harness-drawn initial state: native has no initializers of its own", []));
        }
        _runtimeInfo = new Dictionary<string, string>
        {
            ["ILGPU"] = typeof(Context).Assembly.GetName().Version?.ToString(3) ?? "unknown",
            ["device"] = choice.Summary,
            ["accelerator"] = _accelerator.Name,
            ["reductionLanes"] = _kernels.ReductionLanes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
    }

    public override NativeDeviceChoice Device { get; }

    public override long KernelLaunches => _kernels.Launches;

    public override IReadOnlyList<ConventionMismatch> Mismatches => _mismatches;

    public override IReadOnlyDictionary<string, string> RuntimeInfo => _runtimeInfo;

    public override void Synchronize() => _accelerator.Synchronize();

    public override StepRecord ReadState(int step) => _layout.Record(step, RecordPhase.Initial, CaptureRequest.StateOnly, StateTensor);

    public override StepRecord Step(int step, Batch batch, CaptureRequest capture)
    {
        var ws = _train = Prepare(_train, batch.Size, training: true);
        Upload(ws, batch);
        UploadDropoutMasks(ws, batch);
        Forward(ws, training: true);
        Loss(ws, ws.Gradient[^1]);
        Backward(ws);
        AddDecayLossTerm();
        int t = ++_updates;
        if (_decay?.Form == WeightDecayForm.Decoupled) DecoupledShrink(t);
        UpdateParameters(t);
        // Every buffer read below is final once the update is enqueued: the update writes only parameters and slots.
        return _layout.Record(step, RecordPhase.Train, capture, key => key.Kind switch
        {
            TensorKind.Forward => PerCall(ws.Forward, key, ws.Rows),
            TensorKind.BatchMean => PerCall(ws.BatchMean, key, null),
            TensorKind.BatchVariance => PerCall(ws.BatchVariance, key, null),
            TensorKind.DropoutMask => DropoutMask(ws, key),
            TensorKind.Loss => Scalar(0),
            TensorKind.TrainAccuracy => Scalar(1),
            TensorKind.OutputGradient => PerCall(ws.Gradient, key, ws.Rows),
            TensorKind.ParameterGradient => ParameterTensor(_gradients, key.Site),
            _ => StateTensor(key),
        });
    }

    public override StepRecord Evaluate(int step, Batch data, CaptureRequest capture)
    {
        var ws = _eval = Prepare(_eval, data.Size, training: false);
        Upload(ws, data);
        Forward(ws, training: false);
        Loss(ws, default);
        return _layout.Record(step, RecordPhase.Eval, capture, key => key.Kind switch
        {
            TensorKind.EvalOutput => PerCall(ws.Forward, key, ws.Rows),
            TensorKind.EvalLoss => Scalar(0),
            _ => Scalar(1),
        });
    }

    protected override void Dispose(bool disposing)
    {
        if (!disposing) return;
        _train?.Dispose();
        _eval?.Dispose();
        _parameters.Dispose();
        _gradients.Dispose();
        _optimizerFirst.Dispose();
        _optimizerSecond.Dispose();
        _optimizerThird.Dispose();
        _clipped?.Dispose();
        _running?.Dispose();
        _scalars.Dispose();
        _rawGradients?.Dispose();
        _kernels.Dispose();
        _accelerator.Dispose();
        _context.Dispose();
    }

    private void Forward(Workspace ws, bool training)
    {
        int n = ws.Rows;
        for (int c = 0; c < _calls.Count; c++)
        {
            var call = _calls[c];
            var input = c == 0 ? (ArrayView<T>)ws.Input.View : ws.Forward[c - 1];
            var relu = c + 1 < _calls.Count && _reluFusedForward[c + 1] ? ws.Forward[c + 1] : default;
            switch (call.Layer)
            {
                case LinearSpec lin:
                    _kernels.LinearForward(input, Parameter(lin.Name, "weight"), lin.Bias ? Parameter(lin.Name, "bias") : default,
                        ws.Forward[c], n, lin.In, lin.Out, relu);
                    break;
                case BatchNormSpec bn when training:
                    var views = new BatchNormTrainViews<T>
                    {
                        Input = input,
                        Gamma = bn.Affine ? Parameter(bn.Name, "gamma") : default,
                        Beta = bn.Affine ? Parameter(bn.Name, "beta") : default,
                        Output = ws.Forward[c],
                        Normalized = ws.Normalized[c],
                        ReluOutput = relu,
                        BatchMean = ws.BatchMean[c],
                        BatchVariance = ws.BatchVariance[c],
                        RunningMean = RunningMean(bn),
                        RunningVariance = RunningVariance(bn),
                    };
                    _kernels.BatchNormForwardTrain(views, n, bn.Features, T.CreateChecked(bn.Eps), T.CreateChecked(bn.Momentum),
                        bn.RunningVariance == RunningVarianceEstimator.Unbiased);
                    break;
                case BatchNormSpec bn:
                    _kernels.BatchNormForwardEval(input, bn.Affine ? Parameter(bn.Name, "gamma") : default, bn.Affine ? Parameter(bn.Name, "beta") : default,
                        RunningMean(bn), RunningVariance(bn), T.CreateChecked(bn.Eps), ws.Forward[c], n, bn.Features, relu);
                    break;
                case LayerNormSpec ln:
                    _kernels.LayerNormForward(input, ln.Affine ? Parameter(ln.Name, "gamma") : default, ln.Affine ? Parameter(ln.Name, "beta") : default,
                        T.CreateChecked(ln.Eps), ws.Forward[c], ws.Normalized[c], ws.InverseStd[c], n, ln.Features, relu);
                    break;
                case ReluSpec when !_reluFusedForward[c]:
                    _kernels.ReluForward(input, ws.Forward[c]);
                    break;
                case ReluSpec or IdentitySpec:
                    break; // fused into the previous launch, or an alias of the input
                case ActivationSpec act:
                    _kernels.ActivationForward(input, ws.Forward[c], ActivationConstants<T>.For(act));
                    break;
                case DropoutSpec when training:
                    _kernels.MaskMultiply(input, ws.DropoutScaled[c], ws.Forward[c]);
                    break;
                case DropoutSpec:
                    break; // the identity in eval: an alias of the input
                default:
                    throw new BackendException($"native: layer type '{call.Layer.Type}' of call '{call.Id}' has no kernel");
            }
        }
    }

    private void Backward(Workspace ws)
    {
        int n = ws.Rows;
        var written = new HashSet<string>(StringComparer.Ordinal);
        var reluDone = new bool[_calls.Count];
        for (int c = _calls.Count - 1; c >= 0; c--)
        {
            var call = _calls[c];
            var input = c == 0 ? (ArrayView<T>)ws.Input.View : ws.Forward[c - 1];
            var inputGradient = c == 0 ? default : ws.Gradient[c - 1];
            bool accumulate = !written.Add(call.Layer.Name);
            switch (call.Layer)
            {
                case LinearSpec lin:
                    _kernels.LinearParameterGradients(input, ws.Gradient[c], Gradient(lin.Name, "weight"), lin.Bias ? Gradient(lin.Name, "bias") : default,
                        n, lin.In, lin.Out, accumulate);
                    if (c == 0) break;
                    bool fuseRelu = c >= 2 && _calls[c - 1].Layer is ReluSpec;
                    _kernels.LinearInputGradient(ws.Gradient[c], Parameter(lin.Name, "weight"), inputGradient, n, lin.In, lin.Out,
                        fuseRelu ? ws.Forward[c - 1] : default, fuseRelu ? ws.Gradient[c - 2] : default);
                    if (fuseRelu) reluDone[c - 1] = true;
                    break;
                case BatchNormSpec bn:
                    _kernels.BatchNormBackward(ws.Gradient[c], ws.Normalized[c], bn.Affine ? Parameter(bn.Name, "gamma") : default, ws.BatchVariance[c],
                        T.CreateChecked(bn.Eps), inputGradient, bn.Affine ? Gradient(bn.Name, "gamma") : default, bn.Affine ? Gradient(bn.Name, "beta") : default,
                        n, bn.Features, accumulate);
                    break;
                case LayerNormSpec ln:
                    _kernels.LayerNormBackward(ws.Gradient[c], ws.Normalized[c], ln.Affine ? Parameter(ln.Name, "gamma") : default, ws.InverseStd[c],
                        inputGradient, ln.Affine ? Gradient(ln.Name, "gamma") : default, ln.Affine ? Gradient(ln.Name, "beta") : default,
                        n, ln.Features, accumulate);
                    break;
                case ReluSpec when c > 0 && !reluDone[c]:
                    _kernels.ReluBackward(ws.Forward[c], ws.Gradient[c], inputGradient);
                    break;
                case ActivationSpec act when c > 0:
                    _kernels.ActivationBackward(input, ws.Gradient[c], inputGradient, ActivationConstants<T>.For(act));
                    break;
                case DropoutSpec when c > 0:
                    _kernels.MaskMultiply(ws.Gradient[c], ws.DropoutScaled[c], inputGradient);
                    break;
                default:
                    break; // relu fused into the dX product, identity aliased, or the first call (no input gradient)
            }
        }
    }

    private void UpdateParameters(int t)
    {
        if (_plan.Graph.Parameters.Count == 0) return;
        var spec = _plan.Spec.Optimizer;
        int k = t - 1; // update t (1-based) is update k of the schedule
        T lr = T.CreateChecked(spec.LearningRateAt(k));
        // Clipping first, then the coupled decay term (docs/spec.md); _gradients keeps the raw gradients for the trace.
        ArrayView<T> gradients = spec.Clipping is { } clip ? Clip(clip) : _gradients.View;
        if (_decay?.Form == WeightDecayForm.Coupled) gradients = WithCoupledDecay(gradients);
        switch (spec)
        {
            case SgdSpec sgd:
                _kernels.SgdUpdate(_parameters.View, _optimizerFirst.View, gradients, lr, T.CreateChecked(sgd.VelocityDecayAt(k)), T.CreateChecked(sgd.Momentum), sgd.Nesterov);
                break;
            case AdamSpec adam:
                _kernels.AdamUpdate(_parameters.View, _optimizerFirst.View, _optimizerSecond.View, gradients, lr, adam.ConstantsAt(t),
                    T.CreateChecked(adam.Eps), adam.EpsilonForm);
                break;
            case RmspropSpec or AdagradSpec:
                _kernels.AdaptiveUpdate(_parameters.View, gradients, _optimizerFirst.View, _optimizerSecond.View, _optimizerThird.View, spec with { LearningRate = spec.LearningRateAt(k) });
                break;
            default:
                throw new BackendException($"native: optimizer '{spec.Type}' has no kernel");
        }
    }

    /// <summary>
    /// The L2 loss term: 2 coefficient w into each decayed parameter's gradient and coefficient sum(w^2) into the loss,
    /// before the update, so the traced loss and gradients include it (as the reference's).
    /// </summary>
    private void AddDecayLossTerm()
    {
        if (_decay?.Form != WeightDecayForm.L2Loss) return;
        T coefficient = T.CreateChecked(_decay.Rate), rate = T.CreateChecked(_decay.GradientRate);
        foreach (var (offset, length) in _decayedSlices)
        {
            var w = _parameters.View.SubView(offset, length);
            _kernels.DecayGradientTerm(_gradients.View.SubView(offset, length), w, rate);
            _kernels.DecayLossTerm(w, _scalars.View, coefficient);
        }
    }

    /// <summary>Decoupled decay, before update <paramref name="t"/>, from the pre-update parameters: p -= k p (k = lr rate at that update's rate, or rate).</summary>
    private void DecoupledShrink(int t)
    {
        T factor = T.CreateChecked(_decay!.DecoupledFactor(_plan.Spec.Optimizer.LearningRateAt(t - 1)));
        foreach (var (offset, length) in _decayedSlices) _kernels.DecayShrink(_parameters.View.SubView(offset, length), factor);
    }

    /// <summary>
    /// Coupled decay: the gradients the update reads, g + rate p on the decayed parameters, in a buffer of their own, so
    /// the traced gradient stays the loss's (PyTorch's p.grad; weight_decay= adds into a new tensor).
    /// </summary>
    private ArrayView<T> WithCoupledDecay(ArrayView<T> gradients)
    {
        _rawGradients!.View.CopyFrom(gradients);
        T rate = T.CreateChecked(_decay!.Rate);
        foreach (var (offset, length) in _decayedSlices)
            _kernels.DecayGradientTerm(_rawGradients.View.SubView(offset, length), _parameters.View.SubView(offset, length), rate);
        return _rawGradients.View;
    }

    /// <summary>
    /// The clipped gradients in <see cref="_clipped"/>, computed on the host by the shared <see cref="GradientClipping.Apply{T}"/>
    /// (norms summed in float64, one scale rounded to T): one round trip of the gradients per step, so the norms are those
    /// of every other C# backend bit for bit.
    /// </summary>
    private ArrayView<T> Clip(GradientClipping clip)
    {
        var host = _gradients.GetAsArray1D();
        var slices = _plan.Graph.Parameters.ToDictionary(p => p.Name, p => host.AsSpan(_parameterSlices[p.Name].Offset, _parameterSlices[p.Name].Length).ToArray());
        foreach (var (name, values) in clip.Apply(slices)) values.CopyTo(host, _parameterSlices[name].Offset);
        _clipped!.View.CopyFromCPU(host);
        return _clipped.View;
    }

    private Workspace Prepare(Workspace? current, int rows, bool training)
    {
        if (current is not null && current.Rows == rows) return current;
        current?.Dispose();
        return new Workspace(_accelerator, _plan, rows, training);
    }

    private static void Upload(Workspace ws, Batch batch)
    {
        // Converted into the workspace's staging array: no per-step host allocation (HostConversion has the figures).
        HostConversion.FromDoubles(batch.Inputs.Data, ws.Staging);
        ws.Input.View.CopyFromCPU(ws.Staging);
        ws.Labels.View.CopyFromCPU(batch.Labels);
        if (ws.Targets is { } targets)
        {
            var t = batch.Targets ?? throw new BackendException("the loss needs float targets and the batch has none");
            if (t.Length != ws.TargetStaging.Length)
                throw new BackendException($"batch targets have shape {t.ShapeText}; the loss needs [{ws.Rows},{ws.TargetStaging.Length / ws.Rows}]");
            HostConversion.FromDoubles(t.Data, ws.TargetStaging);
            targets.View.CopyFromCPU(ws.TargetStaging);
        }
    }

    /// <summary>The spec's loss of the last call's output into the scalars (and its gradient into <paramref name="gradient"/> in training).</summary>
    private void Loss(Workspace ws, ArrayView<T> gradient)
    {
        var loss = _plan.Spec.Loss;
        int width = _plan.Graph.OutputWidth;
        if (ws.Targets is { } targets)
        {
            int function = loss.Function == LossFunction.MeanSquaredError ? ElementWiseLoss.MeanSquaredError : ElementWiseLoss.BinaryCrossEntropyWithLogits;
            _kernels.ElementWise(function, ws.Forward[^1], targets.View, loss.HasAccuracy ? ws.Labels.View : default, gradient, _scalars.View, ws.Rows, width);
        }
        else if (loss.LabelSmoothing > 0)
            _kernels.SmoothedSoftmaxCrossEntropy(ws.Forward[^1], ws.Labels.View, gradient, _scalars.View, ws.Rows, width, T.CreateTruncating(loss.LabelSmoothing));
        else
            _kernels.SoftmaxCrossEntropy(ws.Forward[^1], ws.Labels.View, gradient, _scalars.View, ws.Rows, width);
    }

    /// <summary>Each dropout call's mask times 1/(1-p) in the element type (as the reference forms it), to the device.</summary>
    private void UploadDropoutMasks(Workspace ws, Batch batch)
    {
        foreach (var call in _calls)
        {
            if (call.Layer is not DropoutSpec dropout) continue;
            var mask = batch.DropoutMask(call.Id).Data;
            if (mask.Length != ws.DropoutScaled[call.Index].Length)
                throw new BackendException($"native: the dropout mask of call '{call.Id}' has {mask.Length} elements; the call's output has {ws.DropoutScaled[call.Index].Length}");
            T scale = T.CreateChecked(dropout.KeptScale);
            var scaled = new T[mask.Length];
            for (int i = 0; i < mask.Length; i++) scaled[i] = mask[i] != 0 ? scale : T.Zero;
            ws.DropoutScaled[call.Index].CopyFromCPU(scaled);
        }
    }

    // The 0/1 mask back from the scaled one on the device.
    private Tensor DropoutMask(Workspace ws, TensorKey key)
    {
        var call = _calls.First(c => c.Id == key.Site);
        var scaled = ws.DropoutScaled[call.Index].GetAsArray();
        var mask = Tensor.Pooled([ws.Rows, call.OutWidth], _dtype);
        var data = mask.Data;
        for (int i = 0; i < data.Length; i++) data[i] = scaled[i] == T.Zero ? 0 : 1;
        return mask;
    }

    private ArrayView<T> Parameter(string instance, string local) => Slice(_parameters, instance + "." + local);

    private ArrayView<T> Gradient(string instance, string local) => Slice(_gradients, instance + "." + local);

    private ArrayView<T> Slice(MemoryBuffer1D<T, Stride1D.Dense> buffer, string name)
    {
        var (offset, length) = _parameterSlices[name];
        return buffer.View.SubView(offset, length);
    }

    private ArrayView<T> RunningMean(BatchNormSpec bn) => _running!.View.SubView(_runningOffsets[bn.Name], bn.Features);

    private ArrayView<T> RunningVariance(BatchNormSpec bn) => _running!.View.SubView(_runningOffsets[bn.Name] + bn.Features, bn.Features);

    /// <summary>
    /// A state tensor as the device holds it now. The optimizer slots are the flat buffers the update kernel keeps: the
    /// first holds SGD's velocity (v = mu v + g, PyTorch form), Adam's biased first moment m, RMSprop's mean square or
    /// Adagrad's accumulator, the second Adam's biased second moment v or RMSprop's momentum buffer b, the third centered
    /// RMSprop's mean gradient, each parameter at its own slice, as <see cref="NativeKernels{T}.SgdUpdate(ArrayView{T}, ArrayView{T}, ArrayView{T}, T, T, T, bool)"/> and
    /// <see cref="NativeKernels{T}.AdamUpdate"/> write them.
    /// </summary>
    private Tensor StateTensor(TensorKey key)
    {
        switch (key.Kind)
        {
            case TensorKind.RunningMean or TensorKind.RunningVariance:
                var bn = _plan.Graph.BatchNorms.First(b => b.Name == key.Site);
                return Download(key.Kind == TensorKind.RunningMean ? RunningMean(bn) : RunningVariance(bn), bn.Features);
            case TensorKind.OptimizerStep:
                return Tensor.Scalar(_updates, _dtype);
            case TensorKind.OptimizerSlot:
                string parameter = _layout.ParameterOfSlot(key.Site)!;
                return ParameterTensor(key.Site[(parameter.Length + 1)..] switch
                {
                    "v" or "momentum" when _plan.Spec.Optimizer is not SgdSpec => _optimizerSecond, // Adam's v, RMSprop's momentum buffer
                    "meanGradient" => _optimizerThird,
                    _ => _optimizerFirst,
                }, parameter);
            case TensorKind.Parameter:
                return ParameterTensor(_parameters, key.Site);
            default:
                throw new InvalidOperationException($"{key} is not state");
        }
    }

    private Tensor ParameterTensor(MemoryBuffer1D<T, Stride1D.Dense> buffer, string parameter) =>
        Download(Slice(buffer, parameter), _plan.Graph.Parameter(parameter).Shape);

    /// <summary>The buffer of <paramref name="key"/>'s call: [rows, width], or [width] for batch statistics.</summary>
    private Tensor PerCall(ArrayView<T>[] buffers, TensorKey key, int? rows)
    {
        var call = _calls.First(c => c.Id == key.Site);
        return rows is int n ? Download(buffers[call.Index], n, call.OutWidth) : Download(buffers[call.Index], call.OutWidth);
    }

    /// <summary>The loss (index 0) or the accuracy (1) the loss kernel wrote.</summary>
    private Tensor Scalar(int index) => Download(_scalars.View.SubView(index, 1));

    private Tensor Download(ArrayView<T> view, params int[] shape) => Tensor.Copied<T>(view.GetAsArray(), shape, _dtype);

    /// <summary>The per-call device buffers for one batch size (train or eval).</summary>
    private sealed class Workspace : IDisposable
    {
        private readonly List<MemoryBuffer> _owned = [];

        public Workspace(Accelerator accelerator, Plan plan, int rows, bool training)
        {
            Rows = rows;
            var calls = plan.Graph.Calls;
            Input = Own(accelerator.Allocate1D<T>((long)rows * plan.Spec.Model.Inputs));
            Staging = new T[checked(rows * plan.Spec.Model.Inputs)];
            Labels = Own(accelerator.Allocate1D<int>(rows));
            if (plan.Spec.Loss.ElementWise)
            {
                Targets = Own(accelerator.Allocate1D<T>((long)rows * plan.Graph.OutputWidth));
                TargetStaging = new T[checked(rows * plan.Graph.OutputWidth)];
            }
            Forward = new ArrayView<T>[calls.Count];
            Gradient = new ArrayView<T>[calls.Count];
            Normalized = new ArrayView<T>[calls.Count];
            InverseStd = new ArrayView<T>[calls.Count];
            BatchMean = new ArrayView<T>[calls.Count];
            BatchVariance = new ArrayView<T>[calls.Count];
            DropoutScaled = new ArrayView<T>[calls.Count];
            for (int c = 0; c < calls.Count; c++)
            {
                long size = (long)rows * calls[c].OutWidth;
                // An identity call's output is its input, and so is its gradient: no buffer, no launch; dropout in eval likewise.
                bool alias = calls[c].Layer is IdentitySpec || (calls[c].Layer is DropoutSpec && !training);
                Forward[c] = alias ? (c == 0 ? (ArrayView<T>)Input.View : Forward[c - 1]) : Own(accelerator.Allocate1D<T>(size)).View;
                if (training) Gradient[c] = alias && c > 0 ? Gradient[c - 1] : Own(accelerator.Allocate1D<T>(size)).View;
                if (calls[c].Layer is BatchNormSpec or LayerNormSpec) Normalized[c] = Own(accelerator.Allocate1D<T>(size)).View;
                if (calls[c].Layer is LayerNormSpec) InverseStd[c] = Own(accelerator.Allocate1D<T>(rows)).View;
                if (calls[c].Layer is DropoutSpec && training) DropoutScaled[c] = Own(accelerator.Allocate1D<T>(size)).View;
                if (calls[c].Layer is BatchNormSpec bn && training)
                {
                    BatchMean[c] = Own(accelerator.Allocate1D<T>(bn.Features)).View;
                    BatchVariance[c] = Own(accelerator.Allocate1D<T>(bn.Features)).View;
                }
            }
        }

        public int Rows { get; }

        public MemoryBuffer1D<T, Stride1D.Dense> Input { get; }

        /// <summary>The host copy of the batch in the element type, reused by every step of this batch size.</summary>
        public T[] Staging { get; }

        public MemoryBuffer1D<int, Stride1D.Dense> Labels { get; }

        /// <summary>The batch's float targets of an element-wise loss, or null.</summary>
        public MemoryBuffer1D<T, Stride1D.Dense>? Targets { get; }

        /// <summary>The host copy of the targets in the element type (empty without targets).</summary>
        public T[] TargetStaging { get; } = [];

        public ArrayView<T>[] Forward { get; }

        public ArrayView<T>[] Gradient { get; }

        public ArrayView<T>[] Normalized { get; }

        public ArrayView<T>[] InverseStd { get; }

        public ArrayView<T>[] BatchMean { get; }

        public ArrayView<T>[] BatchVariance { get; }

        /// <summary>Dropout calls' masks times 1/(1-p) (training only).</summary>
        public ArrayView<T>[] DropoutScaled { get; }

        public void Dispose()
        {
            foreach (var buffer in _owned) buffer.Dispose();
        }

        private MemoryBuffer1D<TElement, Stride1D.Dense> Own<TElement>(MemoryBuffer1D<TElement, Stride1D.Dense> buffer)
            where TElement : unmanaged
        {
            _owned.Add(buffer);
            return buffer;
        }
    }
}
