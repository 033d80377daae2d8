using System.Text.Json.Nodes;
using Parity.Randomness;

namespace Parity.Specs.Tests;

/// <summary>
/// Seeded mutations of spec text that reach deep into the loader: wrong types, odd numbers, known words in the
/// wrong place, deep nesting, duplicate and unknown keys, reordered calls, escapes JSON writers cannot produce.
/// Shared by the loader fuzz test and the spec-file fuzz tests (in process and through the CLI).
/// </summary>
internal static class SpecMutations
{
    // Words that reach deeper into the loader than random text: every enum value it knows.
    internal static readonly string[] Vocabulary =
    [
        "linear", "batchnorm", "layernorm", "relu", "identity", "sgd", "adam", "idx", "synthetic", "teacher", "gaussian",
        "float32", "float64", "injected", "framework", "unbiased", "biased", "sqrtVHat", "epsilonHat", "all", "normal",
        "he_normal", "zeros", "forward", "loss", "parameter", "runningMean", "l1", "l2", "bn", "relu", "bn#1", "softmax_cross_entropy",
        "", " ", "\u0000", "\ud800", "x.y", "fashion-mnist:none.gz", "forward, loss", "14", "Forward",
    ];

    internal static readonly string[] NumberTexts =
    [
        "0", "-0", "1", "-1", "2", "3", "0.5", "-0.5", "1e-320", "1e308", "-1e308", "1e400", "-1e400", "2147483647", "2147483648",
        "-2147483649", "9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616",
        "99999999999999999999999999999", "1.0", "65536", "65537", "1048577", "100000000", "1e5", "12", "0.9999999999",
    ];

    /// <summary>One to three seeded mutations of spec text: truncation, a flipped character, an escape in a string, or a change of the parsed tree.</summary>
    public static string Mutant(string text, ParityRandom rng)
    {
        int roll = rng.NextInt(10);
        int mutations = roll < 6 ? 1 : roll < 9 ? 2 : 3;
        for (int m = 0; m < mutations; m++)
        {
            // Text-level mutations make the document invalid JSON most of the time, so they are rarer.
            int op = rng.NextInt(20);
            text = op switch
            {
                0 => text[..rng.NextInt(text.Length + 1)],
                1 => FlipCharacter(text, rng),
                2 => EscapeInString(text, rng),
                _ => MutateTree(text, rng),
            };
        }
        return text;
    }

    // JSON escapes that JsonNode cannot produce: unpaired surrogates, NUL, line breaks inside strings and keys.
    private static readonly string[] Escapes = ["\\ud800", "\\udfff", "\\u0000", "\\n", "\\\"", "\\u00e9"];

    private static string EscapeInString(string text, ParityRandom rng)
    {
        var quotes = Enumerable.Range(0, text.Length).Where(i => text[i] == '"').ToList();
        if (quotes.Count == 0) return text;
        int at = quotes[rng.NextInt(quotes.Count)] + 1;
        return text[..at] + Escapes[rng.NextInt(Escapes.Length)] + text[at..];
    }

    /// <summary>One character replaced by a JSON-ish one.</summary>
    public static string FlipCharacter(string text, ParityRandom rng)
    {
        if (text.Length == 0) return "{";
        int at = rng.NextInt(text.Length);
        const string alphabet = "{}[]\":,0123456789-+.eE \\tnulfasx";
        return text[..at] + alphabet[rng.NextInt(alphabet.Length)] + text[(at + 1)..];
    }

    /// <summary>Tree mutation <paramref name="op"/> (0 delete, 1 wrong type, 2 odd number, 3 known word, 4 deep nesting, 5 duplicate key,
    /// 6 unknown key, 7 reordered calls, 8 scaled number, 9 near-miss word), or a random one when null.</summary>
    public static string MutateTree(string text, ParityRandom rng, int? op = null)
    {
        try
        {
            return MutateParsedTree(text, rng, op);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // JsonNode refuses what an earlier mutation made (a duplicated key, nesting past its writer's depth).
            return FlipCharacter(text, rng);
        }
    }

    private static string MutateParsedTree(string text, ParityRandom rng, int? forcedOp)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(text, documentOptions: new System.Text.Json.JsonDocumentOptions { CommentHandling = System.Text.Json.JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (System.Text.Json.JsonException)
        {
            return FlipCharacter(text, rng);
        }
        if (root is null) return "null";
        var nodes = new List<JsonNode>();
        Collect(root, nodes);
        var target = nodes[rng.NextInt(nodes.Count)];
        var numbers = nodes.Where(n => n is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number).ToList();
        var strings = nodes.Where(n => n is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.String).ToList();
        string? duplicate = null;
        int op = forcedOp ?? rng.NextInt(10);
        // Numbers and words replace leaves of their own kind, where the loader checks ranges and names.
        if (op is 2 or 8 && numbers.Count > 0) target = numbers[rng.NextInt(numbers.Count)];
        if (op is 3 or 9 && strings.Count > 0) target = strings[rng.NextInt(strings.Count)];
        switch (op)
        {
            case 0: // delete a key or an array item
                Remove(target);
                break;
            case 1: // another JSON type
                Replace(target, RandomValue(rng, depth: 0));
                break;
            case 2: // huge, negative, fractional, overflowing numbers
                Replace(target, JsonNode.Parse(NumberTexts[rng.NextInt(NumberTexts.Length)]));
                break;
            case 3: // a known word in the wrong place
                Replace(target, JsonValue.Create(Vocabulary[rng.NextInt(Vocabulary.Length)]));
                break;
            case 4: // deep nesting
                Replace(target, Nested(1 + rng.NextInt(120), rng));
                break;
            case 5: // duplicate a key: a placeholder renamed in the text below
                if (ObjectOf(target) is { Count: > 0 } obj)
                {
                    duplicate = obj.ElementAt(rng.NextInt(obj.Count)).Key;
                    obj["__duplicate__"] = RandomValue(rng, depth: 1);
                }
                break;
            case 6: // add an unknown or misspelt key
                if (ObjectOf(target) is { } o)
                    o[o.Count > 0 && rng.NextInt(2) == 0 ? o.ElementAt(rng.NextInt(o.Count)).Key + "s" : Vocabulary[rng.NextInt(Vocabulary.Length)] + "_x"] = RandomValue(rng, 1);
                break;
            case 7: // reorder, drop or repeat model calls (reaches the shape checks)
                if (root["model"]?["calls"] is JsonArray calls && calls.Count > 0)
                {
                    int i = rng.NextInt(calls.Count);
                    var item = calls[i]!.DeepClone();
                    if (rng.NextInt(2) == 0) calls.RemoveAt(i);
                    calls.Insert(rng.NextInt(calls.Count + 1), item);
                }
                break;
            case 9: // a near miss of a word: other case, padding, a list, a number in quotes
                if (target is JsonValue s && s.TryGetValue<string>(out string? word))
                {
                    string other = strings.Count > 0 && strings[rng.NextInt(strings.Count)] is JsonValue o2 && o2.TryGetValue<string>(out string? w2) ? w2 : "x";
                    Replace(target, JsonValue.Create(rng.NextInt(5) switch
                    {
                        0 => word.ToUpperInvariant(),
                        1 => " " + word,
                        2 => word + ", " + other,
                        3 => rng.NextInt(20).ToString(System.Globalization.CultureInfo.InvariantCulture),
                        _ => word + "\u0000",
                    }));
                }
                break;
            case 8: // scale a number up or down, keeping it plausible
                if (target is JsonValue v && v.TryGetValue<double>(out double d))
                    Replace(target, JsonValue.Create(rng.NextInt(2) == 0 ? Math.Round(d * (1 + rng.NextInt(5))) : -d));
                break;
            default:
                break;
        }
        string result = root.ToJsonString();
        if (duplicate is not null) result = result.Replace("\"__duplicate__\"", System.Text.Json.JsonSerializer.Serialize(duplicate));
        return result;
    }

    private static JsonObject? ObjectOf(JsonNode node) => node as JsonObject ?? node.Parent as JsonObject;

    private static void Collect(JsonNode node, List<JsonNode> into)
    {
        into.Add(node);
        switch (node)
        {
            case JsonObject o:
                foreach (var (_, child) in o)
                    if (child is not null) Collect(child, into);
                break;
            case JsonArray a:
                foreach (var child in a)
                    if (child is not null) Collect(child, into);
                break;
        }
    }

    private static void Remove(JsonNode node)
    {
        switch (node.Parent)
        {
            case JsonObject o: o.Remove(node.GetPropertyName()); break;
            case JsonArray a: a.RemoveAt(node.GetElementIndex()); break;
        }
    }

    private static void Replace(JsonNode node, JsonNode? value)
    {
        switch (node.Parent)
        {
            case JsonObject o: o[node.GetPropertyName()] = value; break;
            case JsonArray a: a[node.GetElementIndex()] = value; break;
        }
    }

    private static JsonNode? RandomValue(ParityRandom rng, int depth) => rng.NextInt(depth > 2 ? 4 : 7) switch
    {
        0 => null,
        1 => JsonValue.Create(rng.NextInt(2) == 0),
        2 => JsonNode.Parse(NumberTexts[rng.NextInt(NumberTexts.Length)]),
        3 => JsonValue.Create(Vocabulary[rng.NextInt(Vocabulary.Length)]),
        4 => new JsonArray(RandomValue(rng, depth + 1), RandomValue(rng, depth + 1)),
        5 => new JsonObject { ["type"] = RandomValue(rng, depth + 1), ["name"] = RandomValue(rng, depth + 1) },
        _ => new JsonObject(),
    };

    private static JsonNode Nested(int depth, ParityRandom rng)
    {
        JsonNode node = JsonValue.Create(1);
        for (int i = 0; i < depth; i++)
            node = rng.NextInt(2) == 0 ? new JsonArray(node) : new JsonObject { ["type"] = node };
        return node;
    }

}
