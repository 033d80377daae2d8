using System.Globalization;
using System.Text.Json;

namespace Parity.Specs;

/// <summary>
/// A JSON element with its path. Every accessor either returns a value of the expected type and range
/// or throws <see cref="SpecException"/> naming the path, so the loader reads as a list of expectations.
/// With <paramref name="errors"/>, a mistake that does not stop the reading of the object (an unknown or a duplicate
/// key) is recorded there and the reading goes on; the cursors it hands out carry the same collector.
/// </summary>
internal readonly struct JsonCursor(JsonElement element, string path, SpecErrors? errors = null)
{
    public JsonElement Element { get; } = element;

    public string Path { get; } = path;

    public SpecErrors? Errors { get; } = errors;

    public SpecException Error(string problem) => new(Path, problem);

    public JsonCursor Object(params string[] allowedKeys)
    {
        if (Element.ValueKind != JsonValueKind.Object) throw Error($"expected an object, found {Describe(Element)}");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in Element.EnumerateObject())
        {
            if (System.Array.IndexOf(allowedKeys, p.Name) < 0 && p.Name is not ("$schema" or "comment"))
                Report(new SpecException(Child(p.Name), SpecVocabulary.UnknownKey(Path, p.Name, allowedKeys)));
            // JSON allows a key twice and System.Text.Json keeps both; which one a reader sees is an accident, so refuse.
            if (!seen.Add(p.Name)) Report(new SpecException(Child(p.Name), $"duplicate key '{p.Name}'"));
        }
        return this;
    }

    // A mistake after which this object can still be read: recorded when there is a collector, else thrown.
    private void Report(SpecException error)
    {
        if (Errors is null) throw error;
        Errors.Add(error);
    }

    /// <summary>
    /// This element as an object whose keys are checked later, once its <c>type</c> is known, so an unknown
    /// key is reported with the keys of that type only.
    /// </summary>
    public JsonCursor TypedObject()
    {
        if (Element.ValueKind != JsonValueKind.Object) throw Error($"expected an object, found {Describe(Element)}");
        return this;
    }

    /// <summary>
    /// Rejects strings and keys that cannot become .NET strings: JSON may escape an unpaired UTF-16
    /// surrogate (<c>"\ud800"</c>), which System.Text.Json refuses to decode. Checked once, up front, so
    /// every later read can take strings for granted.
    /// </summary>
    public void RequireDecodableStrings()
    {
        switch (Element.ValueKind)
        {
            case JsonValueKind.String:
                var element = Element;
                if (!Decodable(() => element.GetString())) throw Error("the string contains an unpaired UTF-16 surrogate escape");
                break;
            case JsonValueKind.Object:
                foreach (var p in Element.EnumerateObject())
                {
                    string name = "";
                    if (!Decodable(() => name = p.Name)) throw Error("a key contains an unpaired UTF-16 surrogate escape");
                    new JsonCursor(p.Value, Child(name)).RequireDecodableStrings();
                }
                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in Element.EnumerateArray()) new JsonCursor(item, $"{Path}[{i++}]").RequireDecodableStrings();
                break;
        }
    }

    private static bool Decodable(Func<string?> read)
    {
        try
        {
            read();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    public bool Has(string key) => Element.ValueKind == JsonValueKind.Object && Element.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    public JsonCursor Get(string key)
    {
        if (Element.ValueKind != JsonValueKind.Object) throw Error($"expected an object, found {Describe(Element)}");
        if (!Element.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            throw new SpecException(Child(key), "required key is missing");
        return new JsonCursor(v, Child(key), Errors);
    }

    public JsonCursor? Optional(string key) => Has(key) ? Get(key) : null;

    public string String()
    {
        if (Element.ValueKind != JsonValueKind.String) throw Error($"expected a string, found {Describe(Element)}");
        return Element.GetString()!;
    }

    public string String(string key, string? fallback = null) =>
        Has(key) ? Get(key).String() : fallback ?? throw new SpecException(Child(key), "required key is missing");

    /// <summary>A string from <paramref name="options"/>; a null <paramref name="fallback"/> makes the key required.</summary>
    public string Choice(string key, string? fallback, params string[] options)
    {
        string value = String(key, fallback);
        if (System.Array.IndexOf(options, value) < 0)
            throw new SpecException(Child(key), SpecVocabulary.UnknownValue(Child(key), value, options));
        return value;
    }

    public bool Bool(string key, bool fallback)
    {
        if (!Has(key)) return fallback;
        var v = Get(key);
        return v.Element.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw v.Error($"expected true or false, found {Describe(v.Element)}"),
        };
    }

    public int Int(string key, int min, int max, int? fallback = null)
    {
        if (!Has(key)) return fallback ?? throw new SpecException(Child(key), "required key is missing");
        var v = Get(key);
        if (v.Element.ValueKind != JsonValueKind.Number || !v.Element.TryGetInt64(out long n))
            throw v.Error($"expected an integer in {min}..{max}, found {Describe(v.Element)}");
        if (n < min || n > max) throw v.Error($"expected an integer in {min}..{max}, found {n}");
        return (int)n;
    }

    public ulong Seed(string key, ulong fallback)
    {
        if (!Has(key)) return fallback;
        var v = Get(key);
        if (v.Element.ValueKind != JsonValueKind.Number || !v.Element.TryGetUInt64(out ulong n))
            throw v.Error($"expected a non-negative integer seed, found {Describe(v.Element)}");
        return n;
    }

    /// <summary>A finite number in [min, max]; <paramref name="exclusiveMin"/> excludes min itself.</summary>
    public double Number(string key, double min, double max, double? fallback = null, bool exclusiveMin = false)
    {
        if (!Has(key)) return fallback ?? throw new SpecException(Child(key), "required key is missing");
        var v = Get(key);
        string range = (exclusiveMin ? "(" : "[") + Fmt(min) + ", " + Fmt(max) + "]";
        if (v.Element.ValueKind != JsonValueKind.Number || !v.Element.TryGetDouble(out double d) || !double.IsFinite(d))
            throw v.Error($"expected a number in {range}, found {Describe(v.Element)}");
        if (d < min || d > max || (exclusiveMin && d == min)) throw v.Error($"expected a number in {range}, found {Fmt(d)}");
        return d;
    }

    public IEnumerable<JsonCursor> Array(int minCount, int maxCount)
    {
        if (Element.ValueKind != JsonValueKind.Array) throw Error($"expected an array, found {Describe(Element)}");
        int n = Element.GetArrayLength();
        if (n < minCount || n > maxCount) throw Error($"expected {minCount}..{maxCount} items, found {n}");
        var items = new List<JsonCursor>(n);
        int i = 0;
        foreach (var item in Element.EnumerateArray()) items.Add(new JsonCursor(item, $"{Path}[{i++}]", Errors));
        return items;
    }

    private string Child(string key) =>
        key.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') ? $"{Path}.{key}" : $"{Path}['{key.Replace("'", "\\'")}']";

    private static string Fmt(double d) => d.ToString("G6", CultureInfo.InvariantCulture);

    internal static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{Truncate(e.GetString()!)}\"",
        JsonValueKind.Number => $"the number {Truncate(e.GetRawText())}",
        JsonValueKind.True or JsonValueKind.False => $"the boolean {e.GetRawText()}",
        JsonValueKind.Null => "null",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "nothing",
    };

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
