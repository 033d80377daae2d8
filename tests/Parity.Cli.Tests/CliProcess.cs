using System.Diagnostics;

namespace Parity.Cli.Tests;

/// <summary>
/// Runs the real CLI (<c>dotnet parity.dll</c>) as a child process: in a working directory of the test's choosing
/// (so a default <c>out/</c> lands where the test looks), with environment variables, and under a time limit after
/// which its process tree is killed (so a hang fails a test instead of the test run, and a crash cannot take the
/// test host with it).
/// </summary>
internal static class CliProcess
{
    public sealed record Result(int Exit, string Out, string Err, bool TimedOut)
    {
        public string All => Out + Err;
    }

    // Planning a spec that should be refused must not depend on how much memory the test machine has.
    private static readonly Dictionary<string, string> Defaults = new() { ["PARITY_MEMORY_BUDGET"] = "2G" };

    public static Result Run(string workingDirectory, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "parity.dll"));
        foreach (string a in args) start.ArgumentList.Add(a);
        foreach (var (k, v) in Defaults.Concat(environment ?? new Dictionary<string, string>())) start.Environment[k] = v;
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        bool exited = process.WaitForExit(timeout);
        if (!exited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        return new Result(exited ? process.ExitCode : -1, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult(), !exited);
    }

    public static Result Run(string workingDirectory, params string[] args) => Run(workingDirectory, TimeSpan.FromSeconds(120), null, args);

    /// <summary>Every file under <paramref name="root"/> with its length and write time; directories as their path only.</summary>
    public static Dictionary<string, (long Length, DateTime Written)> Snapshot(string root) =>
        Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true })
            .ToDictionary(p => p, p => File.Exists(p) ? (new FileInfo(p).Length, File.GetLastWriteTimeUtc(p)) : (-1L, DateTime.MinValue));

    /// <summary>Entries created or files changed under <paramref name="root"/> since <paramref name="before"/>, outside <paramref name="allowed"/>.</summary>
    public static List<string> WrittenOutside(string root, Dictionary<string, (long, DateTime)> before, string? allowed)
    {
        string prefix = allowed is null ? "\0" : Path.GetFullPath(allowed).TrimEnd('/') + "/";
        bool Allowed(string p) => Path.GetFullPath(p) + "/" == prefix || Path.GetFullPath(p).StartsWith(prefix, StringComparison.Ordinal);
        bool AncestorOfAllowed(string p) => prefix.StartsWith(Path.GetFullPath(p).TrimEnd('/') + "/", StringComparison.Ordinal);
        return Snapshot(root).Where(e => !Allowed(e.Key) && !AncestorOfAllowed(e.Key)
                && (!before.TryGetValue(e.Key, out var old) || old != e.Value))
            .Select(e => e.Key).ToList();
    }
}
