namespace Parity.Testing;

/// <summary>
/// Processes of this machine read from /proc, to find what a worker left behind. Shared with Parity.Cli.Tests
/// (linked there), whose fuzzer kills harnesses and looks for their workers.
/// </summary>
internal static class ProcessTable
{
    /// <summary>Ids of the processes with <paramref name="argument"/> among their command-line arguments.</summary>
    public static List<int> WithArgument(string argument)
    {
        var found = new List<int>();
        foreach (string dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0').Contains(argument)) found.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile.
            }
        }
        return found;
    }

    /// <summary>The id of the parent of <paramref name="pid"/>, from /proc/PID/stat.</summary>
    public static int ParentOf(int pid) =>
        int.Parse(File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>True while <paramref name="pid"/> runs (a zombie waiting to be reaped has ended).</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            return !File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].StartsWith('Z');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
