using System.Text.RegularExpressions;
using Parity.Planning;
using Parity.Specs;

namespace Parity.Backends.Native.Tests;

/// <summary>
/// The repository's synthetic fixtures shrunk for the CPU accelerator, which emulates every GPU thread and barrier:
/// hidden widths 16, batch 16 (one 16 x 16 product tile), fewer samples. Everything else (layers, calls, shared
/// instances, optimizer, conventions) is the fixture's own text.
/// </summary>
internal static class TinySpecs
{
    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Parity.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("Parity.sln not found above the test directory");
        }
    }

    /// <summary>The fixture's text with hidden widths and sizes reduced.</summary>
    public static string Shrink(string fixture, string? dtype = null)
    {
        string text = File.ReadAllText(Path.Combine(RepositoryRoot, "fixtures", fixture));
        text = Regex.Replace(text, @"""(in|out|features)"": (24|32)\b", m => $"\"{m.Groups[1].Value}\": 16");
        text = Regex.Replace(text, @"""batchSize"": \d+", "\"batchSize\": 16");
        text = Regex.Replace(text, @"""samples"": (\d+)", m => $"\"samples\": {int.Parse(m.Groups[1].Value) / 4}");
        if (dtype is not null)
        {
            text = Regex.Replace(text, @"""dtype"": ""\w+"",\s*", "");
            text = text.Replace("\"model\":", $"\"dtype\": \"{dtype}\",\n  \"model\":", StringComparison.Ordinal);
        }
        return text;
    }

    public static Plan Plan(string fixture, int steps, string? dtype = null) =>
        Planner.Build(SpecLoader.Parse(Shrink(fixture, dtype), Path.Combine(RepositoryRoot, "fixtures")), steps);
}
