using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Data;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Diagnostics.Tests;

/// <summary>
/// A backend that silently runs another spec than the one it was given: how a framework with a different convention
/// behaves when the harness forgets to translate (momentum as 1 - m, another variance estimator, eps, Adam form, seed).
/// </summary>
internal sealed class SpecVariantBackend(string name, Func<ScenarioSpec, ScenarioSpec> change, IBackend? inner = null) : IBackend
{
    private readonly IBackend _inner = inner ?? ReferenceBackend.Float64();

    public string Name => name;

    public BackendDescription Describe() => _inner.Describe() with { Name = name };

    public IBackendSession Open(Plan plan, BackendOptions options) => _inner.Open(Planner.Build(change(plan.Spec), plan.TotalSteps), options);

    /// <summary>The spec with every batchnorm instance changed by <paramref name="change"/>.</summary>
    public static ScenarioSpec MapBatchNorms(ScenarioSpec spec, Func<BatchNormSpec, BatchNormSpec> change) =>
        spec with { Model = spec.Model with { Layers = spec.Model.Layers.Select(l => l is BatchNormSpec bn ? change(bn) : l).ToList() } };
}

/// <summary>A backend whose records are rewritten after the fact: the trace of a framework with a defect the reference cannot express.</summary>
internal sealed class RewritingBackend(string name, Func<Plan, StepRecord, StepRecord> rewrite, IBackend? inner = null) : IBackend
{
    private readonly IBackend _inner = inner ?? ReferenceBackend.Float64();

    public string Name => name;

    public BackendDescription Describe() => _inner.Describe() with { Name = name };

    public IBackendSession Open(Plan plan, BackendOptions options) => new Session(_inner.Open(plan, options), plan, rewrite);

    private sealed class Session(IBackendSession inner, Plan plan, Func<Plan, StepRecord, StepRecord> rewrite) : IBackendSession
    {
        public IReadOnlyList<ConventionMismatch> Mismatches => inner.Mismatches;

        public IReadOnlyDictionary<string, string> RuntimeInfo => inner.RuntimeInfo;

        public StepRecord ReadState(int step) => rewrite(plan, inner.ReadState(step));

        public StepRecord Step(int step, Batch batch, CaptureRequest capture) => rewrite(plan, inner.Step(step, batch, capture));

        public StepRecord Evaluate(int step, Batch data, CaptureRequest capture) => rewrite(plan, inner.Evaluate(step, data, capture));

        public void Dispose() => inner.Dispose();
    }

    /// <summary>A copy of <paramref name="record"/> with each entry passed through <paramref name="change"/>.</summary>
    public static StepRecord Map(StepRecord record, Func<TraceEntry, Tensor> change)
    {
        var copy = new StepRecord(record.Step, record.Phase);
        foreach (var e in record.Entries) copy.Add(e.Key.Kind, e.Key.Site, change(e));
        return copy;
    }

    /// <summary>
    /// Batchnorm outputs of <paramref name="kind"/> recomputed from the record's own input to each call with
    /// <paramref name="normalize"/>(x, call, state); everything else kept.
    /// </summary>
    public static StepRecord RenormalizeBatchNorm(Plan plan, StepRecord record, TensorKind kind, Func<Tensor, BatchNormSpec, double[]> normalize)
    {
        var copy = new StepRecord(record.Step, record.Phase);
        foreach (var e in record.Entries)
        {
            var call = plan.Graph.Calls.FirstOrDefault(c => c.Id == e.Key.Site);
            if (e.Key.Kind == kind && call is { Layer: BatchNormSpec bn, Index: > 0 } && record.Find(kind, plan.Graph.Calls[call.Index - 1].Id) is { } x)
                copy.Add(e.Key.Kind, e.Key.Site, new Tensor(e.Value.Shape, normalize(x, bn), e.Value.DType));
            else copy.Add(e.Key.Kind, e.Key.Site, e.Value);
        }
        return copy;
    }

    /// <summary>Per-column batch normalization with gamma 1, beta 0 (the tests' specs keep the affine parameters at their initial values for this check).</summary>
    public static double[] Normalize(Tensor x, double eps, bool epsOutside)
    {
        int rows = x.Shape[0], cols = x.Shape[1];
        var mean = new double[cols];
        var variance = new double[cols];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) mean[c] += x.Data[r * cols + c] / rows;
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) variance[c] += Math.Pow(x.Data[r * cols + c] - mean[c], 2) / rows;
        var y = new double[x.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                y[r * cols + c] = (x.Data[r * cols + c] - mean[c]) / (epsOutside ? Math.Sqrt(variance[c]) + eps : Math.Sqrt(variance[c] + eps));
        return y;
    }
}

/// <summary>
/// A framework that keeps one square weight as a kernel [in, out] but multiplies as if it were [out, in]: its forward pass
/// computes x W instead of x W^T, and it trains that model consistently (gradients and optimizer state of its own
/// kernel), while it traces the weight, its gradient and its slots correctly transposed to the canonical layout.
/// </summary>
internal sealed class TransposedKernelBackend(string name, string weight) : IBackend
{
    private readonly IBackend _inner = ReferenceBackend.Float64();

    public string Name => name;

    public BackendDescription Describe() => _inner.Describe() with { Name = name };

    public IBackendSession Open(Plan plan, BackendOptions options)
    {
        var inner = (IStateLoadingSession)_inner.Open(plan, options);
        var session = new Session(inner, weight);
        inner.LoadState(session.Flip(inner.ReadState(0)));
        return session;
    }

    private sealed class Session(IStateLoadingSession inner, string weight) : IBackendSession
    {
        public IReadOnlyList<ConventionMismatch> Mismatches => inner.Mismatches;

        public IReadOnlyDictionary<string, string> RuntimeInfo => inner.RuntimeInfo;

        public StepRecord ReadState(int step) => Flip(inner.ReadState(step));

        public StepRecord Step(int step, Batch batch, CaptureRequest capture) => Flip(inner.Step(step, batch, capture));

        public StepRecord Evaluate(int step, Batch data, CaptureRequest capture) => inner.Evaluate(step, data, capture);

        public void Dispose() => inner.Dispose();

        // The record with the weight and everything shaped like it (its gradient, its optimizer slots) transposed.
        public StepRecord Flip(StepRecord record) => RewritingBackend.Map(record, e =>
            e.Key.Kind is TensorKind.Parameter or TensorKind.ParameterGradient && e.Key.Site == weight
            || e.Key.Kind == TensorKind.OptimizerSlot && e.Key.Site.StartsWith(weight + "/", StringComparison.Ordinal)
                ? e.Value.Transpose2D() : e.Value);
    }
}

/// <summary>
/// A framework that updates a shared batchnorm's running statistics once per step, with its last call's batch
/// statistics, where the reference updates them once per call: its own state stays consistent from step to step.
/// </summary>
internal sealed class OncePerStepBackend(string name, string instance) : IBackend
{
    private readonly IBackend _inner = ReferenceBackend.Float64();

    public string Name => name;

    public BackendDescription Describe() => _inner.Describe() with { Name = name };

    public IBackendSession Open(Plan plan, BackendOptions options) => new Session((IStateLoadingSession)_inner.Open(plan, options), plan, instance);

    private sealed class Session(IStateLoadingSession inner, Plan plan, string instance) : IBackendSession
    {
        public IReadOnlyList<ConventionMismatch> Mismatches => inner.Mismatches;

        public IReadOnlyDictionary<string, string> RuntimeInfo => inner.RuntimeInfo;

        public StepRecord ReadState(int step) => inner.ReadState(step);

        public StepRecord Step(int step, Batch batch, CaptureRequest capture)
        {
            var before = inner.ReadState(step - 1);
            var record = inner.Step(step, batch, CaptureRequest.Everything);
            var bn = plan.Graph.BatchNorms.First(b => b.Name == instance);
            var last = BatchNormTrace.CallsOf(plan.Graph, instance)[^1];
            var (mean, variance) = BatchNormTrace.BatchStatistics(record, plan.Graph, last)!.Value;
            double scale = BatchNormTrace.VarianceScale(bn.RunningVariance, batch.Size);
            var runningMean = BatchNormTrace.Predict(before.Find(TensorKind.RunningMean, instance)!.Data, [mean], bn.Momentum);
            var runningVariance = BatchNormTrace.Predict(before.Find(TensorKind.RunningVariance, instance)!.Data, [variance], bn.Momentum, scale);
            var fixedRecord = RewritingBackend.Map(record, e => e.Key.Site != instance ? e.Value
                : e.Key.Kind == TensorKind.RunningMean ? new Tensor(e.Value.Shape, runningMean, e.Value.DType)
                : e.Key.Kind == TensorKind.RunningVariance ? new Tensor(e.Value.Shape, runningVariance, e.Value.DType)
                : e.Value);
            inner.LoadState(fixedRecord);
            return fixedRecord;
        }

        public StepRecord Evaluate(int step, Batch data, CaptureRequest capture) => inner.Evaluate(step, data, capture);

        public void Dispose() => inner.Dispose();
    }
}
