using Parity.IO;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Parity.Reporting;

/// <summary>Writes and reads report.json.</summary>
public static class ReportWriter
{
    /// <summary>Serializer settings of report.json: camelCase, indented, NaN and infinities as strings.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    /// <summary>Writes <c>report.json</c> into <paramref name="directory"/> (write, then rename) and returns its path.</summary>
    public static string WriteJson(RunReport report, string directory) =>
        AtomicFile.WriteText(Path.Combine(directory, "report.json"), JsonSerializer.Serialize(report, Json));

    /// <summary>
    /// Reads a report.json and checks what readers of a run directory rely on: the scenario, the reference and a
    /// backend list whose trace paths stay inside the run directory. Throws <see cref="InvalidDataException"/> naming
    /// the file and the field; a JSON syntax error comes as <see cref="JsonException"/>.
    /// </summary>
    public static RunReport ReadJson(string path)
    {
        var report = JsonSerializer.Deserialize<RunReport>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path}: empty report");
        if (Problem(report) is string problem) throw new InvalidDataException($"{path}: {problem}");
        return report;
    }

    private static string? Problem(RunReport r)
    {
        if (r.Format != "parity-report") return "not a parity report (\"format\" is not parity-report)";
        if (r.Scenario is null || string.IsNullOrEmpty(r.Scenario.Name) || string.IsNullOrEmpty(r.Scenario.SpecHash)) return "no \"scenario\" with a name and specHash";
        if (string.IsNullOrEmpty(r.Reference)) return "no \"reference\"";
        if (r.Backends is null) return "\"backends\" is not a list";
        if (r.Comparisons is null) return "\"comparisons\" is not a list";
        for (int i = 0; i < r.Backends.Count; i++)
        {
            var b = r.Backends[i];
            if (b is null || string.IsNullOrEmpty(b.Name) || b.DType is null || b.Mismatches is null || b.Runtime is null)
                return $"backends[{i}] lacks its name, status, dType, runtime or mismatches";
            if (string.IsNullOrEmpty(b.Trace) || Path.IsPathRooted(b.Trace) || b.Trace.Split('/', '\\').Any(part => part is ".." or "") || b.Trace.Contains('\0'))
                return $"backends[{i}] ({b.Name}): trace '{b.Trace}' is not a relative path inside the run directory";
        }
        return null;
    }
}
