using System.Numerics;
using Parity.Models;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Backends.Reference;

/// <summary>Whether batchnorm normalizes with batch statistics (train) or running statistics (eval).</summary>
internal enum PassMode
{
    Train,
    Eval,
}

/// <summary>A batchnorm instance's running mean and running variance.</summary>
internal sealed record RunningStatistics<T>(T[] Mean, T[] Variance);

/// <summary>
/// The model of a plan in precision <typeparamref name="T"/>: parameters by name, running statistics by
/// batchnorm instance, and the forward and backward passes over the plan's call sites built from
/// <see cref="ReferenceOps"/>. Shared by the backend session and <see cref="GradientCheck"/>.
/// </summary>
internal sealed class Network<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Dictionary<int, Pass<T>> _passes = [];
    private readonly Dictionary<string, T[]> _scratch = [];

    public Network(ModelGraph graph, StepRecord initialState, ParallelOptions parallel)
    {
        Graph = graph;
        Parallel = parallel;
        foreach (var p in graph.Parameters)
        {
            var tensor = initialState.Find(TensorKind.Parameter, p.Name)
                ?? throw new BackendException($"the plan's initial state has no parameter '{p.Name}'");
            if (!tensor.Shape.AsSpan().SequenceEqual(p.Shape))
                throw new BackendException($"initial parameter '{p.Name}' has shape {tensor.ShapeText}; the model needs [{string.Join(",", p.Shape)}]");
            Parameters[p.Name] = Convert(tensor.Data);
            Gradients[p.Name] = new T[tensor.Length];
        }
        foreach (var bn in graph.BatchNorms)
        {
            Running[bn.Name] = new RunningStatistics<T>(
                LoadStatistic(initialState, TensorKind.RunningMean, bn),
                LoadStatistic(initialState, TensorKind.RunningVariance, bn));
        }
    }

    public ModelGraph Graph { get; }

    public ParallelOptions Parallel { get; }

    /// <summary>Parameter values by full name (<c>l1.weight</c>), canonical layout.</summary>
    public Dictionary<string, T[]> Parameters { get; } = [];

    /// <summary>Gradients of the last <see cref="Backward"/>, summed over the calls of shared instances.</summary>
    public Dictionary<string, T[]> Gradients { get; } = [];

    /// <summary>Running statistics by batchnorm instance name.</summary>
    public Dictionary<string, RunningStatistics<T>> Running { get; } = [];

    /// <summary>
    /// Forward over every call on <paramref name="input"/> [n, inputs] and the loss. In train mode batchnorm
    /// uses batch statistics and, when <paramref name="updateRunning"/>, updates the instance's running
    /// statistics once per call in call order (Chainer semantics for a shared instance [C]). In train mode a dropout call
    /// applies the 0/1 mask <paramref name="dropoutMasks"/> gives for its call index (y = x * m / (1 - p)); in eval it is
    /// the identity. <paramref name="targets"/> [n, outputs] are the float targets of an element-wise <see cref="Loss"/>
    /// (null for softmax cross-entropy).
    /// </summary>
    public Pass<T> Forward(ReadOnlySpan<T> input, int[] labels, T[]? targets, PassMode mode, bool updateRunning, Func<int, double[]>? dropoutMasks = null)
    {
        int n = labels.Length;
        var pass = PassFor(n);
        input.CopyTo(pass.Input);
        pass.Labels = labels;
        for (int i = 0; i < Graph.Calls.Count; i++)
        {
            var call = Graph.Calls[i];
            ReadOnlySpan<T> x = i == 0 ? pass.Input : pass.Outputs[i - 1];
            Span<T> y = pass.Outputs[i];
            switch (call.Layer)
            {
                case LinearSpec lin:
                    ReferenceOps.LinearForward(x, Parameters[lin.Name + ".weight"], Bias(lin), y, n, call.InWidth, call.OutWidth, Parallel);
                    break;
                case BatchNormSpec bn when mode == PassMode.Train:
                    ReferenceOps.BatchNormForwardTrain(x, Gamma(bn.Name, bn.Affine), Beta(bn.Name, bn.Affine), T.CreateTruncating(bn.Eps),
                        y, pass.Mean[i], pass.Variance[i], pass.Xhat[i], n, bn.Features);
                    if (updateRunning)
                    {
                        var run = Running[bn.Name];
                        ReferenceOps.UpdateRunningStatistics<T>(run.Mean, run.Variance, pass.Mean[i], pass.Variance[i], T.CreateTruncating(bn.Momentum),
                            bn.RunningVariance == RunningVarianceEstimator.Unbiased, n);
                    }
                    break;
                case BatchNormSpec bn:
                    var stats = Running[bn.Name];
                    ReferenceOps.BatchNormForwardEval(x, Gamma(bn.Name, bn.Affine), Beta(bn.Name, bn.Affine), stats.Mean, stats.Variance,
                        T.CreateTruncating(bn.Eps), y, n, bn.Features);
                    break;
                case LayerNormSpec ln:
                    ReferenceOps.LayerNormForward(x, Gamma(ln.Name, ln.Affine), Beta(ln.Name, ln.Affine), T.CreateTruncating(ln.Eps),
                        y, pass.Xhat[i], pass.Rstd[i], n, ln.Features);
                    break;
                case ReluSpec:
                    ReferenceOps.ReluForward(x, y);
                    break;
                case IdentitySpec:
                    x.CopyTo(y);
                    break;
                case ActivationSpec act:
                    ReferenceOps.ActivationForward(ActivationConstants<T>.For(act), x, y);
                    break;
                case DropoutSpec dropout when mode == PassMode.Train:
                    var mask = dropoutMasks?.Invoke(i) ?? throw new BackendException($"no dropout mask was given for call '{call.Id}'");
                    ReferenceOps.DropoutMask(mask, T.CreateTruncating(dropout.KeptScale), pass.DropoutScaled[i], call.Id);
                    ReferenceOps.Multiply<T>(x, pass.DropoutScaled[i], y);
                    break;
                case DropoutSpec:
                    x.CopyTo(y);
                    break;
                default:
                    throw new BackendException($"the reference backend has no layer type '{call.Layer.Type}' (call '{call.Id}')");
            }
        }
        int last = Graph.Calls.Count - 1;
        pass.Loss = ComputeLoss(pass.Outputs[last], labels, targets, pass.OutputGradients[last], n);
        pass.Correct = Loss.HasAccuracy ? CountCorrect(pass.Outputs[last], labels, Graph.OutputWidth) : 0;
        return pass;
    }

    /// <summary>
    /// Backward of the last train-mode <see cref="Forward(ReadOnlySpan{T}, int[], T[], PassMode, bool, Func{int, double[]})"/> of <paramref name="pass"/>: every call's output
    /// gradient and every parameter gradient; the input gradient too when <paramref name="inputGradient"/>.
    /// Gradients of a shared instance are summed over its calls in backward order. <paramref name="kinkSigns"/>, when it
    /// gives values for a ReLU call's input (by call index), sets that ReLU's derivative mask from their signs instead of
    /// this pass's own, and likewise picks the branch of LeakyReLU and ELU (<see cref="Activations.HasKink"/>): a replay then
    /// follows another backend's decision at a pre-activation within rounding of zero.
    /// </summary>
    public void Backward(Pass<T> pass, bool inputGradient, Func<int, double[]?>? kinkSigns = null)
    {
        int n = pass.N;
        var written = new HashSet<string>();
        for (int i = Graph.Calls.Count - 1; i >= 0; i--)
        {
            var call = Graph.Calls[i];
            ReadOnlySpan<T> x = i == 0 ? pass.Input : pass.Outputs[i - 1];
            ReadOnlySpan<T> dy = pass.OutputGradients[i];
            Span<T> dx = i > 0 ? pass.OutputGradients[i - 1] : pass.InputGradient;
            switch (call.Layer)
            {
                case LinearSpec lin:
                    var dw = GradientTarget(lin.Name + ".weight", written);
                    var db = lin.Bias ? GradientTarget(lin.Name + ".bias", written) : Span<T>.Empty;
                    ReferenceOps.LinearBackward(x, Parameters[lin.Name + ".weight"], dy, i == 0 && !inputGradient ? Span<T>.Empty : dx,
                        dw, db, n, call.InWidth, call.OutWidth, Parallel);
                    Accumulate(lin.Name + ".weight", written);
                    if (lin.Bias) Accumulate(lin.Name + ".bias", written);
                    break;
                case BatchNormSpec bn:
                    var dgamma = bn.Affine ? GradientTarget(bn.Name + ".gamma", written) : Span<T>.Empty;
                    var dbeta = bn.Affine ? GradientTarget(bn.Name + ".beta", written) : Span<T>.Empty;
                    ReferenceOps.BatchNormBackward(dy, pass.Xhat[i], Gamma(bn.Name, bn.Affine), pass.Variance[i], T.CreateTruncating(bn.Eps),
                        dx, dgamma, dbeta, n, bn.Features);
                    AccumulateAffine(bn.Name, bn.Affine, written);
                    break;
                case LayerNormSpec ln:
                    var lgamma = ln.Affine ? GradientTarget(ln.Name + ".gamma", written) : Span<T>.Empty;
                    var lbeta = ln.Affine ? GradientTarget(ln.Name + ".beta", written) : Span<T>.Empty;
                    ReferenceOps.LayerNormBackward(dy, pass.Xhat[i], Gamma(ln.Name, ln.Affine), pass.Rstd[i], dx, lgamma, lbeta, n, ln.Features);
                    AccumulateAffine(ln.Name, ln.Affine, written);
                    break;
                case ReluSpec when kinkSigns?.Invoke(i) is { } signs && signs.Length == dy.Length:
                    for (int j = 0; j < dy.Length; j++) dx[j] = signs[j] > 0 ? dy[j] : T.Zero;
                    break;
                case ReluSpec:
                    ReferenceOps.ReluBackward<T>(pass.Outputs[i], dy, dx);
                    break;
                case IdentitySpec:
                    dy.CopyTo(dx);
                    break;
                case ActivationSpec act:
                    var followed = Activations.HasKink(act) ? kinkSigns?.Invoke(i) : null;
                    ReferenceOps.ActivationBackward(ActivationConstants<T>.For(act), x, dy, dx, followed?.Length == dy.Length ? followed : null);
                    break;
                case DropoutSpec:
                    ReferenceOps.Multiply<T>(dy, pass.DropoutScaled[i], dx);
                    break;
                default:
                    throw new BackendException($"the reference backend has no layer type '{call.Layer.Type}' (call '{call.Id}')");
            }
        }
        foreach (var (name, grad) in Gradients)
            if (!written.Contains(name)) Array.Clear(grad); // a parameter no call reached has gradient zero
    }

    private Pass<T> PassFor(int n)
    {
        if (!_passes.TryGetValue(n, out var pass))
        {
            pass = new Pass<T>(Graph, n);
            _passes[n] = pass;
        }
        return pass;
    }

    // The first call (in backward order) of an instance writes its gradient in place; later calls of a
    // shared instance write to scratch and are added, so an unshared gradient is exactly the op's output.
    private Span<T> GradientTarget(string name, HashSet<string> written)
    {
        if (!written.Contains(name)) return Gradients[name];
        if (!_scratch.TryGetValue(name, out var scratch))
        {
            scratch = new T[Gradients[name].Length];
            _scratch[name] = scratch;
        }
        return scratch;
    }

    private void Accumulate(string name, HashSet<string> written)
    {
        if (written.Add(name)) return;
        var total = Gradients[name];
        var part = _scratch[name];
        System.Numerics.Tensors.TensorPrimitives.Add(total, part, total);
    }

    private void AccumulateAffine(string instance, bool affine, HashSet<string> written)
    {
        if (!affine) return;
        Accumulate(instance + ".gamma", written);
        Accumulate(instance + ".beta", written);
    }

    /// <summary>The loss the passes compute (docs/spec.md#loss).</summary>
    public LossSpec Loss { get; init; } = LossSpec.Default;

    private T ComputeLoss(ReadOnlySpan<T> outputs, int[] labels, T[]? targets, Span<T> doutputs, int n)
    {
        int width = Graph.OutputWidth;
        if (Loss.Function == LossFunction.SoftmaxCrossEntropy)
        {
            return Loss.LabelSmoothing == 0
                ? ReferenceOps.SoftmaxCrossEntropy<T>(outputs, labels, doutputs, n, width)
                : ReferenceOps.SmoothedSoftmaxCrossEntropy<T>(outputs, labels, T.CreateTruncating(Loss.LabelSmoothing), Loss.SmoothingClasses ?? width, doutputs, n, width);
        }
        if (targets is null) throw new BackendException($"the loss '{Loss.Type}' needs float targets and the batch has none");
        int divisor = Loss.Reduction switch
        {
            LossReduction.Sum => 1,
            LossReduction.SumOverOutputs => n,
            _ => n * width,
        };
        return Loss.Function == LossFunction.MeanSquaredError
            ? ReferenceOps.MeanSquaredError<T>(outputs, targets, doutputs, divisor)
            : ReferenceOps.BinaryCrossEntropyWithLogits<T>(outputs, targets, doutputs, divisor);
    }

    private ReadOnlySpan<T> Bias(LinearSpec lin) => lin.Bias ? Parameters[lin.Name + ".bias"] : ReadOnlySpan<T>.Empty;

    private ReadOnlySpan<T> Gamma(string instance, bool affine) => affine ? Parameters[instance + ".gamma"] : ReadOnlySpan<T>.Empty;

    private ReadOnlySpan<T> Beta(string instance, bool affine) => affine ? Parameters[instance + ".beta"] : ReadOnlySpan<T>.Empty;

    /// <summary>Samples whose largest logit (the first, on ties) is the label.</summary>
    internal static int CountCorrect(ReadOnlySpan<T> logits, int[] labels, int classes)
    {
        int correct = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            var row = logits.Slice(i * classes, classes);
            int best = 0;
            for (int c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
            if (best == labels[i]) correct++;
        }
        return correct;
    }

    internal static T[] Convert(double[] values)
    {
        var result = new T[values.Length];
        for (int i = 0; i < values.Length; i++) result[i] = T.CreateTruncating(values[i]);
        return result;
    }

    private static T[] LoadStatistic(StepRecord initialState, TensorKind kind, BatchNormSpec bn)
    {
        var tensor = initialState.Find(kind, bn.Name)
            ?? throw new BackendException($"the plan's initial state has no {kind.Name()} for batchnorm '{bn.Name}'");
        if (tensor.Length != bn.Features)
            throw new BackendException($"initial {kind.Name()} of '{bn.Name}' has shape {tensor.ShapeText}; the model needs [{bn.Features}]");
        return Convert(tensor.Data);
    }
}

/// <summary>The buffers of one forward/backward pass at batch size <see cref="N"/>, reused across steps.</summary>
internal sealed class Pass<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static readonly T[] None = [];

    public Pass(ModelGraph graph, int n)
    {
        N = n;
        int count = graph.Calls.Count;
        Input = new T[checked(n * (count > 0 ? graph.Calls[0].InWidth : 0))];
        InputGradient = new T[Input.Length];
        Outputs = new T[count][];
        OutputGradients = new T[count][];
        Xhat = new T[count][];
        Mean = new T[count][];
        Variance = new T[count][];
        Rstd = new T[count][];
        DropoutScaled = new T[count][];
        for (int i = 0; i < count; i++)
        {
            var call = graph.Calls[i];
            // Checked: a product past int.MaxValue would wrap to a short buffer that the kernels then overrun.
            int size = checked(n * call.OutWidth);
            Outputs[i] = new T[size];
            OutputGradients[i] = new T[size];
            bool normalizes = call.Layer is BatchNormSpec or LayerNormSpec;
            Xhat[i] = normalizes ? new T[size] : None;
            Mean[i] = call.IsBatchNorm ? new T[call.OutWidth] : None;
            Variance[i] = call.IsBatchNorm ? new T[call.OutWidth] : None;
            Rstd[i] = call.Layer is LayerNormSpec ? new T[n] : None;
            DropoutScaled[i] = call.IsDropout ? new T[size] : None;
        }
    }

    public int N { get; }

    public int[] Labels { get; set; } = [];

    public T[] Input { get; }

    public T[] InputGradient { get; }

    public T[][] Outputs { get; }

    public T[][] OutputGradients { get; }

    /// <summary>Normalized inputs of batchnorm and layernorm calls.</summary>
    public T[][] Xhat { get; }

    /// <summary>Batch means of batchnorm calls.</summary>
    public T[][] Mean { get; }

    /// <summary>Biased batch variances of batchnorm calls.</summary>
    public T[][] Variance { get; }

    /// <summary>Per-sample 1/sqrt(var + eps) of layernorm calls.</summary>
    public T[][] Rstd { get; }

    /// <summary>Dropout calls' masks times 1/(1 - p) (0 where dropped): what the forward and the backward multiply by.</summary>
    public T[][] DropoutScaled { get; }

    public T Loss { get; set; }

    public int Correct { get; set; }
}
