using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Parity.Backends.Workers.Protocol;

/// <summary>
/// Starts worker processes so that none outlives its harness, and kills a worker with everything it started
/// (docs/worker-protocol.md, "Process lifetime"). On Linux, with util-linux's <c>setpriv</c> and <c>setsid</c>:
/// <list type="bullet">
/// <item>each worker leads a new session and process group (<c>setsid</c>), so killing the group reaches its
/// children;</item>
/// <item>it gets SIGKILL when the harness dies, however it dies (<c>setpriv --pdeathsig KILL</c>): the kernel sends it
/// when the thread that forked the worker ends, so every worker is forked from one thread that lives as long as the
/// process (a thread-pool thread could retire and kill its workers with it);</item>
/// <item>a guard process in the worker's group waits for the worker to end (its own death signal) and then kills the
/// whole group, so a child that kept running, or kept the worker's stdout open, goes with it even after a
/// <c>kill -9</c> of the harness.</item>
/// </list>
/// What escapes: a descendant that starts its own session (<c>setsid</c>) AND whose parent exits before the kill,
/// since it is then neither in the group nor below the worker (cgroups would hold it, but need privileges an ordinary
/// user lacks). Elsewhere, or without those tools, the worker starts directly and is killed with .NET's process-tree kill.
/// </summary>
internal static partial class WorkerLauncher
{
    // The guard: started in the background by the shell that then becomes the worker (exec), so it is the worker's
    // child, in its group, with stdio detached. SIGTERM (its death signal) or a parent already gone: kill the group.
    private const string GuardScript =
        "trap 'kill -KILL 0' TERM; [ \"$PPID\" = \"$1\" ] || kill -KILL 0; while :; do sleep 3600 & wait $!; done";

    private const int SigKill = 9;
    private const int SigStop = 19;

    private static readonly BlockingCollection<(ProcessStartInfo Info, TaskCompletionSource<Process> Started)> Requests = new();
    private static readonly Lazy<Thread> Forker = new(() =>
    {
        var thread = new Thread(Fork) { IsBackground = true, Name = "worker launcher" };
        thread.Start();
        return thread;
    });

    private static readonly string? Setpriv = Find("setpriv");
    private static readonly string? Setsid = Find("setsid");

    /// <summary>True when workers run supervised (own process group, death with the harness, group guard).</summary>
    public static bool Supervised => OperatingSystem.IsLinux() && Setpriv is not null && Setsid is not null && File.Exists("/bin/sh");

    /// <summary>
    /// Starts <paramref name="program"/> with <paramref name="arguments"/>; <paramref name="info"/> carries the
    /// redirections, working directory and environment. Returns the process whose id and exit code are the worker's.
    /// </summary>
    public static Process Start(ProcessStartInfo info, string program, IEnumerable<string> arguments)
    {
        if (Supervised)
        {
            info.FileName = Setpriv!;
            string guard = $"{Quote(Setpriv!)} --pdeathsig TERM -- /bin/sh -c {Quote(GuardScript)} parity-worker-guard \"$$\" </dev/null >/dev/null 2>&1 &\nexec \"$@\"";
            foreach (string a in new[] { "--pdeathsig", "KILL", "--", Setsid!, "/bin/sh", "-c", guard, "parity-worker" }) info.ArgumentList.Add(a);
            info.ArgumentList.Add(program);
        }
        else
        {
            info.FileName = program;
        }
        foreach (string a in arguments) info.ArgumentList.Add(a);
        var started = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = Forker.Value;
        Requests.Add((info, started));
        return started.Task.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Kills the worker <paramref name="process"/> and everything it started that can still be found: its process
    /// group and session, and every process below it. All are stopped first, so none can fork while the set is taken.
    /// </summary>
    public static void KillAll(Process process)
    {
        int root;
        bool rootAlive;
        try
        {
            root = process.Id;
            rootAlive = !process.HasExited;
        }
        catch (InvalidOperationException)
        {
            return; // never started, or disposed
        }
        if (!Supervised)
        {
            try
            {
                if (rootAlive) process.Kill(entireProcessTree: true);
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
            {
                // Exited meanwhile.
            }
            return;
        }
        // Once the worker has exited its id may be reused: then only its group and session are searched, which keep
        // that id from being handed out again while they have members.
        var taken = new HashSet<int>();
        for (int round = 0; round < 8; round++)
        {
            var found = Members(root, rootAlive).Where(taken.Add).ToList();
            if (found.Count == 0) break;
            foreach (int pid in found) Kill(pid, SigStop);
        }
        foreach (int pid in taken) Kill(pid, SigKill);
        Kill(-root, SigKill);
    }

    /// <summary>Processes in the session or group of <paramref name="root"/>, or below them or the live root, from /proc.</summary>
    private static HashSet<int> Members(int root, bool rootAlive)
    {
        var table = new List<(int Pid, int Parent, int Group, int Session)>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(dir, "stat"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // gone meanwhile
            }
            // "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses, so split after the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (fields.Length > 3 && int.TryParse(fields[1], out int parent) && int.TryParse(fields[2], out int group) && int.TryParse(fields[3], out int session))
                table.Add((pid, parent, group, session));
        }
        var members = new HashSet<int>(table.Where(p => (rootAlive && p.Pid == root) || p.Group == root || p.Session == root).Select(p => p.Pid));
        for (bool grew = true; grew;)
        {
            grew = false;
            foreach (var p in table)
                if (!members.Contains(p.Pid) && members.Contains(p.Parent)) grew = members.Add(p.Pid) | grew;
        }
        return members;
    }

    private static void Fork()
    {
        foreach (var (info, started) in Requests.GetConsumingEnumerable())
        {
            try
            {
                started.SetResult(Process.Start(info) ?? throw new InvalidOperationException($"'{info.FileName}' did not start"));
            }
            catch (Exception e)
            {
                started.SetException(e);
            }
        }
    }

    private static string? Find(string program)
    {
        foreach (string dir in new[] { "/usr/bin", "/bin", "/usr/sbin", "/sbin" })
            if (File.Exists(Path.Combine(dir, program))) return Path.Combine(dir, program);
        return null;
    }

    private static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static void Kill(int pid, int signal) => _ = KillNative(pid, signal);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int KillNative(int pid, int signal);
}
