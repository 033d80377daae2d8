using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics;

/// <summary>
/// What one traced step says about the weight decay a backend applied, fitted in float64 from its own traced state over
/// the parameters the spec decays (identifiable ones only).
/// </summary>
/// <param name="Step">The step.</param>
/// <param name="Parameter">The first decayed parameter, where a finding is located.</param>
/// <param name="FirstSlot">The optimizer slot that carries the gradient (SGD's momentum, Adam's m), or null without one.</param>
/// <param name="Shrink">
/// The fitted decoupled factor k of p_t = (1 - k) p_{t-1} - U, U the optimizer's own step recomputed from its traced slots
/// after the step (lr v for SGD with momentum, Adam's step from m and v) or lr g without momentum: 0 when the decay is
/// inside the optimizer's state, lr wd (or wd) for a decoupled shrink.
/// </param>
/// <param name="GradientRate">
/// The fitted rate r of the gradient the optimizer took into its first slot, g + r p (g the traced gradient), from the slot
/// before and after the step; null without a slot. wd for coupled decay, 0 for decoupled.
/// </param>
internal sealed record DecayObservation(int Step, string Parameter, string? FirstSlot, double Shrink, double? GradientRate);

/// <summary>Fits <see cref="DecayObservation"/>s and the L2 loss term from a backend's trace (docs/causes.md, weight decay).</summary>
internal static class DecayFit
{
    /// <summary>
    /// One observation per train step from the first step worth checking, at most <see cref="Fit.MaxCheckedSteps"/> of them;
    /// none when the spec has no decay, the optimizer is neither SGD nor Adam, or the trace lacks what the fit reads.
    /// </summary>
    public static IEnumerable<DecayObservation> Observe(DiagnosisContext context, BackendTrace backend)
    {
        if (context.Spec.Optimizer.WeightDecay is not { } decay || context.Spec.Optimizer is not (SgdSpec or AdamSpec)) yield break;
        var parameters = context.Graph.Parameters.Where(p => p.Identifiable && decay.Applies(p)).Select(p => p.Name).ToList();
        if (parameters.Count == 0) yield break;
        int first = context.FirstStepToCheck(backend.Name);
        foreach (var step in TraceWalk.Steps(backend.Trace))
        {
            var r = step.Record;
            if (r.Phase != RecordPhase.Train || r.Step < first) continue;
            if (r.Step >= first + Fit.MaxCheckedSteps) yield break;
            if (Observe(context.Spec.Optimizer, parameters, step) is { } observation) yield return observation;
        }
    }

    private static DecayObservation? Observe(OptimizerSpec optimizer, List<string> parameters, WalkStep step)
    {
        var r = step.Record;
        int t = r.Step;
        string? slot = optimizer switch
        {
            SgdSpec { Momentum: > 0 } => "momentum",
            AdamSpec => "m",
            _ => null,
        };
        double shrinkNumerator = 0, shrinkDenominator = 0, rateNumerator = 0, rateDenominator = 0;
        foreach (var name in parameters)
        {
            if (step.State.At(TensorKind.Parameter, name, t - 1) is not { } before || r.Find(TensorKind.Parameter, name) is not { } after
                || r.Find(TensorKind.ParameterGradient, name) is not { } gradient)
                return null;
            var p = before.Data;
            var g = gradient.Data;
            double[] update;
            double[]? taken = null; // g + r p as the first slot took it
            switch (optimizer)
            {
                case SgdSpec sgd when slot is not null:
                    if (SlotPair(step, r, name, slot, p.Length) is not var (vBefore, vAfter)) return null;
                    update = [.. vAfter.Select(v => sgd.LearningRate * v)];
                    taken = [.. vAfter.Select((v, i) => v - sgd.Momentum * vBefore[i])];
                    break;
                case SgdSpec sgd:
                    update = [.. g.Select(x => sgd.LearningRate * x)];
                    break;
                case AdamSpec adam:
                    if (SlotPair(step, r, name, "m", p.Length) is not var (mBefore, m) || r.Find(TensorKind.OptimizerSlot, name + "/v") is not { } v)
                        return null;
                    int count = r.Find(TensorKind.OptimizerStep) is { } traced ? (int)traced.Data[0] : t;
                    if (count < 1) return null;
                    var c = adam.ConstantsAt(count);
                    update = new double[p.Length];
                    for (int i = 0; i < p.Length; i++)
                        update[i] = adam.EpsilonForm == EpsilonForm.SqrtVHat
                            ? adam.LearningRate * (m[i] / c.Correction1) / (Math.Sqrt(v.Data[i] / c.Correction2) + adam.Eps)
                            : adam.LearningRate * Math.Sqrt(c.Correction2) / c.Correction1 * m[i] / (Math.Sqrt(v.Data[i]) + adam.Eps);
                    taken = [.. m.Select((x, i) => (x - c.Decay1 * mBefore[i]) / c.Scale1)];
                    break;
                default:
                    return null;
            }
            for (int i = 0; i < p.Length; i++)
            {
                shrinkNumerator += p[i] * (p[i] - after.Data[i] - update[i]);
                shrinkDenominator += p[i] * p[i];
                if (taken is null) continue;
                rateNumerator += p[i] * (taken[i] - g[i]);
                rateDenominator += p[i] * p[i];
            }
        }
        if (shrinkDenominator == 0) return null;
        return new DecayObservation(t, parameters[0], slot is null ? null : parameters[0] + "/" + slot, shrinkNumerator / shrinkDenominator,
            slot is null ? null : rateNumerator / rateDenominator);
    }

    /// <summary>A slot before the step (zeros before the first update when the trace holds none) and after it.</summary>
    private static (double[] Before, double[] After)? SlotPair(WalkStep step, StepRecord r, string parameter, string slot, int length)
    {
        string site = parameter + "/" + slot;
        if (r.Find(TensorKind.OptimizerSlot, site) is not { } after) return null;
        var before = step.State.At(TensorKind.OptimizerSlot, site, r.Step - 1)?.Data ?? (r.Step == 1 ? new double[length] : null);
        return before is null ? null : (before, after.Data);
    }

    /// <summary>
    /// Whether <paramref name="fitted"/> is <paramref name="candidate"/> rather than <paramref name="expected"/>: within a
    /// tenth of their distance of the candidate and more than half of it away from the expected value.
    /// </summary>
    public static bool IsRather(double fitted, double candidate, double expected)
    {
        double gap = Math.Abs(candidate - expected);
        return gap > 0 && Math.Abs(fitted - candidate) <= 0.1 * gap && Math.Abs(fitted - expected) > 0.5 * gap;
    }
}
