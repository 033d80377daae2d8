using System.Text.Json;

namespace Parity.Reporting.Tests;

/// <summary>
/// A validator for the subset of JSON Schema 2020-12 that docs/report.schema.json uses: <c>type</c> (one or several),
/// <c>required</c>, <c>properties</c>, <c>additionalProperties</c> (false or a schema), <c>items</c>, <c>enum</c> and
/// local <c>$ref</c> (<c>#/$defs/NAME</c>). Any other keyword in the schema is an error here, so the schema cannot
/// quietly rely on something this validator ignores. (JsonSchema.Net is not available on this machine's NuGet copy.)
/// </summary>
internal sealed class SchemaValidator
{
    private static readonly HashSet<string> Known =
        ["$schema", "$id", "$ref", "$defs", "title", "description", "type", "required", "properties", "additionalProperties", "items", "enum"];

    private readonly JsonElement _root;

    public SchemaValidator(JsonElement root)
    {
        _root = root;
        CheckKeywords(root, "#");
    }

    /// <summary>Every violation, as "JSON path: problem"; empty when the instance is valid.</summary>
    public List<string> Validate(JsonElement instance)
    {
        var errors = new List<string>();
        Validate(_root, instance, "$", errors);
        return errors;
    }

    private void Validate(JsonElement schema, JsonElement value, string path, List<string> errors)
    {
        if (schema.TryGetProperty("$ref", out var reference))
        {
            Validate(Resolve(reference.GetString()!), value, path, errors);
        }
        if (schema.TryGetProperty("type", out var type))
        {
            var allowed = type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()!).ToList() : [type.GetString()!];
            if (!allowed.Any(t => Is(value, t)))
            {
                errors.Add($"{path}: expected {string.Join(" or ", allowed)}, got {value.ValueKind}");
                return;
            }
        }
        if (schema.TryGetProperty("enum", out var options) && !options.EnumerateArray().Any(o => JsonElement.DeepEquals(o, value)))
            errors.Add($"{path}: {value.GetRawText()} is not one of {options.GetRawText()}");
        if (value.ValueKind == JsonValueKind.Object)
        {
            if (schema.TryGetProperty("required", out var required))
            {
                foreach (var name in required.EnumerateArray().Select(r => r.GetString()!))
                    if (!value.TryGetProperty(name, out _)) errors.Add($"{path}: required property '{name}' is missing");
            }
            var properties = schema.TryGetProperty("properties", out var p) ? p : default;
            foreach (var member in value.EnumerateObject())
            {
                string childPath = $"{path}.{member.Name}";
                if (properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(member.Name, out var propertySchema))
                    Validate(propertySchema, member.Value, childPath, errors);
                else if (schema.TryGetProperty("additionalProperties", out var additional))
                {
                    if (additional.ValueKind == JsonValueKind.False) errors.Add($"{childPath}: property not in the schema");
                    else if (additional.ValueKind == JsonValueKind.Object) Validate(additional, member.Value, childPath, errors);
                }
            }
        }
        if (value.ValueKind == JsonValueKind.Array && schema.TryGetProperty("items", out var items))
        {
            int i = 0;
            foreach (var element in value.EnumerateArray()) Validate(items, element, $"{path}[{i++}]", errors);
        }
    }

    private static bool Is(JsonElement value, string type) => type switch
    {
        "object" => value.ValueKind == JsonValueKind.Object,
        "array" => value.ValueKind == JsonValueKind.Array,
        "string" => value.ValueKind == JsonValueKind.String,
        "number" => value.ValueKind == JsonValueKind.Number,
        "integer" => value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _),
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "null" => value.ValueKind == JsonValueKind.Null,
        _ => throw new InvalidOperationException($"unknown type '{type}' in the schema"),
    };

    private JsonElement Resolve(string reference)
    {
        const string prefix = "#/$defs/";
        if (!reference.StartsWith(prefix, StringComparison.Ordinal)) throw new InvalidOperationException($"unsupported $ref '{reference}'");
        return _root.GetProperty("$defs").TryGetProperty(reference[prefix.Length..], out var target)
            ? target
            : throw new InvalidOperationException($"$ref '{reference}' names no definition");
    }

    private static void CheckKeywords(JsonElement schema, string path)
    {
        if (schema.ValueKind != JsonValueKind.Object) return;
        foreach (var member in schema.EnumerateObject())
        {
            if (!Known.Contains(member.Name)) throw new InvalidOperationException($"{path}: keyword '{member.Name}' is not supported by this validator");
            switch (member.Name)
            {
                case "properties" or "$defs":
                    foreach (var child in member.Value.EnumerateObject()) CheckKeywords(child.Value, $"{path}/{member.Name}/{child.Name}");
                    break;
                case "items" or "additionalProperties":
                    CheckKeywords(member.Value, $"{path}/{member.Name}");
                    break;
            }
        }
    }
}
