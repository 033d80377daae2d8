using Parity.Reporting;

namespace Parity.Harness;

/// <summary>
/// Where approved baselines live when <c>--baselines</c> is not given: in the user's own repository, beside the specs
/// they guard, at <c>&lt;git root&gt;/parity-baselines/</c>, the git root being the nearest folder at or above the spec's
/// folder that holds <c>.git</c>; outside a git work tree, <c>parity-baselines/</c> beside the spec.
/// </summary>
public static class BaselineLocation
{
    /// <summary>The folder name of the default baseline root.</summary>
    public const string FolderName = "parity-baselines";

    /// <summary>The default baseline root for <paramref name="specOrDirectory"/> (a spec file or a directory of specs).</summary>
    public static string For(string specOrDirectory)
    {
        ArgumentNullException.ThrowIfNull(specOrDirectory);
        string full = Path.GetFullPath(specOrDirectory);
        string start = Directory.Exists(full) ? full : Path.GetDirectoryName(full) ?? full;
        return Path.Combine(GitRoot(start) ?? start, FolderName);
    }

    /// <summary>
    /// The default baseline root for the run in <paramref name="runDirectory"/> (<c>approve</c>): that of the spec its
    /// report.json names, else that of the run directory itself.
    /// </summary>
    public static string ForRun(string runDirectory)
    {
        ArgumentNullException.ThrowIfNull(runDirectory);
        string report = Path.Combine(runDirectory, "report.json");
        string? spec = null;
        try
        {
            if (File.Exists(report)) spec = ReportWriter.ReadJson(report).Scenario.SpecPath;
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidDataException or IOException)
        {
            // approve itself reports a damaged report.json, with its path; the default only falls back here.
        }
        return For(!string.IsNullOrEmpty(spec) && File.Exists(spec) ? spec : runDirectory);
    }

    private static string? GitRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            // A work tree holds .git as a folder; a linked worktree or a submodule as a file pointing to it.
            string git = Path.Combine(dir.FullName, ".git");
            if (Directory.Exists(git) || File.Exists(git)) return dir.FullName;
        }
        return null;
    }
}
