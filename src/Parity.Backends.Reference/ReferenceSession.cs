using System.Numerics;
using Parity.Data;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.Reference;

/// <summary>
/// One reference run in precision <typeparamref name="T"/>: the plan's model loaded from
/// <see cref="Plan.InitialState"/>, its optimizer state, and the records of the trace conventions
/// (docs/trace.md): per call Forward (and BatchMean/BatchVariance for batchnorm), Loss, TrainAccuracy,
/// OutputGradient per call, ParameterGradient, RunningMean/RunningVariance, Parameter after the update.
/// </summary>
internal sealed class ReferenceSession<T> : IBackendSession where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Plan _plan;
    private readonly Network<T> _network;
    private readonly DType _dtype;
    private readonly Dictionary<string, T[]> _first = []; // SGD velocity, Adam m
    private readonly Dictionary<string, T[]> _second = []; // Adam v
    private readonly Dictionary<string, string> _runtime;
    private readonly Dictionary<int, T[]> _inputs = [];

    public ReferenceSession(Plan plan, DType dtype, ParallelOptions parallel, Dictionary<string, string> runtime)
    {
        _plan = plan;
        _dtype = dtype;
        _runtime = runtime;
        // Under init "framework" the plan's state is used as well: the reference has no initializers of
        // its own (BackendCapabilities.FrameworkInit is false).
        _network = new Network<T>(plan.Graph, plan.InitialState, parallel);
        if (plan.Spec.Init.Mode == InitMode.Framework)
            _runtime["init"] = "the plan's initial state (the reference has no initializers of its own)";
        foreach (var (name, value) in _network.Parameters)
        {
            _first[name] = new T[value.Length];
            if (plan.Spec.Optimizer is AdamSpec) _second[name] = new T[value.Length];
        }
    }

    public IReadOnlyList<ConventionMismatch> Mismatches => [];

    public IReadOnlyDictionary<string, string> RuntimeInfo => _runtime;

    /// <summary>Every parameter and running statistic as it is now, in phase Initial (the runner asks at step 0).</summary>
    public StepRecord ReadState(int step)
    {
        var record = new StepRecord(step, RecordPhase.Initial);
        AddState(record, CaptureRequest.Everything);
        return record;
    }

    public StepRecord Step(int step, Batch batch, CaptureRequest capture)
    {
        if (step < 1) throw new BackendException($"training steps count from 1; got step {step}");
        var input = Inputs(batch);
        var pass = _network.Forward(input, batch.Labels, PassMode.Train, updateRunning: true);
        _network.Backward(pass, inputGradient: false);
        Update(step);

        var record = new StepRecord(step, RecordPhase.Train);
        var calls = _plan.Graph.Calls;
        for (int i = 0; i < calls.Count; i++)
        {
            if (capture.Wants(TensorKind.Forward)) record.Add(TensorKind.Forward, calls[i].Id, Matrix(pass.Outputs[i], pass.N));
            if (!calls[i].IsBatchNorm) continue;
            if (capture.Wants(TensorKind.BatchMean)) record.Add(TensorKind.BatchMean, calls[i].Id, Vector(pass.Mean[i]));
            if (capture.Wants(TensorKind.BatchVariance)) record.Add(TensorKind.BatchVariance, calls[i].Id, Vector(pass.Variance[i]));
        }
        record.AddScalar(TensorKind.Loss, double.CreateTruncating(pass.Loss), _dtype);
        record.AddScalar(TensorKind.TrainAccuracy, (double)pass.Correct / pass.N, _dtype);
        if (capture.Wants(TensorKind.OutputGradient))
            for (int i = 0; i < calls.Count; i++) record.Add(TensorKind.OutputGradient, calls[i].Id, Matrix(pass.OutputGradients[i], pass.N));
        if (capture.Wants(TensorKind.ParameterGradient))
            foreach (var p in _plan.Graph.Parameters) record.Add(TensorKind.ParameterGradient, p.Name, Shaped(_network.Gradients[p.Name], p.Shape));
        AddState(record, capture);
        return record;
    }

    public StepRecord Evaluate(int step, Batch data, CaptureRequest capture)
    {
        var pass = _network.Forward(Inputs(data), data.Labels, PassMode.Eval, updateRunning: false);
        var record = new StepRecord(step, RecordPhase.Eval);
        if (capture.Wants(TensorKind.EvalOutput))
            for (int i = 0; i < _plan.Graph.Calls.Count; i++) record.Add(TensorKind.EvalOutput, _plan.Graph.Calls[i].Id, Matrix(pass.Outputs[i], pass.N));
        record.AddScalar(TensorKind.EvalLoss, double.CreateTruncating(pass.Loss), _dtype);
        record.AddScalar(TensorKind.EvalAccuracy, (double)pass.Correct / pass.N, _dtype);
        return record;
    }

    public void Dispose()
    {
        // Managed buffers only; nothing to release.
    }

    private void Update(int step)
    {
        switch (_plan.Spec.Optimizer)
        {
            case SgdSpec sgd:
                T lr = T.CreateTruncating(sgd.LearningRate), momentum = T.CreateTruncating(sgd.Momentum);
                foreach (var p in _plan.Graph.Parameters)
                    ReferenceOps.SgdUpdate<T>(_network.Parameters[p.Name], _first[p.Name], _network.Gradients[p.Name], lr, momentum);
                break;
            case AdamSpec adam:
                T alr = T.CreateTruncating(adam.LearningRate), b1 = T.CreateTruncating(adam.Beta1), b2 = T.CreateTruncating(adam.Beta2);
                T eps = T.CreateTruncating(adam.Eps);
                foreach (var p in _plan.Graph.Parameters)
                    ReferenceOps.AdamUpdate<T>(_network.Parameters[p.Name], _first[p.Name], _second[p.Name], _network.Gradients[p.Name],
                        alr, b1, b2, eps, step, adam.EpsilonForm);
                break;
            default:
                throw new BackendException($"the reference backend has no optimizer '{_plan.Spec.Optimizer.Type}'");
        }
    }

    private void AddState(StepRecord record, CaptureRequest capture)
    {
        // Kind by kind, in TensorKind (comparison) order.
        if (capture.Wants(TensorKind.RunningMean))
            foreach (var bn in _plan.Graph.BatchNorms) record.Add(TensorKind.RunningMean, bn.Name, Vector(_network.Running[bn.Name].Mean));
        if (capture.Wants(TensorKind.RunningVariance))
            foreach (var bn in _plan.Graph.BatchNorms) record.Add(TensorKind.RunningVariance, bn.Name, Vector(_network.Running[bn.Name].Variance));
        if (capture.Wants(TensorKind.Parameter))
            foreach (var p in _plan.Graph.Parameters) record.Add(TensorKind.Parameter, p.Name, Shaped(_network.Parameters[p.Name], p.Shape));
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
        for (int i = 0; i < data.Length; i++) buffer[i] = T.CreateTruncating(data[i]);
        return buffer;
    }

    private Tensor Matrix(T[] values, int n) => Shaped(values, [n, values.Length / n]);

    private Tensor Vector(T[] values) => Shaped(values, [values.Length]);

    private Tensor Shaped(T[] values, int[] shape)
    {
        // Every element is written, so the array need not be zeroed first.
        var data = GC.AllocateUninitializedArray<double>(values.Length);
        for (int i = 0; i < data.Length; i++) data[i] = double.CreateTruncating(values[i]);
        return new Tensor((int[])shape.Clone(), data, _dtype);
    }
}
