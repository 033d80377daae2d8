using Parity.Backends;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>shared-stateful-layer</c>: one batchnorm instance at two or more call sites (static, from the spec) whose
/// running statistics the backend updated once per call (dynamic: the traced running mean fits the k-update
/// prediction run_t = (1-m)^k run_{t-1} + sum_j m (1-m)^(k-j) mean_j and not a single update with any one call's
/// statistics). Train mode normalizes each call with its own batch statistics and looks healthy; eval mode normalizes
/// every call with the one blended running estimate, which is right for neither layer (seed 000, Chainer
/// [C], docs/conventions.md section 5). Reported for every backend that ran the model, agreeing or not: it is a
/// property of the model. Evidence: the eval-mode vs train-mode accuracy and loss gap, the blend weights, and how
/// far the running mean sits from each call site's batch mean.
/// </summary>
public sealed class SharedStatefulLayerDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.SharedStatefulLayer;

    /// <inheritdoc />
    public bool IsDeclaredBy(ConventionMismatch mismatch) => mismatch.Setting.Contains("calls", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        foreach (var bn in context.Graph.BatchNorms.Where(b => context.Graph.Shared.Contains(b.Name)))
        {
            var reference = context.ReferenceTrace is { } r ? Check(context, r, bn) : null;
            foreach (var backend in context.Backends)
            {
                var finding = backend == context.ReferenceTrace ? reference! : Check(context, backend, bn);
                // The same behaviour as the reference's is a property of the model; another one is this backend's own
                // difference, and it explains its divergence (updated once per step where the reference updates per call).
                object? updates = finding.Evidence["updatesPerStep"], referenceUpdates = reference?.Evidence["updatesPerStep"];
                bool same = reference is null || backend == context.ReferenceTrace || Equals(updates, referenceUpdates);
                yield return same ? finding with { IsModelProperty = true }
                    : finding with { Summary = $"{finding.Summary}; the reference updates it {referenceUpdates}" };
            }
        }
    }

    private Finding Check(DiagnosisContext context, BackendTrace backend, BatchNormSpec bn)
    {
        var calls = BatchNormTrace.CallsOf(context.Graph, bn.Name);
        double m = bn.Momentum;
        double? blendError = null, singleError = null;
        int checkedSteps = 0;
        double trainAccuracy = double.NaN, trainLoss = double.NaN, evalAccuracy = double.NaN, evalLoss = double.NaN;
        int evalStep = 0;
        double[]? lastDistances = null;
        FindingLocation? location = null;
        // From the step the backend first diverges at: a convention that changes at step K is tested at step K.
        int first = context.FirstStepToCheck(backend.Name);
        foreach (var step in TraceWalk.Steps(backend.Trace))
        {
            var r = step.Record;
            if (r.Step < first) continue;
            if (r.Phase == RecordPhase.Eval)
            {
                if (r.Find(TensorKind.EvalAccuracy) is { } ea) evalAccuracy = ea.Data[0];
                if (r.Find(TensorKind.EvalLoss) is { } el) evalLoss = el.Data[0];
                evalStep = r.Step;
                continue;
            }
            if (r.Find(TensorKind.TrainAccuracy) is { } ta) trainAccuracy = ta.Data[0];
            if (r.Find(TensorKind.Loss) is { } tl) trainLoss = tl.Data[0];
            if (r.Find(TensorKind.RunningMean, bn.Name) is not { } actual) continue;
            var stats = calls.Select(c => BatchNormTrace.BatchStatistics(r, context.Graph, c)).ToList();
            if (stats.Any(s => s is null)) continue;
            var means = stats.Select(s => s!.Value.Mean).ToList();
            lastDistances = means.Select(mean => MeanAbsoluteDistance(actual.Data, mean)).ToArray();
            if (checkedSteps >= Fit.MaxCheckedSteps || step.State.At(TensorKind.RunningMean, bn.Name, r.Step - 1) is not { } before) continue;
            checkedSteps++;
            double blend = Fit.RelativeError(BatchNormTrace.Predict(before.Data, means, m), actual.Data);
            double single = means.Min(mean => Fit.RelativeError(BatchNormTrace.Predict(before.Data, [mean], m), actual.Data));
            blendError = Math.Max(blendError ?? 0, blend);
            singleError = Math.Min(singleError ?? double.PositiveInfinity, single);
            location ??= new FindingLocation(r.Step, r.Phase, new TensorKey(TensorKind.RunningMean, bn.Name));
        }
        var dtype = backend.Trace.Header.DType == "float32" ? Tensors.DType.Float32 : Tensors.DType.Float64;
        string updates = blendError is not double b ? "not traced"
            : b <= Fit.Tolerance(dtype) && singleError > Fit.Tolerance(dtype) ? $"{calls.Count} per step"
            : singleError <= Fit.Tolerance(dtype) ? "1 per step" : "neither 1 nor one per call";
        // Blend weights of one step's k updates: call j's statistic keeps m (1-m)^(k-j).
        var weights = calls.Select((c, j) => Fit.Round(m * Math.Pow(1 - m, calls.Count - 1 - j))).ToList();
        var evidence = new Dictionary<string, object?>
        {
            ["instance"] = bn.Name,
            ["callSites"] = string.Join(", ", calls.Select(c => c.Id)),
            ["updatesPerStep"] = updates,
            ["blendWeights"] = string.Join(", ", calls.Select((c, j) => $"{c.Id}: {weights[j]}")),
            ["relativeErrorOneUpdatePerCall"] = blendError is double be ? Fit.Round(be) : null,
            ["relativeErrorSingleUpdate"] = singleError is double se ? Fit.Round(se) : null,
            ["trainAccuracy"] = Fit.Round(trainAccuracy),
            ["evalAccuracy"] = Fit.Round(evalAccuracy),
            ["accuracyGapTrainMinusEval"] = Fit.Round(trainAccuracy - evalAccuracy),
            ["trainLoss"] = Fit.Round(trainLoss),
            ["evalLoss"] = Fit.Round(evalLoss),
            ["evalStep"] = evalStep,
        };
        if (lastDistances is not null)
            for (int j = 0; j < calls.Count; j++) evidence[$"runningMeanDistanceTo:{calls[j].Id}"] = Fit.Round(lastDistances[j]);
        return new Finding(Cause, backend.Name, location,
            $"batchnorm '{bn.Name}' is called at {calls.Count} sites ({evidence["callSites"]}); its running statistics are updated {updates}, a blend of the sites' batch statistics that eval mode then applies to every site (eval accuracy {Fit.Round(evalAccuracy)} vs train {Fit.Round(trainAccuracy)})",
            evidence,
            "Give every call site its own batchnorm instance (separate running statistics); share only stateless layers.");
    }

    private static double MeanAbsoluteDistance(double[] a, double[] b)
    {
        double d = 0;
        for (int i = 0; i < a.Length; i++) d += Math.Abs(a[i] - b[i]);
        return a.Length == 0 ? 0 : d / a.Length;
    }
}
