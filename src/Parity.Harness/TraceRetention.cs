using System.Text.Json;
using Parity.IO;
using Parity.Reporting;
using Parity.Running;

namespace Parity.Harness;

/// <summary>Which traces a run keeps once its report is written (<c>--keep-traces</c>).</summary>
public enum TraceRetention
{
    /// <summary>Every trace (the default): a later <c>parity diagnose</c>, baseline approval or export can read them all.</summary>
    All,

    /// <summary>
    /// The traces of backends that did not agree (diverged, failed, or stopped), and, when any is kept, those of the
    /// reference and the noise envelopes it was judged with, so <c>parity diagnose</c> still explains it; the traces of
    /// backends that agreed go.
    /// </summary>
    Failed,

    /// <summary>No trace: the reports alone stay (a CI artifact of a few hundred kilobytes).</summary>
    None,
}

/// <summary>
/// Removes the traces a <see cref="TraceRetention"/> does not keep, after every report file is written, and records
/// which went (and why) in <see cref="RecordFile"/> inside the run's trace directory, so a later command that needs one
/// says it was not kept rather than that it is missing. Only directories inside the run directory are removed.
/// </summary>
public static class TraceRetentions
{
    /// <summary>The record of removed traces, under <c>RUN/traces</c>.</summary>
    public const string RecordFile = "removed-traces.json";

    /// <summary>Parses an option value: <c>all</c>, <c>failed</c> or <c>none</c>.</summary>
    public static TraceRetention Parse(string text) => text switch
    {
        "all" => TraceRetention.All,
        "failed" => TraceRetention.Failed,
        "none" => TraceRetention.None,
        _ => throw new UsageException($"--keep-traces: '{text}' is not one of: all, failed, none"),
    };

    /// <summary>
    /// Removes the traces <paramref name="keep"/> drops; returns the backends whose traces were removed. A backend counts
    /// as failing when a comparison of it in <paramref name="report"/> did not agree, its run did not complete, or it is
    /// one of <paramref name="alsoFailing"/> (e.g. a baseline check that did not agree).
    /// </summary>
    public static IReadOnlyList<string> Apply(RunReport report, string runDirectory, TraceRetention keep, IEnumerable<string>? alsoFailing = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (keep == TraceRetention.All) return [];
        var kept = keep == TraceRetention.None ? new HashSet<string>() : Failing(report);
        if (keep == TraceRetention.Failed && alsoFailing is not null) kept.UnionWith(alsoFailing);
        // What a failing backend was judged against: the reference and its noise envelopes.
        foreach (string failing in kept.ToList()) kept.UnionWith(NoiseEnvelope.EnvelopesOf(failing));
        if (kept.Count > 0) kept.Add(report.Reference);
        string root = Path.GetFullPath(runDirectory) + Path.DirectorySeparatorChar;
        var removed = new List<string>();
        foreach (var b in report.Backends.Where(b => !kept.Contains(b.Name)))
        {
            string directory = Path.GetFullPath(Path.Combine(runDirectory, b.Trace));
            if (!directory.StartsWith(root, StringComparison.Ordinal) || !Directory.Exists(directory)) continue;
            Directory.Delete(directory, recursive: true);
            removed.Add(b.Name);
        }
        if (removed.Count > 0)
        {
            string traces = Path.Combine(runDirectory, "traces");
            Directory.CreateDirectory(traces);
            AtomicFile.WriteText(Path.Combine(traces, RecordFile), JsonSerializer.Serialize(new Record(keep.ToString().ToLowerInvariant(), removed)));
        }
        return removed;
    }

    /// <summary>Why the trace of <paramref name="backend"/> is absent from the run at <paramref name="runDirectory"/>, or null when it was not removed on purpose.</summary>
    public static string? WhyAbsent(string runDirectory, string backend)
    {
        string file = Path.Combine(runDirectory, "traces", RecordFile);
        try
        {
            var record = File.Exists(file) ? JsonSerializer.Deserialize<Record>(File.ReadAllText(file)) : null;
            return record?.Removed?.Contains(backend) == true
                ? $"its trace was not kept (--keep-traces {record.Policy}); rerun with --keep-traces all to keep every trace"
                : null;
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static HashSet<string> Failing(RunReport report)
    {
        var failing = report.Comparisons.Where(c => c.Verdict != Verdict.Agree).Select(c => c.Backend).ToHashSet();
        foreach (var b in report.Backends.Where(b => b.Status != RunStatus.Completed && b.Status != RunStatus.Unavailable)) failing.Add(b.Name);
        return failing;
    }

    private sealed record Record(string Policy, IReadOnlyList<string> Removed);
}
