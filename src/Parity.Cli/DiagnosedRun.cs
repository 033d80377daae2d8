using System.Text.Json;
using Parity.Harness;
using Parity.IO;
using Parity.Reporting;
using Parity.Tracing;

namespace Parity.Cli;

/// <summary>
/// What <c>parity diagnose</c> reads from a run directory: report.json when the run finished; otherwise the note in
/// the run's lock file (<see cref="RunManifest"/>) and the traces it left, as after a <c>kill -9</c> of the run.
/// </summary>
/// <param name="Scenario">Scenario name.</param>
/// <param name="SpecPath">The spec the run read, or null.</param>
/// <param name="SpecHash">Hash of the spec as run.</param>
/// <param name="Reference">The reference backend.</param>
/// <param name="Backends">Each backend's entry; trace paths are relative to the run directory and stay inside it.</param>
/// <param name="Interrupted">Why the run has no report (its process died), or null for a finished run.</param>
internal sealed record DiagnosedRun(string Scenario, string? SpecPath, string SpecHash, string Reference, IReadOnlyList<BackendReport> Backends, string? Interrupted)
{
    /// <summary>Reads the run in <paramref name="runDirectory"/>; throws when it is neither finished nor interrupted.</summary>
    public static DiagnosedRun Read(string runDirectory)
    {
        string reportPath = Path.Combine(runDirectory, "report.json");
        if (File.Exists(reportPath))
        {
            RunReport report;
            try
            {
                report = ReportWriter.ReadJson(reportPath);
            }
            catch (JsonException e)
            {
                throw new UsageException($"{reportPath}: unreadable report: {e.Message}");
            }
            return new DiagnosedRun(report.Scenario.Name, report.Scenario.SpecPath, report.Scenario.SpecHash, report.Reference, report.Backends, null);
        }
        if (!Directory.Exists(runDirectory)) throw new UsageException($"{runDirectory}: no such run directory");
        RunManifest? manifest;
        try
        {
            manifest = RunManifest.Read(runDirectory);
        }
        catch (DirectoryInUseException)
        {
            throw new UsageException($"{runDirectory}: a parity run is still writing into it; diagnose it once that run has ended");
        }
        if (manifest is null) throw new UsageException($"{runDirectory}: no report.json (give a directory written by 'parity run')");

        string traces = Path.Combine(runDirectory, "traces");
        var backends = new List<BackendReport>();
        foreach (string dir in Directory.Exists(traces) ? Directory.GetDirectories(traces).Order(StringComparer.Ordinal).ToArray() : [])
        {
            var h = TraceReader.Open(dir).Header;
            bool auxiliary = h.Backend != manifest.Reference && !manifest.Backends.Contains(h.Backend);
            backends.Add(new BackendReport(h.Backend, h.DType, h.Status == RunStatus.Running ? RunStatus.Interrupted : h.Status, h.Message, h.StepsCompleted, h.Seconds,
                h.Runtime, h.Mismatches, Path.GetRelativePath(runDirectory, dir), auxiliary));
        }
        // The reference runs first: its trace is there unless the run died before any backend started.
        backends.Sort((a, b) => (b.Name == manifest.Reference).CompareTo(a.Name == manifest.Reference));
        string why = $"status interrupted: the run (process {manifest.Pid}, started {manifest.StartedUtc:yyyy-MM-dd HH:mm:ss} UTC) ended without "
            + $"writing report.json (killed or crashed); diagnosing the {backends.Count} trace(s) it left";
        return new DiagnosedRun(manifest.Scenario, manifest.SpecPath, manifest.SpecHash, manifest.Reference, backends, why);
    }

    /// <summary>
    /// Opens the trace of <paramref name="backend"/> under <paramref name="runDirectory"/> and checks that it is the
    /// one the run wrote: same backend, scenario, spec hash and status. A trace that says otherwise was edited or
    /// mixed up: <see cref="InvalidDataException"/>.
    /// </summary>
    public TraceReader OpenTrace(string runDirectory, BackendReport backend)
    {
        string directory = Path.Combine(runDirectory, backend.Trace);
        if (!Directory.Exists(directory))
            throw new InvalidDataException($"{runDirectory}: the trace of backend '{backend.Name}' is missing ({directory})"
                + (TraceRetentions.WhyAbsent(runDirectory, backend.Name) is { } why ? ": " + why : ""));
        var trace = TraceReader.Open(directory);
        var h = trace.Header;
        var status = h.Status == RunStatus.Running && Interrupted is not null ? RunStatus.Interrupted : h.Status;
        foreach (var (field, inTrace, inRun) in new[] { ("backend", h.Backend, backend.Name), ("scenario", h.Scenario, Scenario), ("specHash", h.SpecHash, SpecHash), ("status", status.Name(), backend.Status.Name()) })
        {
            if (inTrace != inRun)
                throw new InvalidDataException($"{Path.Combine(directory, TraceFiles.Header)}: {field} '{inTrace}', but the run says '{inRun}' (edited or mixed up)");
        }
        return trace;
    }
}
