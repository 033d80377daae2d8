using System.Text;
using System.Text.Json;
using Json.Schema;

namespace Parity.Tests;

/// <summary>
/// One of docs/*.schema.json, evaluated by JsonSchema.Net. Each violation comes back as
/// "place: message (schema location)", the place written <c>$.model.layers[0].out</c> as the tests name it
/// and followed by the offending value when that is a scalar: <c>$.model.layers[0].out = -3: ...</c>.
/// </summary>
internal sealed class SchemaValidator(string schemaFile)
{
    private static readonly EvaluationOptions Hierarchy = new() { OutputFormat = OutputFormat.Hierarchical };

    private readonly JsonSchema _schema = JsonSchema.FromText(File.ReadAllText(schemaFile));

    /// <summary>Every violation; empty when the instance is valid.</summary>
    public List<string> Validate(JsonElement instance)
    {
        var results = _schema.Evaluate(instance, Hierarchy);
        if (results.IsValid) return [];
        var errors = new List<string>();
        Collect(results, instance, errors);
        // A failing result always carries a message somewhere; this keeps a test from passing on an empty list.
        return errors.Count > 0 ? errors : ["$: invalid (the validator gave no message)"];
    }

    // Only failing subschemas under failing parents explain the failure: a failing "if", or a failing
    // alternative of a oneOf that another alternative satisfied, sits under a passing node and is skipped.
    private static void Collect(EvaluationResults node, JsonElement instance, List<string> errors)
    {
        foreach (var (keyword, message) in node.Errors ?? new Dictionary<string, string>())
            errors.Add($"{Place(instance, node.InstanceLocation.ToString())}: {message} (#{node.EvaluationPath}{(keyword.Length > 0 ? "/" + keyword : "")})");
        foreach (var child in node.Details ?? [])
            if (!child.IsValid) Collect(child, instance, errors);
    }

    /// <summary>A JSON Pointer into <paramref name="instance"/> as a path (<c>/a/0/b</c> is <c>$.a[0].b</c>), with a scalar's value.</summary>
    private static string Place(JsonElement instance, string pointer)
    {
        var place = new StringBuilder("$");
        var current = instance;
        foreach (string escaped in pointer.Split('/').Skip(1))
        {
            string segment = escaped.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            if (current.ValueKind == JsonValueKind.Array)
            {
                place.Append('[').Append(segment).Append(']');
                current = current[int.Parse(segment, System.Globalization.CultureInfo.InvariantCulture)];
            }
            else
            {
                place.Append('.').Append(segment);
                current = current.ValueKind == JsonValueKind.Object && current.TryGetProperty(segment, out var child) ? child : default;
            }
        }
        if (current.ValueKind is JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null)
        {
            string value = current.GetRawText();
            place.Append(" = ").Append(value.Length > 80 ? value[..80] + "..." : value);
        }
        return place.ToString();
    }
}
