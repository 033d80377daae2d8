using System.Runtime.InteropServices;
using Parity.Data;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;
using TorchSharp;
using TorchSharp.Modules;
using ParityTensor = Parity.Tensors.Tensor;
using TorchModule = TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Parity.Backends.TorchSharp;

/// <summary>
/// One plan's model as TorchSharp modules with its optimizer. One module per layer instance: a shared
/// instance is one module called at every one of its sites, so libtorch itself updates a shared
/// batchnorm's running statistics once per call, in call order, and sums a shared layer's gradients.
/// Every method does its tensor work inside <c>torch.NewDisposeScope()</c>, so only the modules' and the
/// optimizer's own tensors outlive a call and memory stays flat over thousands of steps.
/// </summary>
internal sealed class TorchSharpSession : IBackendSession
{
    private readonly Plan _plan;
    private readonly TraceLayout _layout;
    private readonly DType _dtype;
    private readonly torch.ScalarType _scalarType;
    private readonly torch.Device _device;
    private readonly Dictionary<string, TorchModule> _instances = new(StringComparer.Ordinal);
    private readonly TorchModule[] _callModules;
    private readonly Dictionary<string, Parameter> _parameters = new(StringComparer.Ordinal);
    private readonly OptimizerHelper _optimizer;
    private readonly Dictionary<string, OptimizerState> _optimizerStates = new(StringComparer.Ordinal);
    private readonly bool _firstCallHasNoParameters;
    private readonly TorchSharpWeightDecay? _decay;
    private int _updates; // optimizer steps taken: TorchSharp's SGD keeps no count of its own
    private readonly torch.optim.lr_scheduler.LRScheduler? _scheduler;
    private bool _disposed;

    public TorchSharpSession(Plan plan, BackendOptions options, torch.Device device)
    {
        _plan = plan;
        _layout = TraceLayout.Of(plan);
        _dtype = options.DType;
        _scalarType = _dtype == DType.Float32 ? torch.ScalarType.Float32 : torch.ScalarType.Float64;
        _device = device;
        Mismatches = [.. TorchSharpConventions.Mismatches(plan.Spec), .. Models.Dropout.FrameworkMasks(plan.Spec, "libtorch's Bernoulli draw (torch.nn.functional.dropout on ones)")];

        var spec = plan.Spec;
        // Under init: framework the modules draw their own initial values (Linear: kaiming_uniform with
        // a = sqrt(5), bias U(+-1/sqrt(in)) [P3, TS]) from libtorch's global generator, seeded here.
        if (spec.Init.Mode == InitMode.Framework) torch.manual_seed(unchecked((long)spec.Init.Seed));
        // masks: framework draws from the same global generator; seeded by the scenario's seed when nothing seeded it above.
        else if (spec.Model.Layers.Any(l => l is DropoutSpec { Masks: DropoutMasks.Framework })) torch.manual_seed(unchecked((long)spec.Seed));
        foreach (var layer in spec.Model.Layers) _instances[layer.Name] = CreateModule(layer);
        _callModules = plan.Graph.Calls.Select(c => _instances[c.Layer.Name]).ToArray();
        _firstCallHasNoParameters = plan.Graph.Calls.Count > 0 && plan.Graph.Calls[0].Layer.ParameterShapes.Count == 0;

        foreach (var p in plan.Graph.Parameters)
        {
            _parameters[p.Name] = FindParameter(_instances[p.Instance], p.Local)
                ?? throw new BackendException($"parameter '{p.Name}': the TorchSharp module of '{p.Instance}' has no such parameter");
        }
        if (spec.Init.Mode == InitMode.Injected) LoadState(plan.InitialState);

        var parameters = plan.Graph.Parameters.Select(p => _parameters[p.Name]).ToList();
        _decay = TorchSharpWeightDecay.For(spec.Optimizer, plan.Graph, _parameters);
        _optimizer = spec.Optimizer switch
        {
            // PyTorch's SGD: v = mu v + (1 - dampening) g; p -= lr v. Dampening 0 is the canonical form [TS].
            SgdSpec sgd => (OptimizerHelper)torch.optim.SGD(parameters, sgd.LearningRate, momentum: sgd.Momentum, dampening: 0, weight_decay: _decay?.OptimizerWeightDecay ?? 0, nesterov: sgd.Nesterov),
            // Always pass betas and eps: TorchSharp's factory defaults beta2 to 0.99, not PyTorch's 0.999 [TS].
            AdamSpec adam => torch.optim.Adam(parameters, lr: adam.LearningRate, beta1: adam.Beta1, beta2: adam.Beta2, eps: adam.Eps, weight_decay: _decay?.OptimizerWeightDecay ?? 0, amsgrad: false),
            // torch.optim.RMSprop: eps outside the square root, mean square from zeros, momentum and centered in the
            // canonical (PyTorch) form; what it cannot express is declared in TorchSharpConventions.
            RmspropSpec rmsprop => torch.optim.RMSProp(parameters, lr: rmsprop.LearningRate, alpha: rmsprop.Rho, eps: rmsprop.Eps, weight_decay: _decay?.OptimizerWeightDecay ?? 0,
                momentum: rmsprop.Momentum, centered: rmsprop.Centered),
            // torch.optim.Adagrad: eps outside the square root; lr_decay 0 keeps the learning rate constant.
            AdagradSpec adagrad => torch.optim.Adagrad(parameters, lr: adagrad.LearningRate, lr_decay: 0, weight_decay: _decay?.OptimizerWeightDecay ?? 0,
                initial_accumulator_value: adagrad.InitialAccumulator, eps: adagrad.Eps),
            _ => throw new BackendException($"optimizer '{spec.Optimizer.Type}' has no torchsharp mapping"),
        };
        // state_dict().State lists the live per-parameter states (updated in place by step()) in the order given above.
        var states = _optimizer.state_dict().State;
        for (int i = 0; i < states.Count; i++) _optimizerStates[plan.Graph.Parameters[i].Name] = states[i];
        _scheduler = TorchSharpConventions.Scheduler(_optimizer, spec.Optimizer);

        RuntimeInfo = new Dictionary<string, string>
        {
            ["TorchSharp"] = TorchSharpBackend.TorchSharpVersion,
            ["libtorch"] = torch.__version__,
            ["device"] = _device.type == DeviceType.CUDA ? "cuda" : "cpu",
            ["dtype"] = _dtype.Name(),
            ["threads"] = torch.get_num_threads().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["init"] = spec.Init.Mode == InitMode.Injected
                ? "injected: the plan's initial state copied into the modules"
                : $"framework: TorchSharp's own default initializers after torch.manual_seed({spec.Init.Seed})",
            ["batchStatistics"] = "derived: batchMean and batchVariance are the mean and biased variance of each batchnorm call's input, computed with torch ops in the run's dtype, not read from libtorch's batch_norm",
        };
    }

    /// <inheritdoc />
    public IReadOnlyList<ConventionMismatch> Mismatches { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> RuntimeInfo { get; }

    /// <inheritdoc />
    public StepRecord ReadState(int step)
    {
        ThrowIfDisposed();
        using var scope = torch.NewDisposeScope();
        return _layout.Record(step, RecordPhase.Initial, CaptureRequest.StateOnly, StateTensor);
    }

    /// <inheritdoc />
    public StepRecord Step(int step, Batch batch, CaptureRequest capture)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(capture);
        using var scope = torch.NewDisposeScope();
        bool wantsOutputGradients = capture.Wants(TensorKind.OutputGradient);
        SetTraining(true);

        var input = Inputs(batch);
        // Gradients flow into a call's output only when something before it has parameters; a model that
        // starts with a parameter-free call needs the input itself in the graph to trace that output's gradient.
        if (wantsOutputGradients && _firstCallHasNoParameters) input.requires_grad_(true);
        var labels = Labels(batch);
        var pass = Forward(input, train: true, capture, retainGradients: wantsOutputGradients, batch);
        var logits = pass.Outputs[^1];
        var loss = Loss(logits, labels, batch);
        if (_decay is not null) loss = _decay.WithLossTerm(loss);

        _optimizer.zero_grad();
        loss.backward();
        // The traced gradients are the unclipped ones: copies taken before the clip changes .grad in place.
        var unclipped = _plan.Spec.Optimizer.Clipping is { } clip && capture.Wants(TensorKind.ParameterGradient)
            ? _parameters.ToDictionary(p => p.Key, p => p.Value.grad?.clone())
            : null;
        if (_plan.Spec.Optimizer.Clipping is { } clipping) ClipGradients(clipping);
        if (_plan.Spec.Optimizer is SgdSpec { MomentumForm: MomentumForm.Keras } keras) RescaleMomentum(keras);
        if (_decay is null) StepWithoutCollection();
        else _decay.AroundStep(_plan.Spec.Optimizer.LearningRateAt(_updates), StepWithoutCollection);
        _scheduler?.step(); // after every update, so update k runs at the schedule's lr(k)
        _updates++;
        // Read after the update: outputs, their gradients and the parameters' .grad are not touched by optimizer.step().
        return _layout.Record(step, RecordPhase.Train, capture, key => key.Kind switch
        {
            TensorKind.Forward => Read(pass.Outputs[CallIndex(key)]),
            TensorKind.BatchMean => Read(pass.Means[CallIndex(key)]!),
            TensorKind.BatchVariance => Read(pass.Variances[CallIndex(key)]!),
            TensorKind.DropoutMask => Read(pass.DropoutMasks[CallIndex(key)]!),
            TensorKind.Loss => ParityTensor.Scalar(Scalar(loss), _dtype),
            TensorKind.TrainAccuracy => ParityTensor.Scalar(Accuracy(logits, labels, batch.Size), _dtype),
            TensorKind.OutputGradient => Read(pass.Outputs[CallIndex(key)].grad
                ?? throw new BackendException($"call '{key.Site}': libtorch kept no gradient for its output")),
            TensorKind.ParameterGradient => Read((unclipped is null ? _parameters[key.Site].grad : unclipped[key.Site])
                ?? throw new BackendException($"parameter '{key.Site}': libtorch computed no gradient")),
            _ => StateTensor(key),
        });
    }

    /// <inheritdoc />
    public StepRecord Evaluate(int step, Batch data, CaptureRequest capture)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(capture);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        SetTraining(false);
        var labels = Labels(data);
        var outputs = Forward(Inputs(data), train: false, capture, retainGradients: false).Outputs;
        var logits = outputs[^1];
        return _layout.Record(step, RecordPhase.Eval, capture, key => key.Kind switch
        {
            TensorKind.EvalOutput => Read(outputs[CallIndex(key)]),
            TensorKind.EvalLoss => ParityTensor.Scalar(Scalar(Loss(logits, labels, data)), _dtype),
            _ => ParityTensor.Scalar(Accuracy(logits, labels, data.Size), _dtype),
        });
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _optimizer.Dispose();
        foreach (var module in _instances.Values) module.Dispose();
    }

    /// <summary>
    /// The outputs of every call in order and, where asked in train mode, each batchnorm call's batch statistics; each
    /// dropout call's 0/1 mask in train mode.
    /// </summary>
    private sealed record ForwardPass(TorchTensor[] Outputs, TorchTensor?[] Means, TorchTensor?[] Variances, TorchTensor?[] DropoutMasks);

    /// <summary>Runs every call in order, deriving the batch statistics of each batchnorm call when asked (train mode only).</summary>
    private ForwardPass Forward(TorchTensor input, bool train, CaptureRequest capture, bool retainGradients, Batch? batch = null)
    {
        bool wantsMean = train && capture.Wants(TensorKind.BatchMean), wantsVariance = train && capture.Wants(TensorKind.BatchVariance);
        var pass = new ForwardPass(new TorchTensor[_callModules.Length], new TorchTensor?[_callModules.Length], new TorchTensor?[_callModules.Length], new TorchTensor?[_callModules.Length]);
        var h = input;
        for (int i = 0; i < _callModules.Length; i++)
        {
            if (_plan.Graph.Calls[i].IsBatchNorm && (wantsMean || wantsVariance))
            {
                // Derived, not read from libtorch: the statistics batch_norm normalizes with in train mode
                // are the mean and biased (1/N) variance of the call's input over the batch [P2].
                using var noGrad = torch.no_grad();
                if (wantsMean) pass.Means[i] = h.mean([0L]);
                if (wantsVariance) pass.Variances[i] = h.var(0L, unbiased: false);
            }
            if (_plan.Graph.Calls[i].Layer is DropoutSpec dropout)
            {
                if (train) h = DropoutForward(h, dropout, batch?.DropoutMask(_plan.Graph.Calls[i].Id), out pass.DropoutMasks[i]);
            }
            else h = _callModules[i].forward(h);
            if (retainGradients && h.requires_grad) h.retain_grad();
            pass.Outputs[i] = h;
        }
        return pass;
    }

    /// <summary>
    /// Inverted dropout as x * (m * 1/(1-p)), the product libtorch's own dropout forms (a Bernoulli noise divided by
    /// 1 - p, then multiplied in), so the gradient is dy times the same scaled mask. m is the harness's mask, or under
    /// <c>masks: framework</c> libtorch's own draw: torch.nn.functional.dropout of ones, nonzero where it kept.
    /// </summary>
    private TorchTensor DropoutForward(TorchTensor x, DropoutSpec dropout, ParityTensor? harnessMask, out TorchTensor? mask)
    {
        using (torch.no_grad())
        {
            mask = dropout.Masks == DropoutMasks.Framework
                ? torch.nn.functional.dropout(torch.ones_like(x), dropout.P, training: true).ne(0).to(_scalarType)
                : ToTorch(harnessMask ?? throw new BackendException($"dropout '{dropout.Name}': the batch holds no mask"));
        }
        return x.mul(mask.mul(dropout.KeptScale));
    }

    private TorchModule CreateModule(LayerSpec layer) => layer switch
    {
        LinearSpec l => torch.nn.Linear(l.In, l.Out, hasBias: l.Bias, device: _device, dtype: _scalarType),
        // momentum is PyTorch's meaning in the spec and in libtorch, eps sits inside the square root in both [P1].
        BatchNormSpec b => torch.nn.BatchNorm1d(b.Features, eps: b.Eps, momentum: b.Momentum, affine: b.Affine, track_running_stats: true, device: _device, dtype: _scalarType),
        LayerNormSpec n => torch.nn.LayerNorm(n.Features, eps: n.Eps, elementwise_affine: n.Affine, device: _device, dtype: _scalarType),
        ReluSpec => torch.nn.ReLU(inplace: false), // in place would overwrite the traced output of the previous call
        IdentitySpec => torch.nn.Identity(),
        TanhSpec => torch.nn.Tanh(),
        SigmoidSpec => torch.nn.Sigmoid(),
        // The slope and alpha are passed as written: the spec states them, so PyTorch's defaults never apply [P7].
        LeakyReluSpec leaky => torch.nn.LeakyReLU(leaky.Slope),
        GeluSpec { Approximation: GeluApproximation.Exact } => torch.nn.GELU(GELU.Approximate.none),
        GeluSpec => torch.nn.GELU(GELU.Approximate.tanh),
        SiluSpec => torch.nn.SiLU(),
        EluSpec elu => torch.nn.ELU(elu.Alpha),
        // Never called: Forward applies dropout itself, with the mask it must trace (DropoutForward).
        DropoutSpec dropout => torch.nn.Dropout(dropout.P),
        _ => throw new BackendException($"layer '{layer.Name}': type '{layer.Type}' has no torchsharp mapping"),
    };

    /// <summary>The TorchSharp parameter behind a canonical <c>instance.local</c> name (gamma/beta are weight/bias).</summary>
    private static Parameter? FindParameter(TorchModule module, string local) => (module, local) switch
    {
        (Linear l, "weight") => l.weight,
        (Linear l, "bias") => l.bias,
        (BatchNorm1d b, "gamma") => b.weight,
        (BatchNorm1d b, "beta") => b.bias,
        (LayerNorm n, "gamma") => n.weight,
        (LayerNorm n, "beta") => n.bias,
        _ => null,
    };

    /// <summary>Copies parameters and running statistics from <paramref name="state"/> (canonical layout = libtorch's).</summary>
    private void LoadState(StepRecord state)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach (var p in _plan.Graph.Parameters)
        {
            var value = state.Find(TensorKind.Parameter, p.Name) ?? throw new BackendException($"the plan's initial state has no value for '{p.Name}'");
            CopyInto(_parameters[p.Name], value, p.Name);
        }
        foreach (var bn in _plan.Graph.BatchNorms)
        {
            var module = (BatchNorm1d)_instances[bn.Name];
            if (state.Find(TensorKind.RunningMean, bn.Name) is { } mean) CopyInto(module.running_mean!, mean, bn.Name + " running mean");
            if (state.Find(TensorKind.RunningVariance, bn.Name) is { } variance) CopyInto(module.running_var!, variance, bn.Name + " running variance");
        }
    }

    private void CopyInto(TorchTensor target, ParityTensor value, string what)
    {
        var shape = target.shape;
        if (shape.Length != value.Shape.Length || !shape.Zip(value.Shape).All(d => d.First == d.Second))
            throw new BackendException($"'{what}': the initial state has shape {value.ShapeText}, the TorchSharp module [{string.Join(",", shape)}]");
        target.copy_(ToTorch(value));
    }

    private ParityTensor StateTensor(TensorKey key) => key.Kind switch
    {
        TensorKind.RunningMean => Read(((BatchNorm1d)_instances[key.Site]).running_mean!),
        TensorKind.RunningVariance => Read(((BatchNorm1d)_instances[key.Site]).running_var!),
        // Adam counts its steps per parameter (Adam.State.step, the t of its bias correction); SGD counts none.
        TensorKind.OptimizerStep => ParityTensor.Scalar(_optimizerStates.Values.FirstOrDefault() is Adam.State adam ? adam.step : _updates, _dtype),
        TensorKind.OptimizerSlot => Read(OptimizerSlot(key.Site)),
        TensorKind.Parameter => Read(_parameters[key.Site]),
        _ => throw new InvalidOperationException($"{key} is not state"),
    };

    /// <summary>
    /// One slot as TorchSharp keeps it in the parameter's OptimizerState. Adam.State's <c>exp_avg</c> and
    /// <c>exp_avg_sq</c> are the biased moments m and v (Adam.cs: <c>exp_avg.mul_(beta1).add_(grad, 1 - beta1)</c>,
    /// bias correction applied only in the update); SGD.State's <c>momentum_buffer</c> is v = mu v + g, created as a
    /// clone of the first gradient (SGD.cs), so it is null, the canonical zeros, before the first step.
    /// </summary>
    private TorchTensor OptimizerSlot(string site)
    {
        string parameter = _layout.ParameterOfSlot(site)!;
        return (_optimizerStates[parameter], site[(parameter.Length + 1)..]) switch
        {
            (Adam.State adam, "m") => adam.exp_avg,
            (Adam.State adam, "v") => adam.exp_avg_sq,
            (SGD.State sgd, "momentum") => sgd.momentum_buffer ?? torch.zeros_like(_parameters[parameter]),
            // RMSProp.State holds all three from the start as zeros (RMSprop.cs add_param_group); momentum_buffer is b.
            (RMSProp.State rms, "meanSquare") => rms.square_avg,
            (RMSProp.State rms, "momentum") => rms.momentum_buffer,
            (RMSProp.State rms, "meanGradient") => rms.grad_avg,
            // Adagrad.State.sum starts at initial_accumulator_value (Adagrad.cs add_param_group).
            (Adagrad.State adagrad, "accumulator") => adagrad.sum,
            var (other, slot) => throw new BackendException($"optimizer slot '{slot}': TorchSharp's {other.GetType().FullName} has no such state"),
        };
    }

    private int CallIndex(TensorKey key) => _plan.Graph.Calls.First(c => c.Id == key.Site).Index;

    private void SetTraining(bool training)
    {
        foreach (var module in _instances.Values) module.train(training);
    }

    /// <summary>The batch's float32 inputs in the run's dtype (float64 widens them exactly).</summary>
    private TorchTensor Inputs(Batch batch)
    {
        long[] shape = [batch.Size, batch.Features];
        return _dtype == DType.Float32
            ? torch.tensor(batch.Inputs.ToFloats(), shape, dtype: _scalarType, device: _device)
            : torch.tensor(batch.Inputs.Data, shape, dtype: _scalarType, device: _device);
    }

    /// <summary>
    /// The spec's loss by libtorch's own functions, each with its 'mean' reduction as the spec means it: cross_entropy
    /// (mean over samples; label_smoothing mixes (1-e) onehot + e/C [P11]), mse_loss and binary_cross_entropy_with_logits
    /// (mean over ALL elements; the latter fused, log-sum-exp [P11]).
    /// </summary>
    private TorchTensor Loss(TorchTensor outputs, TorchTensor labels, Batch batch)
    {
        var loss = _plan.Spec.Loss;
        if (loss.Function == LossFunction.SoftmaxCrossEntropy)
            return loss.LabelSmoothing == 0
                ? torch.nn.functional.cross_entropy(outputs, labels)
                : torch.nn.functional.cross_entropy(outputs, labels, label_smoothing: loss.LabelSmoothing);
        var t = batch.Targets ?? throw new BackendException($"the loss '{loss.Type}' needs float targets and the batch has none");
        long[] shape = [t.Shape[0], t.Shape[1]];
        var targets = _dtype == DType.Float32
            ? torch.tensor(t.ToFloats(), shape, dtype: _scalarType, device: _device)
            : torch.tensor(t.Data, shape, dtype: _scalarType, device: _device);
        return loss.Function == LossFunction.MeanSquaredError
            ? torch.nn.functional.mse_loss(outputs, targets)
            : torch.nn.functional.binary_cross_entropy_with_logits(outputs, targets);
    }

    private TorchTensor Labels(Batch batch)
    {
        var labels = new long[batch.Size];
        for (int i = 0; i < labels.Length; i++) labels[i] = batch.Labels[i];
        return torch.tensor(labels, [batch.Size], dtype: torch.ScalarType.Int64, device: _device);
    }

    private TorchTensor ToTorch(ParityTensor value)
    {
        long[] shape = value.Shape.Select(d => (long)d).ToArray();
        return torch.tensor(value.Data, shape, dtype: _scalarType, device: _device);
    }

    /// <summary>A copy of <paramref name="tensor"/> as the harness's tensor, tagged with the run's dtype.</summary>
    private ParityTensor Read(TorchTensor tensor)
    {
        var host = tensor.detach().cpu().contiguous();
        int[] shape = host.shape.Select(d => checked((int)d)).ToArray();
        // One block copy of the native buffer: TensorAccessor.ToArray walks element by element.
        var bytes = host.bytes;
        return _dtype == DType.Float32
            ? ParityTensor.FromFloats(MemoryMarshal.Cast<byte, float>(bytes), shape)
            : ParityTensor.FromDoubles(MemoryMarshal.Cast<byte, double>(bytes), shape);
    }

    /// <summary>
    /// Runs the optimizer step with no garbage collection allowed. TorchSharp 0.107's optimizers hand temporary Scalars
    /// (implicit double -&gt; Scalar conversions) to native calls without keeping them alive, so a collection in the middle
    /// of a call can finalize one while libtorch reads it. Seen here: libtorch's c10::Scalar toFloat/toLong checks failing
    /// inside THSTensor_add_scalar_ at random steps (739, 888, 974) of 6,000-step runs (TorchSharp PR #1496 is about
    /// these undisposed implicit Scalars). A step allocates a few kilobytes of managed objects, far below the budget.
    /// </summary>
    private void StepWithoutCollection()
    {
        bool noCollection = System.Runtime.GCSettings.LatencyMode != System.Runtime.GCLatencyMode.NoGCRegion
            && GC.TryStartNoGCRegion(NoCollectionBudget);
        try
        {
            _optimizer.step();
        }
        finally
        {
            if (noCollection && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
        }
    }

    private const long NoCollectionBudget = 16L << 20;

    /// <summary>
    /// Clips the parameters' .grad in place: libtorch's clip_grad_norm_ (min(1, maxNorm / (norm + 1e-6)), globally or
    /// once per tensor) where the spec's eps is its 1e-6, the same formula in torch ops for another eps, and
    /// clip_grad_value_ by value [P12].
    /// </summary>
    private void ClipGradients(GradientClipping clip)
    {
        var parameters = _plan.Graph.Parameters.Select(p => _parameters[p.Name]).Where(p => p.grad is not null).ToList();
        if (clip.Scope == ClipScope.Value)
        {
            torch.nn.utils.clip_grad_value_(parameters, clip.Threshold);
            return;
        }
        var groups = clip.Scope == ClipScope.GlobalNorm ? [parameters] : parameters.Select(p => new List<Parameter> { p }).ToList();
        foreach (var group in groups)
        {
            if (clip.Eps == TorchSharpConventions.LibtorchClipEps)
            {
                torch.nn.utils.clip_grad_norm_(group, clip.Threshold);
                continue;
            }
            using var noGrad = torch.no_grad();
            var norm = torch.linalg.vector_norm(torch.stack(group.Select(p => torch.linalg.vector_norm(p.grad!)).ToArray()));
            var scale = torch.clamp(clip.Threshold / (norm + clip.Eps), max: 1.0);
            foreach (var p in group) p.grad!.mul_(scale);
        }
    }

    /// <summary>
    /// The Keras momentum form in libtorch's SGD: m = mu m - lr g; p += m is b = mu (lr_prev / lr) b + g; p -= lr b with
    /// b = -m / lr (docs/conventions.md section 8a), so every buffer is scaled by lr_prev / lr before a step whose rate changed.
    /// </summary>
    private void RescaleMomentum(SgdSpec sgd)
    {
        if (_updates == 0) return;
        double ratio = sgd.LearningRateAt(_updates - 1) / sgd.LearningRateAt(_updates);
        if (ratio == 1) return;
        using var noGrad = torch.no_grad();
        foreach (var state in _optimizerStates.Values)
            if (state is SGD.State { momentum_buffer: { } buffer }) buffer.mul_(ratio);
    }

    private double Scalar(TorchTensor scalar) => _dtype == DType.Float32 ? scalar.item<float>() : scalar.item<double>();

    /// <summary>Fraction of rows whose arg-max logit is the label (ties go to the first maximum, as in torch.argmax).</summary>
    private static double Accuracy(TorchTensor logits, TorchTensor labels, int count) =>
        (double)logits.argmax(1).eq(labels).sum().item<long>() / count;

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
