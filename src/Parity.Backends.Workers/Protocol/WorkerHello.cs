using System.Text.Json;
using Parity.Tensors;

namespace Parity.Backends.Workers.Protocol;

/// <summary>The worker's <c>ready</c> line: protocol version, framework, versions and capabilities.</summary>
internal sealed record WorkerHello(int Protocol, string Framework, string Version, IReadOnlyDictionary<string, string> Versions,
    BackendCapabilities Capabilities)
{
    public static WorkerHello Parse(JsonElement ready, string worker, Func<string, Exception> fail)
    {
        if (!ready.TryGetProperty("protocol", out var p) || p.ValueKind != JsonValueKind.Number || !p.TryGetInt32(out int protocol))
            throw fail("its ready line has no integer \"protocol\"");
        string framework = RequiredString(ready, "framework", fail);
        string version = RequiredString(ready, "version", fail);
        var versions = new Dictionary<string, string>(StringComparer.Ordinal) { [framework] = version };
        if (ready.TryGetProperty("versions", out var vs) && vs.ValueKind == JsonValueKind.Object)
            foreach (var v in vs.EnumerateObject()) versions[v.Name] = v.Value.ValueKind == JsonValueKind.String ? v.Value.GetString()! : v.Value.GetRawText();

        var dtypes = new HashSet<DType>();
        var devices = new HashSet<string>(StringComparer.Ordinal);
        bool training = true, shared = true, frameworkInit = false;
        if (ready.TryGetProperty("capabilities", out var caps) && caps.ValueKind == JsonValueKind.Object)
        {
            if (caps.TryGetProperty("dtypes", out var ds) && ds.ValueKind == JsonValueKind.Array)
                foreach (var d in ds.EnumerateArray())
                    dtypes.Add(DTypes.TryParse(d.ValueKind == JsonValueKind.String ? d.GetString() : null)
                        ?? throw fail($"its ready line names an unknown dtype {WorkerProcess.Preview(d.GetRawText())} in capabilities.dtypes (use \"float32\", \"float64\")"));
            if (caps.TryGetProperty("devices", out var dv) && dv.ValueKind == JsonValueKind.Array)
                foreach (var d in dv.EnumerateArray())
                    if (d.ValueKind == JsonValueKind.String) devices.Add(d.GetString()!);
            training = Flag(caps, "training", true);
            shared = Flag(caps, "sharedInstances", true);
            frameworkInit = Flag(caps, "frameworkInit", false);
        }
        if (dtypes.Count == 0) dtypes.Add(DType.Float32);
        if (devices.Count == 0) devices.Add("cpu");
        // Protocol 2 is protocol 1 plus the optimizer state in read_state and step answers.
        return new WorkerHello(protocol, framework, version, versions,
            new BackendCapabilities(dtypes, devices, training, shared, frameworkInit, OptimizerState: protocol >= 2));
    }

    private static string RequiredString(JsonElement e, string key, Func<string, Exception> fail) =>
        e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw fail($"its ready line has no string \"{key}\"");

    private static bool Flag(JsonElement e, string key, bool fallback) =>
        e.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;
}
