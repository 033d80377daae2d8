namespace Parity.Diagnostics;

/// <summary>
/// One known cause of a divergence, tested numerically on the traces (docs/causes.md). A detector reads;
/// it never runs a backend and never changes a trace. Adding a cause is adding one file under Detectors/
/// and one line in <see cref="Diagnoser.Detectors"/>.
/// </summary>
public interface IDetector
{
    /// <summary>The stable cause id this detector reports, e.g. <c>bn-momentum-convention</c>.</summary>
    string Cause { get; }

    /// <summary>The findings whose hypothesis the traces confirm; empty when the cause does not fit.</summary>
    IEnumerable<Finding> Detect(DiagnosisContext context);
}
