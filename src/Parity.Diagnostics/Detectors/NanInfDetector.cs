using Parity.Tracing;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>nan-inf</c>: the first tensor of a trace, in production order (forward by call, loss, backward, running
/// statistics, parameters), that holds a NaN or an infinity. Every tensor before it is finite, so this is where the
/// non-finite value was produced, not where it was inherited.
/// </summary>
public sealed class NanInfDetector : IDetector
{
    /// <inheritdoc />
    public string Cause => CauseIds.NanInf;

    /// <inheritdoc />
    public IEnumerable<Finding> Detect(DiagnosisContext context)
    {
        foreach (var backend in context.Backends)
            if (First(backend) is { } finding) yield return finding;
    }

    private Finding? First(BackendTrace backend)
    {
        TraceEntry? previous = null;
        foreach (var r in backend.Trace.Records())
        {
            foreach (var e in r.Entries)
            {
                if (!Fit.AllFinite(e.Value))
                {
                    int nan = e.Value.Data.Count(double.IsNaN), inf = e.Value.Data.Count(double.IsInfinity);
                    int index = Array.FindIndex(e.Value.Data, v => !double.IsFinite(v));
                    return new Finding(Cause, backend.Name, new FindingLocation(r.Step, r.Phase, e.Key),
                        $"first non-finite value: {e.Key} at step {r.Step} ({r.Phase.ToString().ToLowerInvariant()}) holds {nan} NaN and {inf} infinite of {e.Value.Length} elements",
                        new Dictionary<string, object?>
                        {
                            ["tensor"] = e.Key.ToString(),
                            ["nanCount"] = nan,
                            ["infCount"] = inf,
                            ["elements"] = e.Value.Length,
                            ["firstIndex"] = index,
                            ["firstValue"] = e.Value.Data[index].ToString(System.Globalization.CultureInfo.InvariantCulture),
                            ["lastFiniteTensorBefore"] = previous?.Key.ToString(),
                        },
                        "Look at the operation producing this tensor from finite inputs: a division by a zero variance (eps too small), log of a zero probability (use log-softmax), or an exploding update (lower the learning rate).");
                }
                previous = e;
            }
        }
        return null;
    }
}
