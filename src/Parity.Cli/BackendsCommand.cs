using Parity.Backends;

namespace Parity.Cli;

/// <summary><c>parity backends</c>: every backend, available or not, and why.</summary>
internal static class BackendsCommand
{
    private static readonly string[] Header = ["backend", "available", "dtypes", "details"];

    /// <summary>Every backend as a JSON array: name, available, dtypes, reason, versions.</summary>
    public static int PrintJson(BackendRegistry registry, TextWriter w)
    {
        var list = new System.Text.Json.Nodes.JsonArray();
        foreach (string name in registry.Names)
        {
            var (d, error) = Describe(registry, name);
            list.Add(new System.Text.Json.Nodes.JsonObject
            {
                ["name"] = name,
                ["available"] = d?.Available ?? false,
                ["dtypes"] = new System.Text.Json.Nodes.JsonArray([.. (d is null ? Enumerable.Empty<Tensors.DType>() : d.Capabilities.DTypes.Order()).Select(t => (System.Text.Json.Nodes.JsonNode)t.ToString().ToLowerInvariant())]),
                ["reason"] = error ?? d!.Reason,
                ["versions"] = new System.Text.Json.Nodes.JsonObject([.. (d?.Versions ?? new Dictionary<string, string>()).Select(v => KeyValuePair.Create(v.Key, (System.Text.Json.Nodes.JsonNode?)v.Value))]),
            });
        }
        w.WriteLine(list.ToJsonString(Commands.PrintedJson));
        return ExitCodes.Agree;
    }

    private static (BackendDescription? Description, string? Error) Describe(BackendRegistry registry, string name)
    {
        try
        {
            return (registry.Create(name).Describe(), null);
        }
        catch (Exception e)
        {
            return (null, $"{e.GetType().Name}: {e.Message}");
        }
    }

    public static int Print(BackendRegistry registry, TextWriter w)
    {
        var rows = new List<string[]> { Header };
        foreach (string name in registry.Names)
        {
            var (described, error) = Describe(registry, name);
            if (described is not { } d)
            {
                rows.Add([name, "no", "", error!]);
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
