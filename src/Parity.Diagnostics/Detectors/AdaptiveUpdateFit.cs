using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// The RMSprop and Adagrad update p_t - p_{t-1} of each identifiable parameter recomputed in float64 from the backend's
/// own traced gradient and optimizer state under two optimizer settings (the spec's and one alternative), for the
/// detectors of their conventions (docs/conventions.md, "RMSprop" and "Adagrad"). Before update 1 the state is each
/// setting's own start (<see cref="OptimizerSpec.SlotInitialValue"/>); later it is the backend's traced slots.
/// </summary>
internal static class AdaptiveUpdateFit
{
    /// <summary>How one checked step fits: the worst relative error of each setting over the parameters, where the spec's is worst.</summary>
    /// <param name="Step">The train step.</param>
    /// <param name="Parameter">The parameter with the spec's worst fit.</param>
    /// <param name="SpecError">The spec's worst relative error.</param>
    /// <param name="AlternativeError">The alternative's relative error on that parameter.</param>
    /// <param name="Gradient">That parameter's traced gradient.</param>
    /// <param name="Update">That parameter's traced update.</param>
    /// <param name="Tolerance">The largest relative error that fits at the record's dtype.</param>
    public sealed record Verdict(int Step, string Parameter, double SpecError, double AlternativeError, double[] Gradient, double[] Update, double Tolerance)
    {
        /// <summary>True when the alternative fits the traced update and the spec's setting does not, by a clear margin.</summary>
        public bool AlternativeFits => AlternativeError <= Tolerance && AlternativeError * 10 < SpecError;
    }

    /// <summary>
    /// The first train step from the one the comparison first diverges on where the spec's setting does not fit the
    /// traced update (null when it fits every checked step, or nothing is comparable). With <paramref name="firstUpdateOnly"/>
    /// only update 1 is considered: a starting value shows there or not at all.
    /// </summary>
    public static Verdict? FirstMisfit(DiagnosisContext context, BackendTrace backend, OptimizerSpec spec, OptimizerSpec alternative, bool firstUpdateOnly)
    {
        int first = context.FirstStepToCheck(backend.Name);
        if (firstUpdateOnly && first != 1) return null;
        var parameters = context.Graph.Parameters.Where(p => p.Identifiable).ToList();
        foreach (var step in TraceWalk.Steps(backend.Trace))
        {
            var r = step.Record;
            if (r.Phase != RecordPhase.Train || r.Step < first) continue;
            int t = r.Step;
            if (t >= first + Fit.MaxCheckedSteps || (firstUpdateOnly && t > 1)) return null;
            Verdict? worst = null;
            foreach (var p in parameters)
            {
                if (r.Find(TensorKind.ParameterGradient, p.Name) is not { } g || step.State.At(TensorKind.Parameter, p.Name, t - 1) is not { } before
                    || r.Find(TensorKind.Parameter, p.Name) is not { } after) continue;
                var actual = new double[g.Data.Length];
                for (int i = 0; i < actual.Length; i++) actual[i] = after.Data[i] - before.Data[i];
                if (actual.All(u => u == 0)) continue;
                if (Predict(spec, g.Data, step.State, p.Name, t) is not { } specUpdate || Predict(alternative, g.Data, step.State, p.Name, t) is not { } altUpdate) continue;
                double specError = Fit.RelativeError(specUpdate, actual);
                if (worst is null || specError > worst.SpecError)
                    worst = new Verdict(t, p.Name, specError, Fit.RelativeError(altUpdate, actual), g.Data, actual, Tolerance(r));
            }
            if (worst is null) continue;
            if (worst.SpecError > worst.Tolerance) return worst;
        }
        return null;
    }

    /// <summary>
    /// The update is a small difference of two rounded parameters: judged with a looser slack than a tensor (as the
    /// Adam epsilon form is).
    /// </summary>
    private static double Tolerance(StepRecord record) => BatchNormTrace.DTypeOf(record) == DType.Float32 ? 1e-3 : 1e-8;

    /// <summary>
    /// The starting value of the mean square (RMSprop) or accumulator (Adagrad) that update 1 implies, element by element
    /// from d = -lr g / u (update 1 has no momentum history), the median over the elements with a nonzero gradient.
    /// </summary>
    public static double FittedStart(OptimizerSpec spec, double[] g, double[] update)
    {
        var starts = new List<double>();
        for (int i = 0; i < g.Length; i++)
        {
            if (g[i] == 0 || update[i] == 0) continue;
            double d = -spec.LearningRate * g[i] / update[i];
            var (eps, inside) = spec switch
            {
                RmspropSpec r => (r.Eps, r.EpsilonPlacement == EpsilonPlacement.Inside),
                AdagradSpec a => (a.Eps, a.EpsilonPlacement == EpsilonPlacement.Inside),
                _ => throw new ArgumentException($"optimizer '{spec.Type}' has no starting value", nameof(spec)),
            };
            double s = inside ? d * d - eps : (d - eps) * (d - eps);
            starts.Add(spec switch
            {
                RmspropSpec r => (s + (r.Centered ? Math.Pow((1 - r.Rho) * g[i], 2) : 0) - (1 - r.Rho) * g[i] * g[i]) / r.Rho,
                _ => s - g[i] * g[i],
            });
        }
        return starts.Count == 0 ? double.NaN : Fit.Median(starts);
    }

    /// <summary>p_t - p_{t-1} under <paramref name="spec"/>, or null when a slot it needs was not traced.</summary>
    private static double[]? Predict(OptimizerSpec spec, double[] g, StateSnapshot state, string parameter, int t)
    {
        var slots = new Dictionary<string, double[]>();
        foreach (string slot in spec.Slots)
        {
            if (t == 1)
                slots[slot] = Enumerable.Repeat(spec.SlotInitialValue(slot), g.Length).ToArray();
            else if (state.At(TensorKind.OptimizerSlot, TraceLayout.SlotSite(parameter, slot), t - 1) is { } traced)
                slots[slot] = traced.Data;
            else
                return null;
        }
        var u = new double[g.Length];
        for (int i = 0; i < g.Length; i++)
            u[i] = spec switch
            {
                RmspropSpec r => Rmsprop(r, g[i], slots, i),
                AdagradSpec a => -a.LearningRate * g[i] / Denominator(slots["accumulator"][i] + g[i] * g[i], a.Eps, a.EpsilonPlacement),
                _ => throw new ArgumentException($"optimizer '{spec.Type}' is not RMSprop or Adagrad", nameof(spec)),
            };
        return u;
    }

    private static double Rmsprop(RmspropSpec r, double g, Dictionary<string, double[]> slots, int i)
    {
        double v = r.Rho * slots["meanSquare"][i] + (1 - r.Rho) * g * g;
        if (r.Centered)
        {
            double a = r.Rho * slots["meanGradient"][i] + (1 - r.Rho) * g;
            v -= a * a;
        }
        double step = g / Denominator(v, r.Eps, r.EpsilonPlacement);
        return -r.LearningRate * (r.Momentum > 0 ? r.Momentum * slots["momentum"][i] + step : step);
    }

    private static double Denominator(double s, double eps, EpsilonPlacement placement) =>
        placement == EpsilonPlacement.Inside ? Math.Sqrt(s + eps) : Math.Sqrt(s) + eps;
}
