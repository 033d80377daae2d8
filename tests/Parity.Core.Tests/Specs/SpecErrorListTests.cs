using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Parity.Tests;

namespace Parity.Specs.Tests;

/// <summary>
/// One load lists every mistake of a spec, each at its JSON path, without repeating one as its consequences; a
/// feature Parity does not have reads "not supported" with the docs/spec.md section that lists what it has, and a
/// misspelt key or value gets the closest name it could mean.
/// </summary>
public sealed partial class SpecErrorListTests
{
    private static string Mutate(Action<JsonObject> change)
    {
        var root = JsonNode.Parse(SpecLoaderTests.BaseSpec)!.AsObject();
        change(root);
        return root.ToJsonString();
    }

    private static JsonObject Layer(JsonObject root, int i) => root["model"]!["layers"]![i]!.AsObject();

    private static SpecException Rejects(string json) => Assert.Throws<SpecException>(() => SpecLoader.Parse(json))!;

    [Test]
    public void Three_independent_mistakes_are_listed_together_each_at_its_path()
    {
        var e = Rejects(Mutate(r =>
        {
            Layer(r, 0)["out"] = -3;
            r["optimizer"]!["lr"] = -0.1;
            r["data"]!["batchSize"] = 0;
        }));
        Assert.That(e.Errors.Select(x => x.JsonPath), Is.EqualTo(new[] { "$.model.layers[0].out", "$.optimizer.lr", "$.data.batchSize" }),
            "the broken layer's calls are not reported again");
        Assert.That(e.JsonPath, Is.EqualTo("$.model.layers[0].out"), "the first mistake leads");
        Assert.That(e.Message.Split('\n'), Is.EqualTo(e.Errors.Select(x => x.Message)));
        Assert.That(e.Message.Split('\n')[1], Is.EqualTo("$.optimizer.lr: expected a number in (0, 100], found -0.1"));
    }

    [Test]
    public void Every_unknown_key_of_one_object_is_listed_and_the_object_is_still_checked()
    {
        var e = Rejects(Mutate(r =>
        {
            Layer(r, 0)["units"] = 8;
            Layer(r, 0)["activation"] = "relu";
            Layer(r, 0)["in"] = 0;
        }));
        Assert.That(e.Errors.Select(x => x.JsonPath), Is.EqualTo(new[] { "$.model.layers[0].units", "$.model.layers[0].activation", "$.model.layers[0].in" }));
    }

    [Test]
    public void Calls_are_checked_one_by_one()
    {
        var e = Rejects(Mutate(r =>
        {
            r["model"]!["calls"]![0] = "l0";
            Layer(r, 4)["in"] = 9;
        }));
        Assert.That(e.Errors.Select(x => x.Message), Is.EqualTo(new[]
        {
            "$.model.calls[0]: no layer named 'l0'; layers are: l1, bn, relu, l2, l3",
            "$.model.calls[6]: layer 'l3' expects 9 inputs but the previous call produces 8",
            "$.model.calls: layer 'l1' is never called",
        }));
    }

    [Test]
    public void Every_mistake_of_a_file_names_the_file()
    {
        using var dir = new TempDirectory();
        string path = dir.File("two.json");
        File.WriteAllText(path, Mutate(r =>
        {
            r["seed"] = -1;
            r["training"] = new JsonObject();
        }));
        var e = Assert.Throws<SpecException>(() => SpecLoader.LoadFile(path))!;
        Assert.That(e.Errors, Has.Count.EqualTo(2));
        Assert.That(e.Errors, Has.All.Property(nameof(SpecException.File)).EqualTo(path));
        Assert.That(e.Message.Split('\n'), Has.All.StartWith(path + ": $."));
    }

    [Test]
    public void A_spec_with_hundreds_of_mistakes_lists_fifty_and_counts_the_rest()
    {
        var e = Rejects(Mutate(r =>
        {
            for (int i = 0; i < 80; i++) r["data"]!["zz" + i] = 1;
        }));
        Assert.That(e.Errors, Has.Count.EqualTo(51));
        Assert.That(e.Errors[^1].Problem, Does.StartWith("30 more error(s) not listed"));
    }

    [Test]
    public void The_planner_reports_the_data_misfits_together()
    {
        var spec = SpecLoader.Parse(Mutate(r =>
        {
            r["data"]!["train"]!["features"] = 7;
            r["data"]!["batchSize"] = 65;
        }));
        var e = Assert.Throws<SpecException>(() => Planning.Planner.Build(spec))!;
        Assert.That(e.Errors.Select(x => x.Message), Is.EqualTo(new[]
        {
            "$.model.inputs: the model takes 6 inputs but the training data has 7 features (synthetic:teacher(seed=1))",
            "$.data.batchSize: batch size 65 exceeds the 64 training samples",
        }));
    }

    [TestCase("layers[0]", "activation", "\"relu\"", "not supported: 'activation', an activation inside a layer", "activations")]
    [TestCase("layers[1]", "track_running_stats", "false", "not supported: 'track_running_stats'", "batchnorm")]
    [TestCase("optimizer", "amsgrad", "true", "not supported: 'amsgrad'", "adam")]
    [TestCase("layers[2]", "type", "\"conv2d\"", "not supported: layer type 'conv2d', a convolution", "layer-objects")]
    [TestCase("optimizer", "type", "\"adadelta\"", "not supported: optimizer 'adadelta'", "optimizer")]
    [TestCase("data.train", "type", "\"parquet\"", "not supported: data source 'parquet'", "sources")]
    public void A_feature_parity_does_not_have_reads_not_supported_with_its_section(string where, string key, string value, string problem, string anchor)
    {
        var e = Rejects(Mutate(r =>
        {
            var target = where.StartsWith("layers", StringComparison.Ordinal) ? Layer(r, where[7] - '0')
                : where == "optimizer" ? r["optimizer"]!.AsObject() : r["data"]!["train"]!.AsObject();
            target[key] = JsonNode.Parse(value);
        }));
        Assert.That(e.Problem, Does.StartWith(problem), e.Message);
        Assert.That(e.Problem, Does.Contain($"(see docs/spec.md#{anchor})"));
        Assert.That(SpecAnchors(), Does.Contain(anchor));
    }

    [Test]
    public void A_typo_keeps_unknown_key_and_gets_the_closest_key_of_that_object()
    {
        var e = Rejects(Mutate(r =>
        {
            r["optimizer"] = JsonNode.Parse("""{ "type": "sgd", "lr": 0.1, "momentm": 0.9 }""");
            r["data"]!["batch_size"] = 16;
            Layer(r, 2)["type"] = "lienar";
        }));
        Assert.That(e.Errors.Select(x => x.Problem), Has.Some.StartWith("unknown key 'momentm'; did you mean 'momentum'? expected one of: type, lr, momentum"));
        Assert.That(e.Errors.Select(x => x.Problem), Has.Some.StartWith("unknown key 'batch_size'; did you mean 'batchSize'?"));
        Assert.That(e.Errors.Select(x => x.Problem), Has.Some.EndWith("; did you mean 'linear'?"));
    }

    [Test]
    public void Another_frameworks_name_for_a_setting_points_to_the_specs_own()
    {
        var e = Rejects(Mutate(r =>
        {
            Layer(r, 0)["units"] = 8;
            r["optimizer"]!["type"] = "adamw";
        }));
        Assert.That(e.Errors[0].Problem, Does.StartWith("unknown key 'units'; did you mean 'out'? ('units' is the Keras or PyTorch argument)"));
        Assert.That(e.Errors[1].Problem, Does.EndWith("did you mean 'adam'? ('adamw' is adam with a decoupled weightDecay, docs/spec.md#weight-decay)"));
    }

    [Test]
    public void An_unrelated_word_gets_no_suggestion()
    {
        Assert.That(SpecVocabulary.Closest("zzz", ["type", "lr", "momentum"]), Is.Null);
        Assert.That(SpecVocabulary.Closest("bta1", ["beta1", "beta2"]), Is.EqualTo("beta1"));
        Assert.That(SpecVocabulary.Closest("Weight_Decay", ["weightDecay"]), Is.EqualTo("weightDecay"));
    }

    [Test]
    public void Every_section_an_error_cites_exists_in_the_spec_docs()
    {
        var anchors = SpecAnchors();
        Assert.That(SpecVocabulary.ForeignNames.Select(f => f.Anchor).Distinct().Where(a => !anchors.Contains(a)), Is.Empty);
    }

    // GitHub's heading anchors of docs/spec.md: lower case, punctuation dropped, spaces to hyphens.
    private static HashSet<string> SpecAnchors() =>
        Heading().Matches(File.ReadAllText(Repository.Docs("spec.md")))
            .Select(m => new string(m.Groups[1].Value.ToLowerInvariant().Where(c => char.IsLetterOrDigit(c) || c is ' ' or '-' or '_').ToArray()).Replace(' ', '-'))
            .ToHashSet(StringComparer.Ordinal);

    [GeneratedRegex(@"^#{1,6}\s+(.+?)\s*$", RegexOptions.Multiline)]
    private static partial Regex Heading();
}
