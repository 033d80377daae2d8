using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Diagnostics;

/// <summary>
/// An SGD update as one hypothesis computes it: the rate of each update (by its 0-based index k), the momentum form and
/// the clipping. Nesterov and mu are the spec's.
/// </summary>
/// <param name="Name">What the hypothesis says, for the finding's evidence.</param>
/// <param name="LearningRateAt">The rate of update k.</param>
/// <param name="Form">Where the momentum keeps the rate.</param>
/// <param name="Clipping">The clipping, or null.</param>
internal sealed record SgdHypothesis(string Name, Func<int, double> LearningRateAt, MomentumForm Form, GradientClipping? Clipping)
{
    /// <summary>The spec's own hypothesis.</summary>
    public static SgdHypothesis Of(SgdSpec sgd) => new("spec", sgd.LearningRateAt, sgd.MomentumForm, sgd.Clipping);

    /// <summary>The buffer's decay in update k: mu, or mu lr_{k-1} / lr_k in the Keras form (<see cref="SgdSpec.VelocityDecayAt"/>).</summary>
    public double DecayAt(double mu, int k) => Form == MomentumForm.Keras && k > 0 ? mu * (LearningRateAt(k - 1) / LearningRateAt(k)) : mu;
}

/// <summary>One step where the spec's SGD update does not fit a backend's traced update and another hypothesis does.</summary>
/// <param name="Step">The train step.</param>
/// <param name="Update">The update's 0-based index k.</param>
/// <param name="Parameter">The parameter the spec's hypothesis fits worst.</param>
/// <param name="SpecError">The spec's worst relative error.</param>
/// <param name="Alternative">The hypothesis that fits.</param>
/// <param name="AlternativeError">Its error on the same parameter.</param>
/// <param name="AllFitting">Every hypothesis that fits this step, the first one first (several can, until their rates part).</param>
internal sealed record SgdMisfit(int Step, int Update, string Parameter, double SpecError, SgdHypothesis Alternative, double AlternativeError, IReadOnlyList<string> AllFitting);

/// <summary>
/// Recomputes each traced SGD update p_t - p_{t-1} of the identifiable parameters from the backend's own state before the
/// step (its momentum buffer b_{t-1}) and its traced, unclipped gradients under the spec and under alternatives
/// (docs/conventions.md sections 8a-10): b = decay b_{t-1} + clip(g); p -= lr (nesterov ? clip(g) + mu b : b). The first
/// step, from the one its verdict diverges at, where the spec's hypothesis fails and an alternative fits is the misfit.
/// The clip always measures every parameter's gradient, the judged ones and the others.
/// </summary>
internal static class SgdUpdateFit
{
    /// <summary>The first misfit of <paramref name="backend"/> that one of <paramref name="alternatives"/> explains (given k), or null.</summary>
    public static SgdMisfit? FirstMisfit(DiagnosisContext context, BackendTrace backend, SgdSpec sgd, Func<int, IEnumerable<SgdHypothesis>> alternatives)
    {
        var canonical = SgdHypothesis.Of(sgd);
        var judged = context.Graph.Parameters.Where(p => p.Identifiable).Select(p => p.Name).ToList();
        int first = context.FirstStepToCheck(backend.Name);
        foreach (var step in TraceWalk.Steps(backend.Trace))
        {
            var r = step.Record;
            if (r.Phase != RecordPhase.Train || r.Step < first) continue;
            if (r.Step >= first + Fit.MaxCheckedSteps) return null;
            int t = r.Step;
            int k = (r.Find(TensorKind.OptimizerStep) is { } count ? (int)count.Data[0] : t) - 1;
            if (Inputs(context, step, sgd) is not { } inputs) continue;
            var (canonicalError, site) = Worst(inputs, judged, sgd, canonical, k);
            if (site is null) continue;
            double tolerance = BatchNormTrace.DTypeOf(r) == DType.Float32 ? 1e-3 : 1e-8;
            if (canonicalError <= tolerance) continue;
            var fitting = alternatives(k).Select(a => (Hypothesis: a, Error: Error(inputs, site, sgd, a, k)))
                .Where(a => a.Error <= tolerance && a.Error * 10 < canonicalError).ToList();
            // The spec does not fit and no alternative does: another cause.
            return fitting.Count == 0 ? null : new SgdMisfit(t, k, site, canonicalError, fitting[0].Hypothesis, fitting[0].Error, [.. fitting.Select(f => f.Hypothesis.Name)]);
        }
        return null;
    }

    private sealed record StepInputs(Dictionary<string, double[]> Gradients, Dictionary<string, double[]> Buffers, Dictionary<string, (double[] Before, double[] After)> Parameters);

    private static StepInputs? Inputs(DiagnosisContext context, WalkStep step, SgdSpec sgd)
    {
        var r = step.Record;
        var gradients = new Dictionary<string, double[]>();
        var buffers = new Dictionary<string, double[]>();
        var parameters = new Dictionary<string, (double[], double[])>();
        foreach (var p in context.Graph.Parameters)
        {
            if (r.Find(TensorKind.ParameterGradient, p.Name) is not { } g) return null;
            gradients[p.Name] = g.Data;
            // The buffer before the step: traced at the previous step (zeros before the first update).
            buffers[p.Name] = sgd.Momentum == 0 ? new double[g.Length]
                : step.State.At(TensorKind.OptimizerSlot, p.Name + "/momentum", r.Step - 1) is { } b ? b.Data
                : r.Step == 1 ? new double[g.Length] : null!;
            if (buffers[p.Name] is null) return null;
            if (step.State.At(TensorKind.Parameter, p.Name, r.Step - 1) is { } before && r.Find(TensorKind.Parameter, p.Name) is { } after)
                parameters[p.Name] = (before.Data, after.Data);
        }
        return new StepInputs(gradients, buffers, parameters);
    }

    private static (double Error, string? Site) Worst(StepInputs inputs, List<string> judged, SgdSpec sgd, SgdHypothesis h, int k)
    {
        double worst = 0;
        string? site = null;
        var predicted = Predict(inputs, sgd, h, k);
        foreach (var name in judged)
        {
            if (!inputs.Parameters.TryGetValue(name, out var p)) continue;
            var actual = Difference(p.After, p.Before);
            if (actual.All(u => u == 0)) continue;
            double error = Fit.RelativeError(predicted[name], actual);
            if (site is null || error > worst) (worst, site) = (error, name);
        }
        return (worst, site);
    }

    private static double Error(StepInputs inputs, string site, SgdSpec sgd, SgdHypothesis h, int k)
    {
        var (before, after) = inputs.Parameters[site];
        return Fit.RelativeError(Predict(inputs, sgd, h, k)[site], Difference(after, before));
    }

    /// <summary>The update p_t - p_{t-1} of every parameter under <paramref name="h"/>.</summary>
    private static Dictionary<string, double[]> Predict(StepInputs inputs, SgdSpec sgd, SgdHypothesis h, int k)
    {
        var gradients = h.Clipping is { } clip ? clip.Apply(inputs.Gradients) : inputs.Gradients;
        double lr = h.LearningRateAt(k), decay = h.DecayAt(sgd.Momentum, k);
        var updates = new Dictionary<string, double[]>();
        foreach (var (name, g) in gradients)
        {
            var b0 = inputs.Buffers[name];
            var u = new double[g.Length];
            for (int i = 0; i < g.Length; i++)
            {
                double b = decay * b0[i] + g[i];
                u[i] = -lr * (sgd.Nesterov ? g[i] + sgd.Momentum * b : b);
            }
            updates[name] = u;
        }
        return updates;
    }

    private static double[] Difference(double[] after, double[] before)
    {
        var d = new double[after.Length];
        for (int i = 0; i < d.Length; i++) d[i] = after[i] - before[i];
        return d;
    }
}
