using Parity.Comparison;
using Parity.Models;
using Parity.Reporting;
using Parity.Specs;

namespace Parity.Diagnostics;

/// <summary>Diagnoses a finished run from its trace directories and turns the findings into report.json records.</summary>
public static class RunDiagnosis
{
    /// <summary>Runs every detector over the traces in <paramref name="traceDirectories"/> (auxiliary envelope runs left out by the caller).</summary>
    /// <param name="spec">The spec the run used.</param>
    /// <param name="graph">Its model.</param>
    /// <param name="reference">Name of the reference backend.</param>
    /// <param name="traceDirectories">One trace directory per diagnosed backend.</param>
    /// <param name="comparisons">Each backend against the reference.</param>
    public static Diagnosis Diagnose(ScenarioSpec spec, ModelGraph graph, string reference, IEnumerable<string> traceDirectories, IReadOnlyList<ComparisonResult> comparisons)
    {
        var traces = new List<BackendTrace>();
        var notes = new List<DetectorNote>();
        foreach (string directory in traceDirectories)
        {
            try
            {
                traces.Add(BackendTrace.Open(directory));
            }
            catch (InvalidDataException e)
            {
                notes.Add(new DetectorNote("trace", e.Message));
            }
        }
        var diagnosis = Diagnoser.Run(new DiagnosisContext(spec, graph, reference, traces, comparisons));
        return notes.Count == 0 ? diagnosis : diagnosis with { Notes = notes.Concat(diagnosis.Notes).ToList() };
    }

    /// <summary><see cref="Diagnose"/>, as the report's <c>findings</c>.</summary>
    public static IReadOnlyList<FindingReport> Findings(ScenarioSpec spec, ModelGraph graph, string reference, IEnumerable<string> traceDirectories,
        IReadOnlyList<ComparisonResult> comparisons) =>
        Diagnose(spec, graph, reference, traceDirectories, comparisons).Findings.Select(ToReport).ToList();

    /// <summary>A finding as report.json writes it; a declared finding carries <c>declaredBy</c> in its evidence.</summary>
    public static FindingReport ToReport(Finding finding)
    {
        var evidence = new Dictionary<string, object?>(finding.Evidence);
        if (finding.DeclaredBy is { } setting) evidence["declaredBy"] = setting;
        return new FindingReport(finding.Cause, finding.Backend, finding.Location?.ToString() ?? "model", finding.Summary, evidence, finding.Hint);
    }
}
