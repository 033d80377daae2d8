using System.Text.Json;
using System.Text.Json.Nodes;
using Parity.Tests;

namespace Parity.Specs.Tests;

/// <summary>docs/spec.schema.json against the loader: same keys, and every fixture valid under both.</summary>
public sealed class SpecSchemaTests
{
    private static readonly Lazy<JsonDocument> Schema = new(() => JsonDocument.Parse(File.ReadAllText(Repository.Docs("spec.schema.json"))));

    private static readonly Lazy<SchemaValidator> Validator = new(() => new SchemaValidator(Repository.Docs("spec.schema.json")));

    private static JsonElement Def(string name) => Schema.Value.RootElement.GetProperty("$defs").GetProperty(name);

    private static List<string> Validate(string json)
    {
        using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        return Validator.Value.Validate(doc.RootElement);
    }

    private static IEnumerable<string> SchemaKeys(JsonElement objectSchema) =>
        objectSchema.GetProperty("properties").EnumerateObject().Select(p => p.Name).Where(n => n is not ("$schema" or "comment"));

    // The loader names the keys it accepts when it meets one it does not: ask it, at every level.
    private static IEnumerable<string> LoaderKeys(Action<JsonObject> addUnknownKey)
    {
        var root = JsonNode.Parse(SpecLoaderTests.EveryKeySpec)!.AsObject();
        addUnknownKey(root);
        var e = Assert.Throws<SpecException>(() => SpecLoader.Parse(root.ToJsonString()))!;
        Assert.That(e.Problem, Does.StartWith("unknown key 'zzz'; expected one of: "), e.Message);
        return e.Problem["unknown key 'zzz'; expected one of: ".Length..].Split(", ");
    }

    private static readonly JsonNode Unknown = JsonValue.Create(1);

    private static IEnumerable<TestCaseData> Levels()
    {
        TestCaseData Level(string name, Action<JsonObject> add, Func<JsonElement> schema) =>
            new TestCaseData(add, (Func<IEnumerable<string>>)(() => SchemaKeys(schema()))).SetName("Schema keys match the loader: " + name);
        yield return Level("root", r => r["zzz"] = 1, () => Schema.Value.RootElement);
        yield return Level("model", r => r["model"]!["zzz"] = 1, () => Def("model"));
        yield return Level("linear", r => r["model"]!["layers"]![0]!["zzz"] = 1, () => Def("linear"));
        yield return Level("linear init", r => r["model"]!["layers"]![0]!["init"]!["zzz"] = 1, () => Def("linear").GetProperty("properties").GetProperty("init"));
        yield return Level("initializer object", r => r["model"]!["layers"]![0]!["init"]!["weight"]!["zzz"] = 1, () => Def("initializer").GetProperty("oneOf")[1]);
        yield return Level("batchnorm", r => r["model"]!["layers"]![1]!["zzz"] = 1, () => Def("batchnorm"));
        yield return Level("layernorm", r => r["model"]!["layers"]![2]!["zzz"] = 1, () => Def("layernorm"));
        yield return Level("relu", r => r["model"]!["layers"]![3]!["zzz"] = 1, () => Def("activation"));
        foreach (var (type, settings) in new[] { ("leaky_relu", "\"slope\": 0.01"), ("gelu", "\"approximation\": \"tanh\""), ("elu", "\"alpha\": 1"), ("dropout", "\"p\": 0.25") })
        {
            yield return Level(type, r => r["model"]!["layers"]![3] = JsonNode.Parse($$"""{ "name": "act", "type": "{{type}}", {{settings}}, "zzz": 1 }"""), () => Def(type));
        }
        yield return Level("call", r => r["model"]!["calls"]![1]!["zzz"] = 1, () => Def("call").GetProperty("oneOf")[1]);
        yield return Level("init", r => r["init"]!["zzz"] = 1, () => Def("init"));
        yield return Level("loss", r => r["loss"] = JsonNode.Parse("""{ "type": "mse", "zzz": 1 }"""),
            () => Schema.Value.RootElement.GetProperty("properties").GetProperty("loss").GetProperty("oneOf")[1]);
        yield return Level("adam", r => r["optimizer"]!["zzz"] = 1, () => Def("adam"));
        yield return Level("sgd", r => r["optimizer"] = JsonNode.Parse("""{ "type": "sgd", "lr": 0.1, "zzz": 1 }"""), () => Def("sgd"));
        foreach (var (form, settings) in new[] { ("coupled", "\"rate\": 0.01"), ("decoupled", "\"rate\": 0.01, \"multiplyByLearningRate\": true"), ("l2Loss", "\"coefficient\": 0.01") })
        {
            yield return Level("weight decay " + form, r => r["optimizer"]!["weightDecay"] = JsonNode.Parse(
                $$"""{ "form": "{{form}}", {{settings}}, "parameters": "all", "zzz": 1 }"""),
                () => Def("weightDecay" + char.ToUpperInvariant(form[0]) + form[1..]));
        }
        yield return Level("data", r => r["data"]!["zzz"] = 1, () => Def("data"));
        yield return Level("synthetic", r => r["data"]!["train"]!["zzz"] = 1, () => Def("synthetic"));
        yield return Level("idx", r => r["data"]!["train"] = JsonNode.Parse("""{ "type": "idx", "images": "a", "labels": "b", "zzz": 1 }"""), () => Def("idx"));
        yield return Level("training", r => r["training"]!["zzz"] = 1, () => Def("training"));
        yield return Level("evaluation", r => r["evaluation"]!["zzz"] = 1, () => Def("evaluation"));
        yield return Level("capture", r => r["capture"]!["zzz"] = 1, () => Def("capture"));
        yield return new TestCaseData((Action<JsonObject>)(r => r["capture"]!["steps"]!["zzz"] = 1),
                (Func<IEnumerable<string>>)(() => SchemaKeys(Def("captureSteps").GetProperty("oneOf")[1])))
            .SetName("Schema keys match the loader: capture steps (first, every, last)");
        yield return Level("tolerances", r => r["tolerances"]!["zzz"] = 1, () => Def("tolerances"));
        yield return Level("tolerance of a kind", r => r["tolerances"]!["kinds"]!["forward"]!["zzz"] = 1,
            () => Def("tolerances").GetProperty("properties").GetProperty("kinds").GetProperty("additionalProperties"));
    }

    [TestCaseSource(nameof(Levels))]
    public void Schema_keys_match_the_loader(Action<JsonObject> addUnknownKey, Func<IEnumerable<string>> schemaKeys)
    {
        Assert.That(schemaKeys(), Is.EquivalentTo(LoaderKeys(addUnknownKey)));
    }

    [Test]
    public void The_schema_is_draft_2020_12_and_lists_the_loaders_names()
    {
        var root = Schema.Value.RootElement;
        Assert.That(root.GetProperty("$schema").GetString(), Is.EqualTo("https://json-schema.org/draft/2020-12/schema"));
        Assert.That(root.GetProperty("required").EnumerateArray().Select(e => e.GetString()), Is.EquivalentTo(new[] { "name", "model", "optimizer", "data", "training" }));
        Assert.That(Def("initializer").GetProperty("oneOf")[1].GetProperty("properties").GetProperty("type").GetProperty("enum").EnumerateArray().Select(e => e.GetString()),
            Is.EqualTo(InitializerSpec.Kinds));
        Assert.That(Def("tensorKind").GetProperty("enum").EnumerateArray().Select(e => e.GetString()),
            Is.EqualTo(Enum.GetValues<Tracing.TensorKind>().Select(k => Tracing.TensorKinds.Name(k))));
    }

    [TestCaseSource(typeof(Repository), nameof(Repository.FixtureNames))]
    public void Every_fixture_and_its_canonical_json_are_valid_under_the_schema(string fixture)
    {
        string text = File.ReadAllText(Repository.Fixture(fixture));
        Assert.That(JsonNode.Parse(text)!["$schema"]?.GetValue<string>(), Is.EqualTo("../docs/spec.schema.json"));
        Assert.That(Validate(text), Is.Empty);
        Assert.That(Validate(SpecLoader.LoadFile(Repository.Fixture(fixture)).CanonicalJson), Is.Empty);
    }

    [Test]
    public void The_spec_with_every_key_is_valid_under_the_schema()
    {
        Assert.That(Validate(SpecLoaderTests.EveryKeySpec), Is.Empty);
        Assert.That(Validate(SpecLoader.Parse(SpecLoaderTests.EveryKeySpec).CanonicalJson), Is.Empty);
    }

    [TestCase("""{ "type": "dropout" }""", "$.model.layers[0]")]
    [TestCase("""{ "name": "l1", "type": "linear", "in": 6, "out": -3 }""", "$.model.layers[0].out")]
    [TestCase("""{ "name": "l1", "type": "linear", "in": 6, "out": 8, "units": 8 }""", "$.model.layers[0].units")]
    [TestCase("""{ "name": "l1", "type": "linear", "in": 6, "out": 8, "init": { "weight": "normal" } }""", "$.model.layers[0].init.weight")]
    [TestCase("""{ "name": "l1", "type": "relu", "features": 8 }""", "$.model.layers[0].features")]
    [TestCase("""{ "name": "l.1", "type": "relu" }""", "$.model.layers[0].name")]
    public void The_schema_rejects_layer_mistakes_the_loader_rejects(string layer, string path)
    {
        string json = SpecLoaderTests.BaseSpec.Replace("""{ "name": "l1", "type": "linear", "in": 6, "out": 8 }""", layer);
        Assert.Throws<SpecException>(() => SpecLoader.Parse(json));
        var errors = Validate(json);
        Assert.That(errors, Has.Some.StartsWith(path), string.Join("\n", errors));
    }

    [TestCase("\"training\": { \"steps\": 5 }", "\"training\": { \"steps\": 5, \"epochs\": 1 }")]
    [TestCase("\"batchSize\": 16", "\"batchSize\": \"16\"")]
    [TestCase("\"type\": \"adam\"", "\"type\": \"adadelta\"")]
    [TestCase("\"name\": \"base\",", "")]
    public void The_schema_rejects_other_mistakes_the_loader_rejects(string from, string to)
    {
        string json = SpecLoaderTests.BaseSpec.Replace(from, to);
        Assert.That(json, Is.Not.EqualTo(SpecLoaderTests.BaseSpec));
        Assert.Throws<SpecException>(() => SpecLoader.Parse(json));
        Assert.That(Validate(json), Is.Not.Empty);
    }
}
