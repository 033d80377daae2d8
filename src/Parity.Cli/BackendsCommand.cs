using Parity.Backends;

namespace Parity.Cli;

/// <summary><c>parity backends</c>: every backend, available or not, and why.</summary>
internal static class BackendsCommand
{
    private static readonly string[] Header = ["backend", "available", "dtypes", "details"];

    public static int Print(BackendRegistry registry, TextWriter w)
    {
        var rows = new List<string[]> { Header };
        foreach (string name in registry.Names)
        {
            BackendDescription d;
            try
            {
                d = registry.Create(name).Describe();
            }
            catch (Exception e)
            {
                rows.Add([name, "no", "", $"{e.GetType().Name}: {e.Message}"]);
                continue;
            }
            string versions = string.Join(", ", d.Versions.Select(v => $"{v.Key} {v.Value}"));
            string dtypes = string.Join(",", d.Capabilities.DTypes.Order().Select(t => t == Tensors.DType.Float32 ? "f32" : "f64"));
            rows.Add([name, d.Available ? "yes" : "no", dtypes, string.Join("; ", new[] { d.Reason, versions }.Where(s => s.Length > 0))]);
        }
        int[] widths = Enumerable.Range(0, 3).Select(i => rows.Max(r => r[i].Length)).ToArray();
        foreach (var r in rows) w.WriteLine($"{r[0].PadRight(widths[0])}  {r[1].PadRight(widths[1])}  {r[2].PadRight(widths[2])}  {r[3]}");
        return ExitCodes.Agree;
    }
}
