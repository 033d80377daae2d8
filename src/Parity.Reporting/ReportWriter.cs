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

    /// <summary>Reads a report.json.</summary>
    public static RunReport ReadJson(string path) =>
        JsonSerializer.Deserialize<RunReport>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path}: empty report");
}
