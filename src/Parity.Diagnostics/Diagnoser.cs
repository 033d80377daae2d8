using Parity.Running;
using Parity.Diagnostics.Detectors;

namespace Parity.Diagnostics;

/// <summary>A detector that failed: its cause is left undecided, the run goes on.</summary>
/// <param name="Cause">The detector's cause id.</param>
/// <param name="Message">What went wrong.</param>
public sealed record DetectorNote(string Cause, string Message);

/// <summary>The findings of every detector, and notes for the detectors that could not decide.</summary>
/// <param name="Findings">Findings in detector order.</param>
/// <param name="Notes">One per detector that threw.</param>
public sealed record Diagnosis(IReadOnlyList<Finding> Findings, IReadOnlyList<DetectorNote> Notes);

/// <summary>
/// Runs every detector over a context. A detector that throws becomes a <see cref="DetectorNote"/>, never a failed
/// run. <c>unexplained-divergence</c> runs last and sees the others' findings. Findings a backend's declared
/// convention mismatch accounts for are marked with <see cref="Finding.DeclaredBy"/>.
/// </summary>
public static class Diagnoser
{
    /// <summary>Every detector, in the order of docs/causes.md; <see cref="UnexplainedDivergenceDetector"/> last.</summary>
    public static IReadOnlyList<IDetector> Detectors { get; } =
    [
        new SharedStatefulLayerDetector(), new BnMomentumConventionDetector(), new BnVarianceEstimatorDetector(), new BnEpsilonDetector(),
        new AdamEpsilonFormDetector(), new RmspropEpsilonPlacementDetector(), new RmspropMeanSquareInitDetector(), new AdagradInitialAccumulatorDetector(),
        new RunningStatsNotUpdatedDetector(), new SlowRunningStatsWarmupDetector(), new TrainEvalModeDetector(),
        new WeightDecayCouplingDetector(), new L2FactorOfTwoDetector(), new DecoupledDecayLearningRateDetector(),
        new MomentumFormDetector(), new ClippingScopeDetector(), new ScheduleCountDetector(),
        new LeakyReluSlopeDetector(), new GeluApproximationDetector(), new DropoutKeepProbabilityDetector(), new LabelSmoothingFormDetector(), new LossReductionDetector(), new InitialWeightsMismatchDetector(), new WeightLayoutDetector(), new NanInfDetector(), new UnexplainedDivergenceDetector(),
    ];

    /// <summary>
    /// Runs <paramref name="detectors"/> (all of them when null) over <paramref name="context"/>, up to <paramref name="jobs"/> at
    /// a time; <see cref="UnexplainedDivergenceDetector"/> after every other. Findings keep the detectors' order.
    /// </summary>
    public static Diagnosis Run(DiagnosisContext context, IEnumerable<IDetector>? detectors = null, int jobs = 1)
    {
        ArgumentNullException.ThrowIfNull(context);
        var all = (detectors ?? Detectors).ToList();
        var first = all.Where(d => d is not UnexplainedDivergenceDetector).ToList();
        var outcomes = Lanes.Map(first, jobs, (detector, _) => Detect(detector, context, []));
        var findings = outcomes.SelectMany(o => o.Findings).ToList();
        var notes = outcomes.SelectMany(o => o.Notes).ToList();
        foreach (var last in all.Except(first))
        {
            var (found, note) = Detect(last, context, findings);
            findings.AddRange(found);
            notes.AddRange(note);
        }
        return new Diagnosis(findings, notes);
    }

    // One detector's findings (marked where a declared mismatch accounts for them), or the note saying why it could not judge.
    private static (IReadOnlyList<Finding> Findings, IReadOnlyList<DetectorNote> Notes) Detect(IDetector detector, DiagnosisContext context, IReadOnlyList<Finding> earlier)
    {
        try
        {
            // Materialized here so an exception thrown while enumerating is caught here too.
            var found = detector.Detect(new DiagnosisContext(context.Spec, context.Graph, context.Reference, context.Backends, context.Judgements) { Earlier = earlier, Plan = context.Plan }).ToList();
            return (found.Select(f => MarkDeclared(detector, f, context)).ToList(), []);
        }
        // A damaged trace is an input error for the whole diagnosis, never one detector's doubt.
        catch (Exception e) when (e is not OutOfMemoryException and not InvalidDataException)
        {
            return ([], [new DetectorNote(detector.Cause, $"{e.GetType().Name}: {e.Message}")]);
        }
    }

    private static Finding MarkDeclared(IDetector detector, Finding finding, DiagnosisContext context)
    {
        var backend = context.TraceOf(finding.Backend);
        var declared = backend?.Mismatches.FirstOrDefault(detector.IsDeclaredBy);
        return declared is null ? finding : finding with { DeclaredBy = declared.Setting };
    }
}
