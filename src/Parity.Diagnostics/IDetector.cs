using Parity.Backends;

namespace Parity.Diagnostics;

/// <summary>
/// One known cause of a divergence, tested numerically on the traces (docs/causes.md). A detector reads;
/// it never runs a backend and never changes a trace. Adding a cause is adding one file under Detectors/
/// and one line in <see cref="Diagnoser.Detectors"/>; the cause's declaring settings live in its detector (<see cref="IsDeclaredBy"/>).
/// </summary>
public interface IDetector
{
    /// <summary>The stable cause id this detector reports, e.g. <c>bn-momentum-convention</c>.</summary>
    string Cause { get; }

    /// <summary>The findings whose hypothesis the traces confirm; empty when the cause does not fit.</summary>
    IEnumerable<Finding> Detect(DiagnosisContext context);

    /// <summary>
    /// True when a backend that declared <paramref name="mismatch"/> is expected to show this cause: the finding is then
    /// marked as declared (<see cref="Finding.DeclaredBy"/>), an expected difference rather than a defect.
    /// </summary>
    bool IsDeclaredBy(ConventionMismatch mismatch) => false;
}
