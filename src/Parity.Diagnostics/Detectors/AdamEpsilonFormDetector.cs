using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>adam-epsilon-form</c>: each traced update p_t - p_{t-1} of an identifiable parameter is recomputed from the
/// backend's own traced moments m_t, v_t and update count (rebuilt from its traced gradients when it traces no optimizer
/// slots), from the step its verdict first diverges on, in both forms (docs/conventions.md section 3): sqrtVHat,
/// lr m_hat / (sqrt(v_hat) + eps) [P5, JS]; epsilonHat, lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps) [K2, T5, C]. The
/// two differ where sqrt(v_hat) is comparable to eps / sqrt(1-b2^t), so the elements with the smallest gradients decide.
/// </summary>
public sealed class AdamEpsilonFormDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.AdamEpsilonForm;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) => mismatch.Setting.EndsWith("epsilonForm", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        if (context.Spec.Optimizer is not AdamSpec adam) yield break;
        foreach (var backend in context.Backends)
            if (Check(context, backend, adam) is { } finding) yield return finding;
    }

    private Finding? Check(DiagnosisContext context, BackendTrace backend, AdamSpec adam)
    {
        // Identifiable parameters only: a bias that feeds a batchnorm is left out of the verdict, so a finding there would
        // point at a tensor the report does not judge.
        var parameters = context.Graph.Parameters.Where(p => p.Identifiable).ToList();
        // Moments rebuilt from the traced gradients, for traces without optimizer slots; null once a gradient is missing.
        Dictionary<string, (double[] M, double[] V)>? rebuilt = parameters.ToDictionary(p => p.Name,
            p => (new double[p.Shape.Aggregate(1, (a, b) => a * b)], new double[p.Shape.Aggregate(1, (a, b) => a * b)]));
        var other = adam.EpsilonForm == EpsilonForm.SqrtVHat ? EpsilonForm.EpsilonHat : EpsilonForm.SqrtVHat;
        int first = context.FirstStepToCheck(backend.Name);
        foreach (var step in TraceWalk.Steps(backend.Trace))
        {
            var r = step.Record;
            if (r.Phase != RecordPhase.Train) continue;
            int t = r.Step;
            if (rebuilt is not null && parameters.Any(p => r.Find(TensorKind.ParameterGradient, p.Name) is null)) rebuilt = null;
            if (rebuilt is not null)
                foreach (var p in parameters)
                {
                    var g = r.Find(TensorKind.ParameterGradient, p.Name)!.Data;
                    var (mp, vp) = rebuilt[p.Name];
                    for (int i = 0; i < g.Length; i++)
                    {
                        mp[i] = adam.Beta1 * mp[i] + (1 - adam.Beta1) * g[i];
                        vp[i] = adam.Beta2 * vp[i] + (1 - adam.Beta2) * g[i] * g[i];
                    }
                }
            if (t < first) continue;
            if (t >= first + Fit.MaxCheckedSteps) return null;
            // The update count the backend reports (its own t), else the step.
            int count = r.Find(TensorKind.OptimizerStep) is { } traced ? (int)traced.Data[0] : t;
            double canonicalWorst = 0, alternativeWorst = double.PositiveInfinity;
            string? site = null;
            bool comparable = false;
            foreach (var p in parameters)
            {
                // The moments after this step: the backend's own traced slots, else the rebuilt ones.
                var moments = r.Find(TensorKind.OptimizerSlot, p.Name + "/m") is { } tm && r.Find(TensorKind.OptimizerSlot, p.Name + "/v") is { } tv
                    ? (tm.Data, tv.Data)
                    : rebuilt?[p.Name] is { } own ? (own.M, own.V) : ((double[], double[])?)null;
                if (moments is not var (mp, vp)) continue;
                if (step.State.At(TensorKind.Parameter, p.Name, t - 1) is not { } before || r.Find(TensorKind.Parameter, p.Name) is not { } after) continue;
                var actualUpdate = new double[mp.Length];
                for (int i = 0; i < actualUpdate.Length; i++) actualUpdate[i] = after.Data[i] - before.Data[i];
                if (actualUpdate.All(u => u == 0)) continue;
                comparable = true;
                double canonical = Fit.RelativeError(Update(adam, adam.EpsilonForm, mp, vp, count), actualUpdate);
                double alternative = Fit.RelativeError(Update(adam, other, mp, vp, count), actualUpdate);
                if (canonical > canonicalWorst)
                {
                    canonicalWorst = canonical;
                    alternativeWorst = alternative;
                    site = p.Name;
                }
            }
            if (!comparable) continue;
            // The update is a small difference of two rounded parameters: judge it with the looser float32 slack.
            var dtype = BatchNormTrace.DTypeOf(r);
            double tolerance = dtype == Tensors.DType.Float32 ? 1e-3 : 1e-8;
            if (canonicalWorst <= tolerance) continue;
            if (alternativeWorst <= tolerance && alternativeWorst * 10 < canonicalWorst)
                return new Finding(Cause, backend.Name, new FindingLocation(t, RecordPhase.Train, new TensorKey(TensorKind.Parameter, site!)),
                    $"Adam updates follow the {FormName(other)} epsilon form, not the spec's {FormName(adam.EpsilonForm)} (eps {adam.Eps})",
                    new Dictionary<string, object?>
                    {
                        ["specForm"] = FormName(adam.EpsilonForm),
                        ["fittedForm"] = FormName(other),
                        ["eps"] = adam.Eps,
                        ["equivalentEpsAtStep"] = Fit.Round(adam.Eps / Math.Sqrt(1 - Math.Pow(adam.Beta2, count))),
                        ["relativeErrorSpecForm"] = Fit.Round(canonicalWorst),
                        ["relativeErrorOtherForm"] = Fit.Round(alternativeWorst),
                        ["parameter"] = site,
                    },
                    "Set optimizer.epsilonForm to the framework's form (PyTorch, TF.js: sqrtVHat; tf.keras, TF1, Chainer: epsilonHat), or convert eps: eps_pt(t) = eps_hat / sqrt(1 - b2^t) (docs/conventions.md section 3).");
            return null; // the spec's form does not fit, and neither does the other: another cause
        }
        return null;
    }

    /// <summary>The step taken (p_t - p_{t-1}) under <paramref name="form"/>.</summary>
    private static double[] Update(AdamSpec adam, EpsilonForm form, double[] m, double[] v, int t)
    {
        double c1 = 1 - Math.Pow(adam.Beta1, t), c2 = 1 - Math.Pow(adam.Beta2, t);
        var u = new double[m.Length];
        for (int i = 0; i < m.Length; i++)
            u[i] = form == EpsilonForm.SqrtVHat
                ? -adam.LearningRate * (m[i] / c1) / (Math.Sqrt(v[i] / c2) + adam.Eps)
                : -adam.LearningRate * Math.Sqrt(c2) / c1 * m[i] / (Math.Sqrt(v[i]) + adam.Eps);
        return u;
    }

    private static string FormName(EpsilonForm f) => f == EpsilonForm.SqrtVHat ? "sqrtVHat" : "epsilonHat";
}
