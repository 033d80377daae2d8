using System.Globalization;
using Parity.Specs;

namespace Parity.Planning;

/// <summary>
/// How much memory a run may plan to use: <c>PARITY_MEMORY_BUDGET</c> when set (bytes, or a number with K, M, G or T,
/// powers of 1024, e.g. <c>8G</c> or <c>1.5GiB</c>), else half of the memory this process can use (the machine's
/// physical memory or its container limit). The planner refuses a run whose <see cref="MemoryEstimate"/> exceeds it.
/// </summary>
public static class MemoryBudget
{
    /// <summary>The environment variable that sets the budget.</summary>
    public const string EnvironmentVariable = "PARITY_MEMORY_BUDGET";

    /// <summary>Half of the memory available to this process.</summary>
    public static long Default => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;

    /// <summary>The budget now in force.</summary>
    /// <exception cref="SpecException">The environment variable is set but is not a size (reported at <c>$</c>: nothing in the spec can fix it, so the message names the variable).</exception>
    public static long Current
    {
        get
        {
            string? text = Environment.GetEnvironmentVariable(EnvironmentVariable);
            if (string.IsNullOrWhiteSpace(text)) return Default;
            return TryParse(text, out long bytes) ? bytes
                : throw new SpecException("$", $"the environment variable {EnvironmentVariable}={IO.PathNames.Quote(text)} is not a memory size: write bytes or a number with K, M, G or T (powers of 1024), e.g. 8G");
        }
    }

    /// <summary>Parses a size: <c>1073741824</c>, <c>1024M</c>, <c>1G</c>, <c>1.5GiB</c>, <c>2 gb</c> (units are powers of 1024).</summary>
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        string t = text.Trim().ToUpperInvariant();
        if (t.EndsWith("IB", StringComparison.Ordinal)) t = t[..^2];
        else if (t.EndsWith('B')) t = t[..^1];
        t = t.TrimEnd();
        long unit = 1;
        if (t.Length > 0 && "KMGT".IndexOf(t[^1], StringComparison.Ordinal) is int power and >= 0)
        {
            unit = 1L << (10 * (power + 1));
            t = t[..^1].TrimEnd();
        }
        if (!double.TryParse(t, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value) || value <= 0) return false;
        double total = value * unit;
        if (total >= long.MaxValue) return false;
        bytes = (long)total;
        return bytes > 0;
    }

    /// <summary>A byte count for people: <c>4.8 GiB</c>.</summary>
    public static string Format(long bytes)
    {
        string[] units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        double value = bytes;
        int u = 0;
        while (value >= 1024 && u < units.Length - 1)
        {
            value /= 1024;
            u++;
        }
        return u == 0 ? $"{bytes} bytes" : value.ToString(value < 10 ? "0.0" : "0", CultureInfo.InvariantCulture) + " " + units[u];
    }
}
