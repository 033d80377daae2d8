using Parity.Running;

namespace Parity.Comparison;

/// <summary>
/// One backend judged against the reference, two ways: the step checks (each checked step replayed by the reference from
/// the backend's own state before it: strict, nothing inherited across steps; they decide the verdict) and the
/// free-running trajectory (how far the whole training drifts; information, or the verdict when no step could be
/// replayed).
/// </summary>
/// <param name="Backend">The backend's name in the run.</param>
/// <param name="StepChecks">The step checks, or null when none could run (see <paramref name="StepCheckGap"/>).</param>
/// <param name="Trajectory">The free-running comparison against the reference's trajectory.</param>
/// <param name="StepCheckGap">Why the backend was not step-checked, or what the step checks could not replay; null when nothing was left out.</param>
public sealed record BackendJudgement(string Backend, ComparisonResult? StepChecks, ComparisonResult Trajectory, string? StepCheckGap)
{
    /// <summary>The comparison that decides the backend's verdict: the step checks when they ran, else the trajectory.</summary>
    public ComparisonResult Deciding => StepChecks ?? Trajectory;

    /// <summary>The backend's verdict.</summary>
    public Verdict Verdict => Deciding.Verdict;

    /// <summary>Tensors excused by the within-step ReLU kink rule in the step checks.</summary>
    public int KinkExcused => StepChecks?.Checks.Count(c => c.Status == CheckStatus.KinkInherited) ?? 0;
}
