using Parity.Models;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Diagnostics;

/// <summary>Batchnorm facts read back from a trace: the batch statistics each call used, and running-statistic predictions.</summary>
public static class BatchNormTrace
{
    /// <summary>The call sites of <paramref name="instance"/> in call order.</summary>
    public static IReadOnlyList<CallSite> CallsOf(ModelGraph graph, string instance) =>
        graph.Calls.Where(c => c.Layer.Name == instance).ToList();

    /// <summary>
    /// The batch mean and biased variance call <paramref name="call"/> normalized with: traced when the record holds
    /// them, else recomputed from the previous call's forward output; null when neither is in the record.
    /// </summary>
    public static (double[] Mean, double[] Variance)? BatchStatistics(StepRecord record, ModelGraph graph, CallSite call)
    {
        if (record.Find(TensorKind.BatchMean, call.Id) is { } mean && record.Find(TensorKind.BatchVariance, call.Id) is { } variance)
            return (mean.Data, variance.Data);
        if (call.Index > 0 && record.Find(TensorKind.Forward, graph.Calls[call.Index - 1].Id) is { Shape.Length: 2 } input)
            return Fit.ColumnMoments(input);
        return null;
    }

    /// <summary>
    /// The running statistic after one step: <c>run = (1 - m) run + m stat</c> once per call in call order
    /// (the canonical convention, docs/spec.md), with <paramref name="momentum"/> the weight of the new statistic.
    /// <paramref name="statistics"/> holds one vector per call; <paramref name="scale"/> multiplies each (N/(N-1) for an
    /// unbiased running variance).
    /// </summary>
    public static double[] Predict(double[] before, IEnumerable<double[]> statistics, double momentum, double scale = 1)
    {
        var run = (double[])before.Clone();
        foreach (var stat in statistics)
            for (int i = 0; i < run.Length; i++) run[i] = (1 - momentum) * run[i] + momentum * stat[i] * scale;
        return run;
    }

    /// <summary>The N/(N-1) factor an unbiased running variance applies, or 1 for the biased estimator.</summary>
    public static double VarianceScale(RunningVarianceEstimator estimator, int batch) =>
        estimator == RunningVarianceEstimator.Unbiased && batch > 1 ? batch / (batch - 1.0) : 1;

    /// <summary>The dtype a record was computed in (its first entry's), float64 when empty.</summary>
    public static DType DTypeOf(StepRecord record) => record.Entries.Count > 0 ? record.Entries[0].Value.DType : DType.Float64;

    /// <summary>gamma and beta of <paramref name="bn"/> in <paramref name="state"/> at <paramref name="step"/> (1 and 0 when not affine); null when not recorded.</summary>
    internal static (double[] Gamma, double[] Beta)? Affine(BatchNormSpec bn, StateSnapshot state, int step)
    {
        if (!bn.Affine) return (Enumerable.Repeat(1.0, bn.Features).ToArray(), new double[bn.Features]);
        var gamma = state.At(TensorKind.Parameter, bn.Name + ".gamma", step);
        var beta = state.At(TensorKind.Parameter, bn.Name + ".beta", step);
        return gamma is null || beta is null ? null : (gamma.Data, beta.Data);
    }

    /// <summary>Batchnorm of a [rows, features] input with the given statistics; <paramref name="epsOutside"/> puts eps outside the square root (old CNTK).</summary>
    public static double[] Normalize(Tensor x, double[] mean, double[] variance, double eps, double[] gamma, double[] beta, bool epsOutside = false)
    {
        int rows = x.Shape[0], cols = x.Shape[1];
        var y = new double[x.Length];
        var inv = new double[cols];
        for (int c = 0; c < cols; c++) inv[c] = epsOutside ? 1 / (Math.Sqrt(variance[c]) + eps) : 1 / Math.Sqrt(variance[c] + eps);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                y[r * cols + c] = gamma[c] * (x.Data[r * cols + c] - mean[c]) * inv[c] + beta[c];
        return y;
    }
}
