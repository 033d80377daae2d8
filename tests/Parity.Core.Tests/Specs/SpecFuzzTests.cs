using System.Diagnostics;
using System.Text.Json.Nodes;
using Parity.Planning;
using Parity.Randomness;
using Parity.Tests;

namespace Parity.Specs.Tests;

/// <summary>
/// Feeds thousands of seeded random mutations of every fixture to the loader (and, when the result is
/// valid and small, to the planner) and requires that each ends in a <see cref="SpecException"/> or a
/// valid spec: never another exception, never a hang.
/// </summary>
public sealed class SpecFuzzTests
{
    private const int MutantsPerSource = 200;
    // Generous: a case takes milliseconds; the limit only has to tell a hang from a machine under load.
    private static readonly TimeSpan PerCaseLimit = TimeSpan.FromSeconds(10);

    // Words that reach deeper into the loader than random text: every enum value it knows.
    private static readonly string[] Vocabulary =
    [
        "linear", "batchnorm", "layernorm", "relu", "identity", "sgd", "adam", "idx", "synthetic", "teacher", "gaussian",
        "float32", "float64", "injected", "framework", "unbiased", "biased", "sqrtVHat", "epsilonHat", "all", "normal",
        "he_normal", "zeros", "forward", "loss", "parameter", "runningMean", "l1", "l2", "bn", "relu", "bn#1", "softmax_cross_entropy",
        "", " ", "\u0000", "\ud800", "x.y", "fashion-mnist:none.gz", "forward, loss", "14", "Forward",
    ];

    private static readonly string[] NumberTexts =
    [
        "0", "-0", "1", "-1", "2", "3", "0.5", "-0.5", "1e-320", "1e308", "-1e308", "1e400", "-1e400", "2147483647", "2147483648",
        "-2147483649", "9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616",
        "99999999999999999999999999999", "1.0", "65536", "65537", "1048577", "100000000", "1e5", "12", "0.9999999999",
    ];

    private static IEnumerable<(string Name, string Text)> Sources() =>
        Repository.FixtureNames().Select(f => (f, File.ReadAllText(Repository.Fixture(f))))
            .Append(("base", SpecLoaderTests.BaseSpec))
            .Append(("every-key", SpecLoaderTests.EveryKeySpec));

    [Test]
    public void Mutated_specs_end_in_a_spec_error_or_a_valid_plan()
    {
        var failures = new List<string>();
        int rejected = 0, loaded = 0, planned = 0, total = 0;
        var clock = Stopwatch.StartNew();
        var slowest = TimeSpan.Zero;
        string slowestCase = "";
        var watch = new CaseWatch();
        var loop = Task.Run(() =>
        {
            foreach (var (name, text) in Sources())
            {
                var rng = ParityRandom.Derive(20261122, "fuzz/" + name);
                // The spec that uses every key reaches every branch of the loader: it gets the most mutants.
                int mutants = name == "every-key" ? 4 * MutantsPerSource : MutantsPerSource;
                for (int i = 0; i < mutants; i++)
                {
                    string mutant = Mutant(text, rng);
                    total++;
                    var started = clock.Elapsed;
                    watch.Begin($"{name} mutant {i}", mutant, started);
                    var outcome = Run(mutant);
                    var took = clock.Elapsed - started;
                    if (took > slowest) (slowest, slowestCase) = (took, $"{name} mutant {i} ({outcome.Kind})");
                    switch (outcome.Kind)
                    {
                        case OutcomeKind.Rejected: rejected++; break;
                        case OutcomeKind.Loaded: loaded++; break;
                        case OutcomeKind.Planned: loaded++; planned++; break;
                        default: failures.Add($"{name} mutant {i}: {outcome.Detail}\n--- spec ---\n{Shorten(mutant)}"); break;
                    }
                }
            }
        });

        // The per-case guard: the cases run inline on one thread (cheap), and this thread fails the test as
        // soon as one case has run longer than the limit, naming it: a hang ends the test, not the test run.
        while (!loop.Wait(50))
        {
            var (current, mutant, since) = watch.Current;
            if (clock.Elapsed - since > PerCaseLimit)
                Assert.Fail($"{current} did not finish within {PerCaseLimit.TotalSeconds} s\n--- spec ---\n{Shorten(mutant)}");
        }
        loop.GetAwaiter().GetResult();

        TestContext.Out.WriteLine($"{total} mutants in {clock.Elapsed.TotalSeconds:F1} s: {rejected} rejected, {loaded} loaded, {planned} planned; slowest {slowest.TotalMilliseconds:F0} ms: {slowestCase}");
        Assert.That(failures, Is.Empty, string.Join("\n\n", failures.Take(5)));
        Assert.That(rejected, Is.GreaterThan(total / 2), "most mutants must be rejected, or the mutations are too weak");
        Assert.That(planned, Is.GreaterThan(0), "some mutants must survive to the planner");
    }

    /// <summary>Which case is running since when, published by the fuzz loop for the watching thread.</summary>
    private sealed class CaseWatch
    {
        private (string Name, string Spec, TimeSpan Since) _current = ("(none)", "", TimeSpan.MaxValue);

        public (string Name, string Spec, TimeSpan Since) Current
        {
            get
            {
                lock (this) return _current;
            }
        }

        public void Begin(string name, string spec, TimeSpan since)
        {
            lock (this) _current = (name, spec, since);
        }
    }

    private enum OutcomeKind { Rejected, Loaded, Planned, Failed }

    private readonly record struct Outcome(OutcomeKind Kind, string Detail = "");

    private static Outcome Run(string mutant)
    {
        ScenarioSpec spec;
        try
        {
            spec = SpecLoader.Parse(mutant);
        }
        catch (SpecException e)
        {
            if (!e.JsonPath.StartsWith('$')) return new Outcome(OutcomeKind.Failed, $"spec error without a JSON path: {e.Message}");
            return new Outcome(OutcomeKind.Rejected);
        }
        catch (Exception e)
        {
            return new Outcome(OutcomeKind.Failed, $"loader threw {e}");
        }

        try
        {
            string again = SpecLoader.Parse(spec.CanonicalJson).CanonicalJson;
            if (again != spec.CanonicalJson) return new Outcome(OutcomeKind.Failed, "canonical JSON does not read back to itself:\n" + spec.CanonicalJson + "\n---\n" + again);
        }
        catch (Exception e)
        {
            return new Outcome(OutcomeKind.Failed, $"canonical JSON does not load: {e}\n{spec.CanonicalJson}");
        }

        if (!SmallSynthetic(spec)) return new Outcome(OutcomeKind.Loaded);
        try
        {
            var plan = Planner.Build(spec);
            plan.BatchFor(1);
            plan.BatchFor(plan.TotalSteps);
            plan.EvalBatch();
            return new Outcome(OutcomeKind.Planned);
        }
        catch (SpecException)
        {
            return new Outcome(OutcomeKind.Rejected);
        }
        catch (Exception e)
        {
            return new Outcome(OutcomeKind.Failed, $"planner threw {e}");
        }
    }

    // The planner test is for the planner's own checks, not for generating big data sets quickly.
    private static bool SmallSynthetic(ScenarioSpec spec)
    {
        static bool Small(DataSourceSpec? s) => s is null || s is SyntheticSourceSpec { Samples: <= 4000 } syn && (long)syn.Samples * syn.Features * syn.Features <= 4_000_000;
        long weights = spec.Model.Layers.OfType<LinearSpec>().Sum(l => (long)l.In * l.Out);
        return spec.Data.Train is SyntheticSourceSpec && Small(spec.Data.Train) && Small(spec.Data.Eval) && weights <= 1_000_000;
    }

    private static string Mutant(string text, ParityRandom rng)
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

    private static string FlipCharacter(string text, ParityRandom rng)
    {
        if (text.Length == 0) return "{";
        int at = rng.NextInt(text.Length);
        const string alphabet = "{}[]\":,0123456789-+.eE \\tnulfasx";
        return text[..at] + alphabet[rng.NextInt(alphabet.Length)] + text[(at + 1)..];
    }

    private static string MutateTree(string text, ParityRandom rng)
    {
        try
        {
            return MutateParsedTree(text, rng);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // JsonNode refuses what an earlier mutation made (a duplicated key, nesting past its writer's depth).
            return FlipCharacter(text, rng);
        }
    }

    private static string MutateParsedTree(string text, ParityRandom rng)
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
        int op = rng.NextInt(10);
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

    private static string Shorten(string s) => s.Length <= 3000 ? s : s[..3000] + "...";
}
