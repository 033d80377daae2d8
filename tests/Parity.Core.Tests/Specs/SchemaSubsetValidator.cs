using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Parity.Specs.Tests;

/// <summary>
/// A JSON Schema (draft 2020-12) validator for exactly the keywords docs/spec.schema.json uses, so the
/// fixtures can be checked against the schema without a schema package. A keyword it does not know
/// is an error, not a silent pass: the schema cannot grow a keyword this test ignores.
/// </summary>
internal sealed class SchemaSubsetValidator(JsonElement root)
{
    private static readonly HashSet<string> Annotations = ["$schema", "title", "description", "default", "$defs"];

    public List<string> Validate(JsonElement instance)
    {
        var errors = new List<string>();
        Check(instance, root, "$", errors);
        return errors;
    }

    private void Check(JsonElement x, JsonElement schema, string path, List<string> errors)
    {
        if (schema.ValueKind == JsonValueKind.True) return;
        if (schema.ValueKind == JsonValueKind.False)
        {
            errors.Add($"{path}: not allowed");
            return;
        }
        foreach (var keyword in schema.EnumerateObject())
        {
            var s = keyword.Value;
            switch (keyword.Name)
            {
                case var a when Annotations.Contains(a):
                case "then": // evaluated with "if"
                    break;
                case "$ref":
                    Check(x, Resolve(s.GetString()!), path, errors);
                    break;
                case "type":
                    if (!HasType(x, s.GetString()!)) errors.Add($"{path}: expected {s.GetString()}, found {x.ValueKind}");
                    break;
                case "enum":
                    if (!s.EnumerateArray().Any(v => JsonElement.DeepEquals(v, x))) errors.Add($"{path}: {x.GetRawText()} is not one of {s.GetRawText()}");
                    break;
                case "const":
                    if (!JsonElement.DeepEquals(s, x)) errors.Add($"{path}: expected {s.GetRawText()}");
                    break;
                case "minimum":
                    if (x.ValueKind == JsonValueKind.Number && !(Number(x) >= s.GetDouble())) errors.Add($"{path}: below {s.GetDouble()}");
                    break;
                case "exclusiveMinimum":
                    if (x.ValueKind == JsonValueKind.Number && !(Number(x) > s.GetDouble())) errors.Add($"{path}: not above {s.GetDouble()}");
                    break;
                case "maximum":
                    if (x.ValueKind == JsonValueKind.Number && !(Number(x) <= s.GetDouble())) errors.Add($"{path}: above {s.GetDouble()}");
                    break;
                case "minLength":
                    if (x.ValueKind == JsonValueKind.String && x.GetString()!.Length < s.GetInt32()) errors.Add($"{path}: shorter than {s.GetInt32()}");
                    break;
                case "maxLength":
                    if (x.ValueKind == JsonValueKind.String && x.GetString()!.Length > s.GetInt32()) errors.Add($"{path}: longer than {s.GetInt32()}");
                    break;
                case "pattern":
                    if (x.ValueKind == JsonValueKind.String && !Regex.IsMatch(x.GetString()!, s.GetString()!)) errors.Add($"{path}: does not match {s.GetString()}");
                    break;
                case "minItems":
                    if (x.ValueKind == JsonValueKind.Array && x.GetArrayLength() < s.GetInt32()) errors.Add($"{path}: fewer than {s.GetInt32()} items");
                    break;
                case "maxItems":
                    if (x.ValueKind == JsonValueKind.Array && x.GetArrayLength() > s.GetInt32()) errors.Add($"{path}: more than {s.GetInt32()} items");
                    break;
                case "items":
                    if (x.ValueKind == JsonValueKind.Array)
                    {
                        int i = 0;
                        foreach (var item in x.EnumerateArray()) Check(item, s, $"{path}[{i++}]", errors);
                    }
                    break;
                case "required":
                    if (x.ValueKind == JsonValueKind.Object)
                        foreach (var key in s.EnumerateArray())
                            if (!x.TryGetProperty(key.GetString()!, out _)) errors.Add($"{path}.{key.GetString()}: required");
                    break;
                case "properties":
                    if (x.ValueKind == JsonValueKind.Object)
                        foreach (var p in x.EnumerateObject())
                            if (s.TryGetProperty(p.Name, out var ps)) Check(p.Value, ps, $"{path}.{p.Name}", errors);
                    break;
                case "additionalProperties":
                    if (x.ValueKind == JsonValueKind.Object)
                    {
                        bool hasProperties = schema.TryGetProperty("properties", out var declared);
                        foreach (var p in x.EnumerateObject())
                            if (!hasProperties || !declared.TryGetProperty(p.Name, out _)) Check(p.Value, s, $"{path}.{p.Name}", errors);
                    }
                    break;
                case "propertyNames":
                    if (x.ValueKind == JsonValueKind.Object)
                        foreach (var p in x.EnumerateObject())
                        {
                            using var name = JsonDocument.Parse(JsonSerializer.Serialize(p.Name));
                            Check(name.RootElement, s, $"{path}.{p.Name} (name)", errors);
                        }
                    break;
                case "allOf":
                    foreach (var sub in s.EnumerateArray()) Check(x, sub, path, errors);
                    break;
                case "oneOf":
                    int passing = s.EnumerateArray().Count(sub => Passes(x, sub, path));
                    if (passing != 1) errors.Add($"{path}: matches {passing} of the oneOf alternatives, not exactly one");
                    break;
                case "if":
                    if (Passes(x, s, path) && schema.TryGetProperty("then", out var then)) Check(x, then, path, errors);
                    break;
                default:
                    throw new NotSupportedException($"schema keyword '{keyword.Name}' is not supported by this test's validator");
            }
        }
    }

    private bool Passes(JsonElement x, JsonElement schema, string path)
    {
        var errors = new List<string>();
        Check(x, schema, path, errors);
        return errors.Count == 0;
    }

    private JsonElement Resolve(string reference)
    {
        if (!reference.StartsWith("#/", StringComparison.Ordinal)) throw new NotSupportedException($"only local $ref is supported: {reference}");
        var node = root;
        foreach (string part in reference[2..].Split('/')) node = node.GetProperty(part.Replace("~1", "/").Replace("~0", "~"));
        return node;
    }

    private static double Number(JsonElement x) => double.Parse(x.GetRawText(), NumberStyles.Float, CultureInfo.InvariantCulture);

    private static bool HasType(JsonElement x, string type) => type switch
    {
        "object" => x.ValueKind == JsonValueKind.Object,
        "array" => x.ValueKind == JsonValueKind.Array,
        "string" => x.ValueKind == JsonValueKind.String,
        "boolean" => x.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "number" => x.ValueKind == JsonValueKind.Number,
        "integer" => x.ValueKind == JsonValueKind.Number && Math.Floor(Number(x)) == Number(x) && double.IsFinite(Number(x)),
        "null" => x.ValueKind == JsonValueKind.Null,
        _ => throw new NotSupportedException($"type '{type}'"),
    };
}
