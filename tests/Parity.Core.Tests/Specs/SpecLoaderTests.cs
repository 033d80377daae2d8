using System.Text.Json.Nodes;
using Parity.Models;
using Parity.Planning;
using Parity.Tensors;
using Parity.Tests;
using Parity.Tracing;

namespace Parity.Specs.Tests;

public sealed class SpecLoaderTests
{
    // A small valid spec; each mistake test breaks exactly one thing in it.
    internal const string BaseSpec = """
        {
          "name": "base",
          "seed": 1,
          "model": {
            "inputs": 6,
            "layers": [
              { "name": "l1", "type": "linear", "in": 6, "out": 8 },
              { "name": "bn", "type": "batchnorm", "features": 8, "momentum": 0.1, "eps": 1e-5 },
              { "name": "relu", "type": "relu" },
              { "name": "l2", "type": "linear", "in": 8, "out": 8 },
              { "name": "l3", "type": "linear", "in": 8, "out": 3 }
            ],
            "calls": ["l1", "bn", "relu", "l2", "bn", "relu", "l3"]
          },
          "optimizer": { "type": "adam", "lr": 0.01 },
          "data": {
            "train": { "type": "synthetic", "samples": 64, "features": 6, "classes": 3 },
            "batchSize": 16
          },
          "training": { "steps": 5 }
        }
        """;

    // A spec that uses every key the loader knows (the fuzz test mutates it too).
    internal const string EveryKeySpec = """
        {
          "$schema": "../docs/spec.schema.json",
          "comment": "every key",
          "name": "every-key",
          "description": "All keys",
          "seed": 3,
          "dtype": "float64",
          "model": {
            "inputs": 5,
            "layers": [
              { "name": "l1", "type": "linear", "in": 5, "out": 6, "bias": true, "init": { "weight": { "type": "normal", "std": 0.05 }, "bias": "zeros" } },
              { "name": "bn", "type": "batchnorm", "features": 6, "momentum": 0.2, "eps": 0.001, "runningVariance": "biased", "affine": false },
              { "name": "ln", "type": "layernorm", "features": 6, "eps": 1e-5, "affine": true },
              { "name": "act", "type": "relu" },
              { "name": "id", "type": "identity" },
              { "name": "out", "type": "linear", "in": 6, "out": 3, "bias": false, "init": { "weight": "he_normal_truncated" } }
            ],
            "calls": ["l1", { "layer": "bn", "id": "norm" }, "ln", "act", { "layer": "id" }, "out"]
          },
          "init": { "mode": "framework", "seed": 9 },
          "loss": "softmax_cross_entropy",
          "optimizer": { "type": "adam", "lr": 0.002, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7, "epsilonForm": "epsilonHat" },
          "data": {
            "train": { "type": "synthetic", "generator": "teacher", "samples": 40, "features": 5, "classes": 3, "seed": 4, "teacherSeed": 5 },
            "eval": { "type": "synthetic", "generator": "gaussian", "samples": 30, "features": 5, "classes": 3, "seed": 6 },
            "batchSize": 8,
            "shuffle": true,
            "shuffleSeed": 7,
            "evalLimit": 20
          },
          "training": { "epochs": 3 },
          "evaluation": { "every": 2 },
          "capture": { "steps": { "every": 2, "last": false }, "kinds": ["forward", "batchMean", "parameter", "runningVariance"] },
          "tolerances": { "kinds": { "forward": { "atol": 1e-6, "rtol": 1e-5 }, "parameter": { "atol": 0, "rtol": 0.001 } }, "envelopeMultiple": 4, "envelopeFloor": 1e-7 }
        }
        """;

    private static string Mutate(Action<JsonObject> change)
    {
        var root = JsonNode.Parse(BaseSpec)!.AsObject();
        change(root);
        return root.ToJsonString();
    }

    private static JsonObject Layer(JsonObject root, int i) => root["model"]!["layers"]![i]!.AsObject();

    private static SpecException Rejects(string json)
    {
        var e = Assert.Throws<SpecException>(() => SpecLoader.Parse(json))!;
        Assert.That(e.Message, Does.StartWith(e.JsonPath + ": "), "the message leads with the JSON path");
        return e;
    }

    [TestCaseSource(typeof(Repository), nameof(Repository.FixtureNames))]
    public void Every_fixture_loads_under_its_file_name(string fixture)
    {
        var spec = SpecLoader.LoadFile(Repository.Fixture(fixture));
        Assert.That(spec.Name, Is.EqualTo(Path.GetFileNameWithoutExtension(fixture)));
        Assert.That(spec.BaseDirectory, Is.EqualTo(Repository.FixturesDirectory));
    }

    [Test]
    public void The_spec_hash_ignores_the_description_and_comments_but_not_what_the_spec_computes()
    {
        var root = JsonNode.Parse(File.ReadAllText(Repository.Fixture("synthetic-mlp-bn.json")))!.AsObject();
        string original = SpecLoader.Hash(SpecLoader.Parse(root.ToJsonString()));
        root["description"] = "reworded";
        root["comment"] = "a note";
        Assert.That(SpecLoader.Hash(SpecLoader.Parse(root.ToJsonString())), Is.EqualTo(original));
        root["optimizer"]!["lr"] = 0.0123;
        Assert.That(SpecLoader.Hash(SpecLoader.Parse(root.ToJsonString())), Is.Not.EqualTo(original));
    }

    [TestCaseSource(typeof(Repository), nameof(Repository.FixtureNames))]
    public void Canonical_json_of_every_fixture_reads_back_to_the_same_canonical_json(string fixture)
    {
        var spec = SpecLoader.LoadFile(Repository.Fixture(fixture));
        var again = SpecLoader.Parse(spec.CanonicalJson, spec.BaseDirectory);
        Assert.That(again.CanonicalJson, Is.EqualTo(spec.CanonicalJson));
        Assert.That(SpecLoader.Hash(again), Is.EqualTo(SpecLoader.Hash(spec)));
        Assert.That(again.Model.Calls, Is.EqualTo(spec.Model.Calls));
        Assert.That(again.Optimizer, Is.EqualTo(spec.Optimizer));
        Assert.That(again.Data, Is.EqualTo(spec.Data));
        Assert.That(again.Schedule, Is.EqualTo(spec.Schedule));
    }

    [Test]
    public void A_spec_with_every_key_loads_as_written()
    {
        var spec = SpecLoader.Parse(EveryKeySpec);
        Assert.Multiple(() =>
        {
            Assert.That(spec.DType, Is.EqualTo(DType.Float64));
            Assert.That(spec.Init, Is.EqualTo(new InitSpec(InitMode.Framework, 9)));
            Assert.That(spec.Model.Layer("bn"), Is.EqualTo(new BatchNormSpec("bn", 6, 0.2, 0.001, RunningVarianceEstimator.Biased, false)));
            Assert.That(spec.Model.Layer("out"), Is.EqualTo(new LinearSpec("out", 6, 3, false, new InitializerSpec("he_normal_truncated"), new InitializerSpec("pytorch_default"))));
            Assert.That(((LinearSpec)spec.Model.Layer("l1")).WeightInit, Is.EqualTo(new InitializerSpec("normal", 0.05)));
            Assert.That(spec.Model.Calls.Select(c => c.Id), Is.EqualTo(new[] { "l1", "norm", "ln", "act", "id", "out" }));
            Assert.That(spec.Optimizer, Is.EqualTo(new AdamSpec(0.002, 0.8, 0.99, 1e-7, EpsilonForm.EpsilonHat)));
            Assert.That(spec.Data.Eval, Is.EqualTo(new SyntheticSourceSpec("gaussian", 30, 5, 3, 6, 0)));
            Assert.That(spec.Data.EvalLimit, Is.EqualTo(20));
            Assert.That(spec.Schedule, Is.EqualTo(new ScheduleSpec(null, 3, 2)));
            Assert.That(spec.Capture.Steps, Is.EqualTo(new CaptureSteps(false, 0, 2, false)));
            Assert.That(spec.Capture.Kinds, Is.SupersetOf(new[] { TensorKind.Forward, TensorKind.BatchMean, TensorKind.Loss, TensorKind.EvalAccuracy }));
            Assert.That(spec.Capture.Kinds, Does.Not.Contain(TensorKind.OutputGradient));
            Assert.That(spec.Tolerances!.ByKind["parameter"], Is.EqualTo((0.0, 0.001)));
            Assert.That(spec.Tolerances.EnvelopeMultiple, Is.EqualTo(4));
            Assert.That(spec.Tolerances.EnvelopeFloor, Is.EqualTo(1e-7));
        });
        Assert.That(SpecLoader.Parse(spec.CanonicalJson).CanonicalJson, Is.EqualTo(spec.CanonicalJson));
        var plan = Planner.Build(spec);
        Assert.That(plan.TotalSteps, Is.EqualTo(15), "40 samples in batches of 8, 3 epochs");
        Assert.That(plan.EvalBatch().Size, Is.EqualTo(20));
        Assert.That(Enumerable.Range(1, 15).Where(plan.IsCaptured), Is.EqualTo(new[] { 2, 4, 6, 8, 10, 12, 14 }));
        Assert.That(Enumerable.Range(1, 15).Where(plan.IsEvalStep), Is.EqualTo(new[] { 2, 4, 6, 8, 10, 12, 14, 15 }));
    }

    [Test]
    public void Canonical_json_makes_every_default_explicit()
    {
        var spec = SpecLoader.Parse(BaseSpec);
        var canonical = JsonNode.Parse(spec.CanonicalJson)!;
        Assert.Multiple(() =>
        {
            Assert.That((string?)canonical["dtype"], Is.EqualTo("float32"));
            Assert.That((string?)canonical["init"]!["mode"], Is.EqualTo("injected"));
            Assert.That((ulong?)canonical["init"]!["seed"], Is.EqualTo(1UL), "init seed defaults to the scenario seed");
            Assert.That((double?)canonical["optimizer"]!["beta2"], Is.EqualTo(0.999));
            Assert.That((double?)canonical["optimizer"]!["eps"], Is.EqualTo(1e-8));
            Assert.That((string?)canonical["optimizer"]!["epsilonForm"], Is.EqualTo("sqrtVHat"));
            Assert.That((string?)canonical["model"]!["layers"]![1]!["runningVariance"], Is.EqualTo("unbiased"));
            Assert.That((string?)canonical["model"]!["layers"]![0]!["init"]!["weight"]!["type"], Is.EqualTo("pytorch_default"));
            Assert.That((bool?)canonical["data"]!["shuffle"], Is.True);
            Assert.That((ulong?)canonical["data"]!["shuffleSeed"], Is.EqualTo(1UL));
            Assert.That((string?)canonical["data"]!["train"]!["generator"], Is.EqualTo("teacher"));
            Assert.That((int?)canonical["evaluation"]!["every"], Is.EqualTo(0));
            Assert.That((string?)canonical["capture"]!["steps"], Is.EqualTo("auto"));
            Assert.That(canonical["capture"]!["kinds"]!.AsArray(), Has.Count.EqualTo(TensorKinds.All.Count));
        });
    }

    [Test]
    public void A_shared_instance_gets_call_ids_with_its_call_number()
    {
        var spec = SpecLoader.Parse(BaseSpec);
        Assert.That(spec.Model.Calls.Select(c => c.Id), Is.EqualTo(new[] { "l1", "bn#1", "relu#1", "l2", "bn#2", "relu#2", "l3" }));
        Assert.That(spec.Model.SharedLayers.Select(l => l.Name), Is.EquivalentTo(new[] { "bn", "relu" }));
        var graph = new ModelGraph(spec.Model);
        Assert.That(graph.Shared, Is.EquivalentTo(new[] { "bn", "relu" }));
        Assert.That(graph.BatchNorms.Select(b => b.Name), Is.EqualTo(new[] { "bn" }));
        Assert.That(graph.Calls.Select(c => (c.InWidth, c.OutWidth)),
            Is.EqualTo(new[] { (6, 8), (8, 8), (8, 8), (8, 8), (8, 8), (8, 8), (8, 3) }));
    }

    [Test]
    public void The_cs231n_shared_batchnorm_fixture_names_three_calls_of_one_instance()
    {
        var spec = SpecLoader.LoadFile(Repository.Fixture("cs231n-shared-bn.json"));
        Assert.That(spec.Model.Calls.Where(c => c.Layer == "bn").Select(c => c.Id), Is.EqualTo(new[] { "bn#1", "bn#2", "bn#3" }));
        Assert.That(new ModelGraph(spec.Model).Parameters.Where(p => p.Instance == "bn").Select(p => p.Name), Is.EqualTo(new[] { "bn.gamma", "bn.beta" }));
    }

    [Test]
    public void Explicit_call_ids_are_kept_and_other_calls_fall_back_to_the_layer_name()
    {
        var spec = SpecLoader.Parse(Mutate(r => r["model"]!["calls"] = JsonNode.Parse("""
            ["l1", { "layer": "bn", "id": "bn_after_l1" }, "relu", "l2", { "layer": "bn" }, "relu", "l3"]
            """)));
        Assert.That(spec.Model.Calls.Select(c => c.Id), Is.EqualTo(new[] { "l1", "bn_after_l1", "relu#1", "l2", "bn#2", "relu#2", "l3" }));
        Assert.That(SpecLoader.Parse(spec.CanonicalJson).Model.Calls, Is.EqualTo(spec.Model.Calls));
    }

    [Test]
    public void Identity_insertion_keeps_parameter_names_and_initial_state()
    {
        var plain = Planner.Build(SpecLoader.LoadFile(Repository.Fixture("seed002-no-identity.json")));
        var identity = Planner.Build(SpecLoader.LoadFile(Repository.Fixture("seed002-identity.json")));
        Assert.That(identity.Graph.Calls.Select(c => c.Id), Is.EqualTo(new[] { "dense", "activation", "dense_1" }));
        Assert.That(identity.InitialState.Entries.Select(e => e.Key), Is.EqualTo(plain.InitialState.Entries.Select(e => e.Key)));
        for (int i = 0; i < plain.InitialState.Entries.Count; i++)
            Assert.That(identity.InitialState.Entries[i].Value.Data, Is.EqualTo(plain.InitialState.Entries[i].Value.Data));
        Assert.That(identity.BatchFor(7).Inputs.Data, Is.EqualTo(plain.BatchFor(7).Inputs.Data));
        Assert.That(plain.TotalSteps, Is.EqualTo(180), "90 samples in batches of 10, 20 epochs");
    }

    [Test]
    public void Syntax_errors_name_the_line()
    {
        var e = Rejects(BaseSpec[..200]);
        Assert.That(e.JsonPath, Is.EqualTo("$"));
        Assert.That(e.Problem, Does.StartWith("not valid JSON (line "));
        Assert.That(Rejects("").JsonPath, Is.EqualTo("$"));
        Assert.That(Rejects("{\"name\": NaN}").Problem, Does.Contain("not valid JSON"));
    }

    // Each case: a mutation of BaseSpec, the JSON path the error must name, a fragment of its message.
    private static IEnumerable<TestCaseData> Mistakes()
    {
        TestCaseData Case(string name, Action<JsonObject> change, string path, string fragment) =>
            new TestCaseData(change, path, fragment).SetName("Mistake: " + name);

        yield return Case("unknown layer type", r => Layer(r, 2)["type"] = "conv2d", "$.model.layers[2].type", "'conv2d' is not one of: linear");
        yield return Case("leaky_relu without its slope", r => Layer(r, 2)["type"] = "leaky_relu", "$.model.layers[2]", "give the negative 'slope' explicitly");
        yield return Case("leaky_relu slope above 1", r => r["model"]!["layers"]![2] = JsonNode.Parse("""{ "name": "relu", "type": "leaky_relu", "slope": 3 }"""),
            "$.model.layers[2].slope", "found 3");
        yield return Case("unknown gelu approximation", r => r["model"]!["layers"]![2] = JsonNode.Parse("""{ "name": "relu", "type": "gelu", "approximation": "sigmoid" }"""),
            "$.model.layers[2].approximation", "'sigmoid' is not one of: exact, tanh");
        yield return Case("elu alpha 0", r => r["model"]!["layers"]![2] = JsonNode.Parse("""{ "name": "relu", "type": "elu", "alpha": 0 }"""),
            "$.model.layers[2].alpha", "found 0");
        yield return Case("slope on a tanh", r => r["model"]!["layers"]![2] = JsonNode.Parse("""{ "name": "relu", "type": "tanh", "slope": 0.1 }"""),
            "$.model.layers[2].slope", "unknown key 'slope'");
        yield return Case("unknown top-level key", r => r["optimiser"] = 1, "$.optimiser", "unknown key 'optimiser'");
        yield return Case("unknown layer key", r => Layer(r, 0)["units"] = 8, "$.model.layers[0].units", "unknown key 'units'");
        yield return Case("key of another layer type", r => Layer(r, 2)["features"] = 8, "$.model.layers[2].features", "unknown key");
        yield return Case("odd key is quoted in the path", r => r["data"]!["a b"] = 1, "$.data['a b']", "unknown key 'a b'");
        yield return Case("shape mismatch between calls", r => Layer(r, 3)["in"] = 7, "$.model.calls[3]", "expects 7 inputs but the previous call produces 8");
        yield return Case("shared batchnorm at two widths", r =>
        {
            Layer(r, 3)["out"] = 5;
            Layer(r, 4)["in"] = 5;
        }, "$.model.calls[4]", "has 8 features but its input has 5");
        yield return Case("negative width", r => Layer(r, 0)["out"] = -3, "$.model.layers[0].out", "expected an integer in 1..65536, found -3");
        yield return Case("zero batch size", r => r["data"]!["batchSize"] = 0, "$.data.batchSize", "found 0");
        yield return Case("negative seed", r => r["seed"] = -1, "$.seed", "non-negative integer seed");
        yield return Case("negative learning rate", r => r["optimizer"]!["lr"] = -0.1, "$.optimizer.lr", "expected a number in (0, 100]");
        yield return Case("missing model", r => r.Remove("model"), "$.model", "required key is missing");
        yield return Case("missing name", r => r.Remove("name"), "$.name", "required key is missing");
        yield return Case("missing layer type", r => Layer(r, 0).Remove("type"), "$.model.layers[0].type", "required key is missing");
        yield return Case("missing optimizer type", r => r["optimizer"]!.AsObject().Remove("type"), "$.optimizer.type", "required key is missing");
        yield return Case("missing layer width", r => Layer(r, 0).Remove("in"), "$.model.layers[0].in", "required key is missing");
        yield return Case("missing schedule", r => r["training"] = new JsonObject(), "$.training", "exactly one of 'steps' or 'epochs'");
        yield return Case("steps and epochs", r => r["training"]!["epochs"] = 2, "$.training", "exactly one of 'steps' or 'epochs'");
        yield return Case("unknown optimizer", r => r["optimizer"]!["type"] = "adadelta", "$.optimizer.type", "'adadelta' is not one of: sgd, adam, rmsprop, adagrad");
        yield return Case("adagrad without eps or accumulator", r => r["optimizer"] = JsonNode.Parse("""{ "type": "adagrad", "eps": 0 }"""),
            "$.optimizer.eps", "eps 0 needs initialAccumulator > 0");
        yield return Case("unknown epsilon placement", r => r["optimizer"] = JsonNode.Parse("""{ "type": "rmsprop", "epsilonPlacement": "under" }"""),
            "$.optimizer.epsilonPlacement", "not one of: outside, inside");
        yield return Case("adam key on rmsprop", r => r["optimizer"] = JsonNode.Parse("""{ "type": "rmsprop", "beta1": 0.9 }"""),
            "$.optimizer.beta1", "expected one of: type, lr, rho, eps, epsilonPlacement, meanSquareInit, momentum, centered");
        yield return Case("adam key on sgd", r =>
        {
            r["optimizer"]!["type"] = "sgd";
            r["optimizer"]!["beta1"] = 0.9;
        }, "$.optimizer.beta1", "unknown key 'beta1'; expected one of: type, lr, momentum");
        yield return Case("unknown epsilon form", r => r["optimizer"]!["epsilonForm"] = "keras", "$.optimizer.epsilonForm", "not one of: sqrtVHat, epsilonHat");
        yield return Case("string for an integer", r => r["data"]!["batchSize"] = "16", "$.data.batchSize", "found the string \"16\"");
        yield return Case("fraction for an integer", r => r["data"]!["batchSize"] = 16.5, "$.data.batchSize", "found the number 16.5");
        yield return Case("number for a boolean", r => r["data"]!["shuffle"] = 1, "$.data.shuffle", "expected true or false");
        yield return Case("object for an array", r => r["model"]!["layers"] = new JsonObject(), "$.model.layers", "expected an array, found an object");
        yield return Case("array for an object", r => r["optimizer"] = new JsonArray(), "$.optimizer", "expected an object, found an array");
        yield return Case("string for a number", r => Layer(r, 1)["momentum"] = "0.1", "$.model.layers[1].momentum", "expected a number in [0, 1]");
        yield return Case("NaN as a string", r => r["optimizer"]!["lr"] = "NaN", "$.optimizer.lr", "found the string \"NaN\"");
        yield return Case("number for a call", r => r["model"]!["calls"]![0] = 3, "$.model.calls[0]", "expected an object");
        yield return Case("huge integer", r => r["data"]!["batchSize"] = JsonNode.Parse("1e30"), "$.data.batchSize", "expected an integer");
        yield return Case("huge width", r => Layer(r, 0)["out"] = 100_000_000_000L, "$.model.layers[0].out", "found 100000000000");
        yield return Case("overflowing number", r => r["optimizer"]!["lr"] = JsonNode.Parse("1e400"), "$.optimizer.lr", "expected a number");
        yield return Case("huge seed", r => r["seed"] = JsonNode.Parse("184467440737095516160"), "$.seed", "non-negative integer seed");
        yield return Case("huge weight matrix", r =>
        {
            Layer(r, 0)["out"] = 60000;
            Layer(r, 1)["features"] = 60000;
            Layer(r, 3)["in"] = 60000;
            Layer(r, 3)["out"] = 60000;
        }, "$.model.layers[3]", "exceed the limit");
        yield return Case("huge synthetic set", r =>
        {
            r["data"]!["train"]!["samples"] = 10_000_000;
            r["data"]!["train"]!["features"] = 100;
        }, "$.data.train", "exceed the limit");
        yield return Case("teacher too wide", r =>
        {
            r["data"]!["train"]!["features"] = 65536;
            r["data"]!["train"]!["samples"] = 10;
        }, "$.data.train.features", "use fewer features or the 'gaussian' generator");
        yield return Case("teacher too slow", r =>
        {
            r["data"]!["train"]!["features"] = 2000;
            r["data"]!["train"]!["samples"] = 100_000;
        }, "$.data.train.samples", "multiply-adds");
        yield return Case("momentum above 1", r => Layer(r, 1)["momentum"] = 1.5, "$.model.layers[1].momentum", "found 1.5");
        yield return Case("zero eps", r => Layer(r, 1)["eps"] = 0, "$.model.layers[1].eps", "expected a number in (0, 1]");
        yield return Case("unknown running variance", r => Layer(r, 1)["runningVariance"] = "sample", "$.model.layers[1].runningVariance", "not one of: unbiased, biased");
        yield return Case("unknown dtype", r => r["dtype"] = "float16", "$.dtype", "not one of: float32, float64");
        yield return Case("unknown loss", r => r["loss"] = "hinge", "$.loss", "not supported: loss 'hinge'");
        yield return Case("call of a missing layer", r => r["model"]!["calls"]![6] = "l4", "$.model.calls[6]", "no layer named 'l4'");
        yield return Case("layer never called", r => r["model"]!["calls"]!.AsArray().RemoveAt(6), "$.model.calls", "layer 'l3' is never called");
        yield return Case("duplicate layer name", r => Layer(r, 4)["name"] = "l2", "$.model.layers[4].name", "duplicate layer name 'l2'");
        yield return Case("dot in a layer name", r => Layer(r, 0)["name"] = "l.1", "$.model.layers[0].name", "without '.'");
        yield return Case("empty layer list", r => r["model"]!["layers"] = new JsonArray(), "$.model.layers", "expected 1..1000 items, found 0");
        yield return Case("call id used twice", r => r["model"]!["calls"]![0] = JsonNode.Parse("""{ "layer": "l1", "id": "l2" }"""), "$.model.calls[3]", "call id 'l2' is empty or used twice");
        yield return Case("unknown initializer", r => Layer(r, 0)["init"] = JsonNode.Parse("""{ "weight": "xavier" }"""), "$.model.layers[0].init.weight", "unknown initializer 'xavier'");
        yield return Case("normal initializer without std", r => Layer(r, 0)["init"] = JsonNode.Parse("""{ "weight": "normal" }"""), "$.model.layers[0].init.weight", "needs a standard deviation");
        yield return Case("unknown tensor kind", r => r["capture"] = JsonNode.Parse("""{ "kinds": ["forward", "activations"] }"""), "$.capture.kinds[1]", "unknown tensor kind 'activations'");
        yield return Case("flag-combination tensor kind", r => r["capture"] = JsonNode.Parse("""{ "kinds": ["forward, loss"] }"""), "$.capture.kinds[0]", "unknown tensor kind");
        yield return Case("numeric tensor kind", r => r["capture"] = JsonNode.Parse("""{ "kinds": [" 3"] }"""), "$.capture.kinds[0]", "unknown tensor kind");
        yield return Case("capture neither every nor first", r => r["capture"] = JsonNode.Parse("""{ "steps": { "last": true } }"""), "$.capture.steps", "give 'first', 'every' or both");
        yield return Case("capture steps word", r => r["capture"] = JsonNode.Parse("""{ "steps": "some" }"""), "$.capture.steps", "expected \"all\"");
        yield return Case("tolerance for an unknown kind", r => r["tolerances"] = JsonNode.Parse("""{ "kinds": { "weights": { "atol": 1, "rtol": 1 } } }"""), "$.tolerances.kinds.weights", "unknown tensor kind 'weights'");
        yield return Case("unknown data source", r => r["data"]!["train"]!["type"] = "parquet", "$.data.train.type", "not one of: idx, synthetic, csv, npy, npz");
        yield return Case("empty idx path", r => r["data"]!["train"] = JsonNode.Parse("""{ "type": "idx", "images": "", "labels": "y" }"""), "$.data.train.images", "expected a file path");
        yield return Case("one class", r => r["data"]!["train"]!["classes"] = 1, "$.data.train.classes", "expected an integer in 2..10000");
        yield return Case("empty name", r => r["name"] = "", "$.name", "use 1..200 ASCII letters, digits");
        yield return Case("name that leaves the output folder", r => r["name"] = "../../escaped", "$.name", "(found \"../../escaped\")");
        yield return Case("absolute name", r => r["name"] = "/some/abs/dir", "$.name", "names its output folder");
        yield return Case("dot name", r => r["name"] = ".", "$.name", "not starting with '.'");
        yield return Case("NUL in the name", r => r["name"] = "a\u0000b", "$.name", "(found \"a\\u0000b\")");
        yield return Case("200 CJK characters", r => r["name"] = new string('\u6771', 200), "$.name", "names its output folder");
        yield return Case("eval batch size 0", r => r["evaluation"] = JsonNode.Parse("""{ "batchSize": 0 }"""), "$.evaluation.batchSize", "expected an integer in 1..1048576");
        yield return Case("empty root object", r => r.Clear(), "$.name", "required key is missing");
    }

    [TestCaseSource(nameof(Mistakes))]
    public void A_mistake_names_its_json_path(Action<JsonObject> change, string path, string fragment)
    {
        var e = Rejects(Mutate(change));
        Assert.That(e.JsonPath, Is.EqualTo(path), e.Message);
        Assert.That(e.Problem, Does.Contain(fragment), e.Message);
    }

    [TestCase("""{ "name": "a", "name": "b" }""", "$.name")]
    [TestCase("""{ "name": "a", "model": { "inputs": 3, "inputs": 4 } }""", "$.model.inputs")]
    public void A_duplicated_key_is_rejected_at_its_path(string json, string path)
    {
        var e = Rejects(json);
        Assert.That(e.JsonPath, Is.EqualTo(path));
        Assert.That(e.Problem, Does.Contain("duplicate key"));
    }

    [Test]
    public void A_root_that_is_not_an_object_is_rejected()
    {
        Assert.That(Rejects("[1, 2]").Problem, Is.EqualTo("expected an object, found an array"));
        Assert.That(Rejects("42").JsonPath, Is.EqualTo("$"));
    }

    [Test]
    public void Nesting_beyond_the_depth_limit_is_a_syntax_error_not_a_crash()
    {
        string deep = "{\"name\": " + new string('[', 100_000) + new string(']', 100_000) + "}";
        Assert.That(Rejects(deep).Problem, Does.Contain("not valid JSON"));
    }

    [Test]
    public void A_missing_spec_file_is_a_spec_error_naming_the_file()
    {
        var e = Assert.Throws<SpecException>(() => SpecLoader.LoadFile("/nonexistent/spec.json"))!;
        Assert.That(e.File, Is.EqualTo("/nonexistent/spec.json"));
        Assert.That(e.Message, Does.StartWith("/nonexistent/spec.json: $: cannot read the spec file"));
    }

    [Test]
    public void A_mistake_in_a_file_names_the_file_and_the_path()
    {
        using var dir = new TempDirectory();
        string path = dir.File("broken.json");
        File.WriteAllText(path, Mutate(r => Layer(r, 3)["in"] = 7));
        var e = Assert.Throws<SpecException>(() => SpecLoader.LoadFile(path))!;
        Assert.That(e.Message, Does.StartWith(path + ": $.model.calls[3]: "));
    }

    [Test]
    public void Invalid_utf8_is_an_error_at_its_byte_offset_not_a_replacement_character()
    {
        // The finding: FF FE before the name were read as "\ufffd\ufffdbase" and the run went ahead.
        using var dir = new TempDirectory();
        byte[] text = System.Text.Encoding.UTF8.GetBytes(BaseSpec);
        int at = BaseSpec.IndexOf("base", StringComparison.Ordinal);
        File.WriteAllBytes(dir.File("x.json"), [.. text[..at], 0xFF, 0xFE, .. text[at..]]);
        var e = Assert.Throws<SpecException>(() => SpecLoader.LoadFile(dir.File("x.json")))!;
        Assert.That(e.Message, Is.EqualTo($"{dir.File("x.json")}: $: the file is not valid UTF-8: invalid bytes at byte offset {at}"));

        File.WriteAllBytes(dir.File("y.json"), [.. text[..at], 0xC3, .. text[at..]]);
        Assert.That(Assert.Throws<SpecException>(() => SpecLoader.LoadFile(dir.File("y.json")))!.Problem, Does.EndWith($"byte offset {at}"));
    }

    [Test]
    public void A_byte_order_mark_is_honoured_and_utf16_with_its_mark_reads_like_utf8()
    {
        using var dir = new TempDirectory();
        var utf8 = System.Text.Encoding.UTF8;
        File.WriteAllBytes(dir.File("bom.json"), [0xEF, 0xBB, 0xBF, .. utf8.GetBytes(BaseSpec)]);
        File.WriteAllBytes(dir.File("utf16.json"), [0xFF, 0xFE, .. System.Text.Encoding.Unicode.GetBytes(BaseSpec)]);
        string canonical = SpecLoader.Parse(BaseSpec).CanonicalJson;
        Assert.That(SpecLoader.LoadFile(dir.File("bom.json")).CanonicalJson, Is.EqualTo(canonical));
        Assert.That(SpecLoader.LoadFile(dir.File("utf16.json")).CanonicalJson, Is.EqualTo(canonical));

        // A lone high surrogate in UTF-16 is as invalid as a stray byte in UTF-8.
        File.WriteAllBytes(dir.File("bad16.json"), [0xFF, 0xFE, .. System.Text.Encoding.Unicode.GetBytes(BaseSpec[..10]), 0x00, 0xD8, 0x41, 0x00]);
        Assert.That(Assert.Throws<SpecException>(() => SpecLoader.LoadFile(dir.File("bad16.json")))!.Problem, Does.StartWith("the file is not valid UTF-16"));
    }

    [Test]
    public void A_batch_of_one_is_refused_in_a_model_with_batchnorm_and_accepted_without()
    {
        var e = Rejects(Mutate(r => r["data"]!["batchSize"] = 1));
        Assert.That((e.JsonPath, e.Problem), Is.EqualTo(("$.data.batchSize",
            "expected at least 2 in a model with batchnorm layer 'bn': a batch of one sample has no batch variance to normalize with")));

        var withoutBatchNorm = Mutate(r =>
        {
            r["data"]!["batchSize"] = 1;
            var model = r["model"]!.AsObject();
            var layers = model["layers"]!.AsArray();
            layers.Remove(layers.First(l => (string?)l!["type"] == "batchnorm"));
            model["calls"] = new JsonArray([.. model["calls"]!.AsArray().Where(c => (string?)c != "bn").Select(c => (JsonNode?)JsonValue.Create((string?)c))]);
        });
        Assert.That(SpecLoader.Parse(withoutBatchNorm).Data.BatchSize, Is.EqualTo(1));
    }

    [Test]
    public void The_evaluation_batch_size_reads_back_from_the_canonical_json_and_is_absent_when_not_given()
    {
        var spec = SpecLoader.Parse(Mutate(r => r["evaluation"] = JsonNode.Parse("""{ "every": 2, "batchSize": 7 }""")));
        Assert.That(spec.Schedule.EvalBatchSize, Is.EqualTo(7));
        Assert.That(SpecLoader.Parse(spec.CanonicalJson).Schedule.EvalBatchSize, Is.EqualTo(7));
        Assert.That(SpecLoader.Parse(BaseSpec).CanonicalJson, Does.Not.Contain("\"batchSize\": 7").And.Not.Contain("\"evaluation\":{\"every\":0,\"batchSize\""),
            "a spec without it keeps its canonical JSON, so its hash and baselines stay valid");
    }

    [Test]
    public void A_missing_data_file_is_rejected_by_the_planner_at_the_data_path()
    {
        using var dir = new TempDirectory();
        var spec = SpecLoader.Parse(Mutate(r =>
            r["data"]!["train"] = JsonNode.Parse("""{ "type": "idx", "images": "missing-images.gz", "labels": "missing-labels.gz" }""")), dir.Path);
        var e = Assert.Throws<SpecException>(() => Planner.Build(spec))!;
        Assert.That(e.JsonPath, Is.EqualTo("$.data.train"));
        Assert.That(e.Problem, Does.Contain("missing-images.gz"));
    }

    [Test]
    public void Data_that_does_not_fit_the_model_is_rejected_by_the_planner()
    {
        var features = Assert.Throws<SpecException>(() => Planner.Build(SpecLoader.Parse(Mutate(r => r["data"]!["train"]!["features"] = 5))))!;
        Assert.That(features.JsonPath, Is.EqualTo("$.model.inputs"));
        var classes = Assert.Throws<SpecException>(() => Planner.Build(SpecLoader.Parse(Mutate(r => r["data"]!["train"]!["classes"] = 4))))!;
        Assert.That(classes.JsonPath, Is.EqualTo("$.model.calls"));
        Assert.That(classes.Problem, Does.Contain("outputs 3 values but the data has 4 classes"));
        var evalClasses = Assert.Throws<SpecException>(() => Planner.Build(SpecLoader.Parse(Mutate(r =>
            r["data"]!["eval"] = JsonNode.Parse("""{ "type": "synthetic", "samples": 20, "features": 6, "classes": 4 }""")))))!;
        Assert.That(evalClasses.JsonPath, Is.EqualTo("$.data.eval"));
        var batch = Assert.Throws<SpecException>(() => Planner.Build(SpecLoader.Parse(Mutate(r => r["data"]!["batchSize"] = 65))))!;
        Assert.That(batch.JsonPath, Is.EqualTo("$.data.batchSize"));
    }

    [Test]
    public void An_epoch_count_too_large_to_count_steps_is_a_spec_error()
    {
        var spec = SpecLoader.Parse(Mutate(r =>
        {
            r["training"] = JsonNode.Parse("""{ "epochs": 1000000 }""");
            r["data"]!["batchSize"] = 2;
            r["data"]!["train"]!["samples"] = 20000;
        }));
        var e = Assert.Throws<SpecException>(() => Planner.Build(spec))!;
        Assert.That(e.JsonPath, Is.EqualTo("$.training.epochs"));
    }

    [Test]
    public void Tensor_kind_names_ignore_letter_case_but_not_spelling()
    {
        var spec = SpecLoader.Parse(Mutate(r =>
        {
            r["capture"] = JsonNode.Parse("""{ "kinds": ["Forward", "RUNNINGMEAN"] }""");
            r["tolerances"] = JsonNode.Parse("""{ "kinds": { "Parameter": { "atol": 0, "rtol": 0.001 } } }""");
        }));
        Assert.That(spec.Capture.Kinds, Is.SupersetOf(new[] { TensorKind.Forward, TensorKind.RunningMean }));
        Assert.That(spec.Tolerances!.ByKind.Keys, Is.EqualTo(new[] { "parameter" }));
        var twice = Rejects(Mutate(r => r["tolerances"] = JsonNode.Parse("""{ "kinds": { "forward": { "atol": 0, "rtol": 0 }, "Forward": { "atol": 1, "rtol": 1 } } }""")));
        Assert.That(twice.JsonPath, Is.EqualTo("$.tolerances.kinds.Forward"));
        Assert.That(twice.Problem, Does.Contain("given twice"));
        Assert.That(TensorKinds.TryParse("trainAccuracy, evalOutput"), Is.Null, "not an enum flag combination");
        Assert.That(TensorKinds.TryParse("3"), Is.Null);
    }

    [Test]
    public void Rmsprop_and_adagrad_settings_are_explicit_in_the_canonical_json_and_read_back()
    {
        var rmsprop = SpecLoader.LoadFile(Repository.Fixture("synthetic-rmsprop.json"));
        Assert.That(rmsprop.Optimizer, Is.EqualTo(new RmspropSpec(0.002, 0.9, 1e-6, EpsilonPlacement.Outside, 0, 0.5, true)));
        Assert.That(rmsprop.Optimizer.Slots, Is.EqualTo(new[] { "meanSquare", "momentum", "meanGradient" }));
        Assert.That(SpecLoader.Parse(rmsprop.CanonicalJson).Optimizer, Is.EqualTo(rmsprop.Optimizer));
        var adagrad = SpecLoader.LoadFile(Repository.Fixture("synthetic-adagrad.json"));
        Assert.That(adagrad.Optimizer, Is.EqualTo(new AdagradSpec(0.05, 0.1, 0, EpsilonPlacement.Outside)));
        Assert.That(adagrad.Optimizer.SlotInitialValue("accumulator"), Is.EqualTo(0.1));
        // The defaults are PyTorch's, written out.
        var defaults = SpecLoader.Parse(Mutate(r => r["optimizer"] = JsonNode.Parse("""{ "type": "rmsprop" }""")));
        Assert.That(defaults.Optimizer, Is.EqualTo(new RmspropSpec(0.01, 0.99, 1e-8, EpsilonPlacement.Outside, 0, 0, false)));
        Assert.That(defaults.Optimizer.Slots, Is.EqualTo(new[] { "meanSquare" }));
        Assert.That(defaults.CanonicalJson, Does.Contain("\"epsilonPlacement\": \"outside\"").And.Contain("\"meanSquareInit\": 0"));
        var tf1 = SpecLoader.Parse(Mutate(r => r["optimizer"] = JsonNode.Parse("""{ "type": "adagrad" }""")));
        Assert.That(tf1.Optimizer, Is.EqualTo(new AdagradSpec(0.01, 0, 1e-10, EpsilonPlacement.Outside)));
    }

    [Test]
    public void Activation_settings_are_explicit_in_the_canonical_json_and_read_back()
    {
        var spec = SpecLoader.LoadFile(Repository.Fixture("synthetic-activations.json"));
        Assert.That(spec.Model.Layers.OfType<ActivationSpec>().Select(a => (a.Function, a.Parameter)), Is.EqualTo(new[]
        {
            (ActivationFunction.GeluExact, 0.0), (ActivationFunction.LeakyRelu, 0.1), (ActivationFunction.Elu, 1.0), (ActivationFunction.Silu, 0.0),
            (ActivationFunction.Tanh, 0.0), (ActivationFunction.Sigmoid, 0.0), (ActivationFunction.GeluTanh, 0.0),
        }));
        var gelu = SpecLoader.Parse(Mutate(r => r["model"]!["layers"]![2] = JsonNode.Parse("""{ "name": "relu", "type": "gelu" }""")));
        Assert.That(gelu.CanonicalJson, Does.Contain("\"approximation\": \"exact\""), "the default approximation is written out");
        var elu = SpecLoader.Parse(Mutate(r => r["model"]!["layers"]![2] = JsonNode.Parse("""{ "name": "relu", "type": "elu" }""")));
        Assert.That(((EluSpec)elu.Model.Layer("relu")).Alpha, Is.EqualTo(1.0));
        Assert.That(elu.CanonicalJson, Does.Contain("\"alpha\": 1"));
    }

    [TestCase("""{ "form": "coupled", "rate": 0.01, "parameters": "all" }""", 0.01, WeightDecayForm.Coupled, DecayedParameters.All, true)]
    [TestCase("""{ "form": "decoupled", "rate": 0.004, "multiplyByLearningRate": false, "parameters": "weights" }""", 0.004, WeightDecayForm.Decoupled, DecayedParameters.Weights, false)]
    [TestCase("""{ "form": "l2Loss", "coefficient": 0.005, "parameters": "weights" }""", 0.005, WeightDecayForm.L2Loss, DecayedParameters.Weights, true)]
    public void Weight_decay_loads_every_form_and_the_canonical_json_writes_every_setting(string json, double rate, WeightDecayForm form, DecayedParameters parameters, bool byLr)
    {
        var spec = SpecLoader.Parse(Mutate(r => r["optimizer"]!["weightDecay"] = JsonNode.Parse(json)));
        Assert.That(spec.Optimizer.WeightDecay, Is.EqualTo(new WeightDecaySpec(rate, form, parameters, byLr)));
        var written = JsonNode.Parse(spec.CanonicalJson)!["optimizer"]!["weightDecay"]!;
        Assert.That(JsonNode.DeepEquals(written, JsonNode.Parse(json)), Is.True, written.ToJsonString());
        Assert.That(SpecLoader.Parse(spec.CanonicalJson).Optimizer, Is.EqualTo(spec.Optimizer), "read back as written");
    }

    [TestCase("""{ "form": "l2Loss", "rate": 0.01, "parameters": "all" }""", "$.optimizer.weightDecay.rate", "takes 'coefficient'")]
    [TestCase("""{ "form": "decoupled", "rate": 0.01, "parameters": "all" }""", "$.optimizer.weightDecay.multiplyByLearningRate", "required key is missing: true shrinks by lr*rate")]
    [TestCase("""{ "form": "coupled", "rate": 0.01 }""", "$.optimizer.weightDecay.parameters", "required key is missing")]
    [TestCase("""{ "form": "coupled", "rate": 0.01, "parameters": "all", "multiplyByLearningRate": true }""", "$.optimizer.weightDecay.multiplyByLearningRate", "unknown key")]
    [TestCase("""{ "form": "adamw", "rate": 0.01, "parameters": "all" }""", "$.optimizer.weightDecay.form", "'adamw' is not one of: coupled, decoupled, l2Loss")]
    [TestCase("""{ "form": "coupled", "rate": 0, "parameters": "all" }""", "$.optimizer.weightDecay.rate", "expected a number in (0, 1]")]
    public void A_weight_decay_that_leaves_a_convention_unsaid_is_refused_at_its_path(string json, string path, string problem)
    {
        var e = Rejects(Mutate(r => r["optimizer"]!["weightDecay"] = JsonNode.Parse(json)));
        Assert.That(e.JsonPath, Is.EqualTo(path));
        Assert.That(e.Problem, Does.Contain(problem));
    }

    [Test]
    public void Schedule_clipping_nesterov_and_momentum_form_read_back_from_the_canonical_json()
    {
        var spec = SpecLoader.LoadFile(Repository.Fixture("synthetic-schedule-clip.json"));
        var sgd = (SgdSpec)spec.Optimizer;
        Assert.That((sgd.Nesterov, sgd.MomentumForm), Is.EqualTo((true, MomentumForm.PyTorch)));
        Assert.That(sgd.Schedule, Is.EqualTo(new ExponentialSchedule(4, 0.5, true)));
        Assert.That(sgd.Clipping, Is.EqualTo(new GradientClipping(ClipScope.GlobalNorm, 1.2, 1e-6)));
        // Update k (0-based) runs at lr(k): updates 0-3 at 0.2, 4-7 at 0.1, 8-11 at 0.05.
        Assert.That(Enumerable.Range(0, 12).Select(sgd.LearningRateAt), Is.EqualTo(new[] { 0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05 }));
        var again = SpecLoader.Parse(spec.CanonicalJson);
        Assert.That(again.Optimizer, Is.EqualTo(spec.Optimizer));
        Assert.That(again.CanonicalJson, Is.EqualTo(spec.CanonicalJson));

        var keras = SpecLoader.Parse(Mutate(r => r["optimizer"] = JsonNode.Parse("""
            { "type": "adam", "lr": 0.1, "schedule": { "type": "cosine", "decaySteps": 10, "minLr": 0.01 }, "clip": { "type": "norm", "maxNorm": 2 } }
            """)));
        Assert.That(keras.Optimizer.Schedule, Is.EqualTo(new CosineSchedule(10, 0.01)));
        Assert.That(keras.Optimizer.Clipping, Is.EqualTo(new GradientClipping(ClipScope.PerTensorNorm, 2, 0)), "eps defaults to 0 (Keras, TF, Chainer)");
        Assert.That(keras.Optimizer.LearningRateAt(5), Is.EqualTo(0.055).Within(1e-15));
        Assert.That(keras.Optimizer.LearningRateAt(99), Is.EqualTo(0.01).Within(1e-15), "constant after decaySteps");
        var sgdKeras = SpecLoader.Parse(Mutate(r => r["optimizer"] = JsonNode.Parse("""
            { "type": "sgd", "lr": 0.1, "momentum": 0.9, "momentumForm": "keras", "schedule": { "type": "step", "stepSize": 2, "gamma": 0.5 } }
            """)));
        var form = (SgdSpec)sgdKeras.Optimizer;
        Assert.That(new[] { form.VelocityDecayAt(0), form.VelocityDecayAt(1), form.VelocityDecayAt(2), form.VelocityDecayAt(3) },
            Is.EqualTo(new[] { 0.9, 0.9, 1.8, 0.9 }), "the Keras form carries lr_prev / lr in the buffer's decay");
    }

    [Test]
    public void A_spec_without_schedule_or_clipping_keeps_its_canonical_text()
    {
        var spec = SpecLoader.LoadFile(Repository.Fixture("synthetic-layernorm-sgd.json"));
        Assert.That(spec.Optimizer.Schedule, Is.EqualTo(ConstantSchedule.Instance));
        Assert.That(spec.Optimizer.Clipping, Is.Null);
        Assert.That(spec.CanonicalJson, Does.Not.Contain("schedule").And.Not.Contain("clip").And.Not.Contain("nesterov").And.Not.Contain("momentumForm"));
    }

    [Test]
    public void Nesterov_without_momentum_and_a_bad_schedule_are_refused_where_they_are_written()
    {
        var nesterov = Rejects(Mutate(r => r["optimizer"] = JsonNode.Parse("""{ "type": "sgd", "lr": 0.1, "nesterov": true }""")));
        Assert.That(nesterov.JsonPath, Is.EqualTo("$.optimizer.nesterov"));
        var stepSize = Rejects(Mutate(r => r["optimizer"] = JsonNode.Parse("""{ "type": "sgd", "lr": 0.1, "schedule": { "type": "step", "stepSize": 0, "gamma": 0.5 } }""")));
        Assert.That(stepSize.JsonPath, Is.EqualTo("$.optimizer.schedule.stepSize"));
        var floor = Rejects(Mutate(r => r["optimizer"] = JsonNode.Parse("""{ "type": "sgd", "lr": 0.1, "schedule": { "type": "cosine", "decaySteps": 5, "minLr": 0.5 } }""")));
        Assert.That(floor.JsonPath, Is.EqualTo("$.optimizer.schedule.minLr"));
        var clip = Rejects(Mutate(r => r["optimizer"] = JsonNode.Parse("""{ "type": "sgd", "lr": 0.1, "clip": { "type": "value", "maxNorm": 1 } }""")));
        Assert.That(clip.JsonPath, Is.EqualTo("$.optimizer.clip.maxNorm"), "a key of the other clip type");
    }

    [Test]
    public void Dropout_needs_its_drop_probability_below_1_and_writes_its_mask_source_out()
    {
        var spec = SpecLoader.Parse(Mutate(r => r["model"]!["layers"]![2] = JsonNode.Parse("""{ "name": "relu", "type": "dropout", "p": 0.25 }""")));
        var dropout = (DropoutSpec)spec.Model.Layer("relu");
        Assert.That((dropout.P, dropout.Masks, dropout.KeptScale), Is.EqualTo((0.25, DropoutMasks.Harness, 1 / 0.75)));
        Assert.That(spec.CanonicalJson, Does.Contain("\"masks\": \"harness\""), "the default mask source is written out");
        var missing = Rejects(Mutate(r => r["model"]!["layers"]![2] = JsonNode.Parse("""{ "name": "relu", "type": "dropout" }""")));
        Assert.That((missing.JsonPath, missing.Problem), Is.EqualTo(("$.model.layers[2]", "give the DROP probability 'p' explicitly (PyTorch's p and Keras's rate; TF1's keep_prob is 1 - p)")));
        var one = Rejects(Mutate(r => r["model"]!["layers"]![2] = JsonNode.Parse("""{ "name": "relu", "type": "dropout", "p": 1 }""")));
        Assert.That(one.JsonPath, Is.EqualTo("$.model.layers[2].p"));
        var source = Rejects(Mutate(r => r["model"]!["layers"]![2] = JsonNode.Parse("""{ "name": "relu", "type": "dropout", "p": 0.5, "masks": "torch" }""")));
        Assert.That(source.JsonPath, Is.EqualTo("$.model.layers[2].masks"));
        var framework = SpecLoader.Parse(Mutate(r => r["model"]!["layers"]![2] = JsonNode.Parse("""{ "name": "relu", "type": "dropout", "p": 0.5, "masks": "framework" }""")));
        Assert.That(((DropoutSpec)framework.Model.Layer("relu")).Masks, Is.EqualTo(DropoutMasks.Framework));
    }

    [Test]
    public void The_loss_is_a_name_or_an_object_and_only_a_non_default_loss_changes_the_canonical_json()
    {
        var plain = SpecLoader.Parse(BaseSpec);
        Assert.That(plain.Loss, Is.EqualTo(LossSpec.Default));
        Assert.That(plain.CanonicalJson, Does.Contain("\"loss\": \"softmax_cross_entropy\""), "the bare name, as before losses were a setting");
        var named = SpecLoader.Parse(Mutate(r => r["loss"] = "mse"));
        Assert.That(named.Loss, Is.EqualTo(new LossSpec(LossFunction.MeanSquaredError)));
        var smoothed = SpecLoader.Parse(Mutate(r => r["loss"] = JsonNode.Parse("""{ "type": "softmax_cross_entropy", "labelSmoothing": 0.1 }""")));
        Assert.That(smoothed.Loss.LabelSmoothing, Is.EqualTo(0.1));
        Assert.That(SpecLoader.Parse(smoothed.CanonicalJson).Loss, Is.EqualTo(smoothed.Loss), "read back from the canonical json");
        var autoencoder = SpecLoader.Parse(Mutate(r => r["loss"] = JsonNode.Parse("""{ "type": "mse", "targets": "inputs" }""")));
        Assert.That((autoencoder.Loss.Targets, autoencoder.Loss.HasAccuracy), Is.EqualTo((TargetSource.Inputs, false)));
        Assert.That(autoencoder.CanonicalJson, Does.Contain("\"targets\": \"inputs\""));
    }

    [TestCase("""{ "type": "mse", "labelSmoothing": 0.1 }""", "$.loss.labelSmoothing", "softmax_cross_entropy only")]
    [TestCase("""{ "type": "softmax_cross_entropy", "targets": "inputs" }""", "$.loss.targets", "must be \"labels\"")]
    [TestCase("""{ "type": "mse", "targets": "data" }""", "$.loss.targets", "'regression' generator")]
    [TestCase("\"hinge\"", "$.loss", "not supported: loss 'hinge'")]
    [TestCase("""{ "type": "softmax_cross_entropy", "labelSmoothing": 1 }""", "$.loss.labelSmoothing", "")]
    public void A_loss_that_cannot_be_run_is_refused_at_its_path(string loss, string path, string problem)
    {
        var e = Rejects(Mutate(r => r["loss"] = JsonNode.Parse(loss)));
        Assert.That(e.JsonPath, Is.EqualTo(path));
        Assert.That(e.Problem, Does.Contain(problem));
    }

    [Test]
    public void An_unknown_key_lists_the_keys_of_that_layer_type_only()
    {
        var e = Rejects(Mutate(r => Layer(r, 2)["units"] = 3));
        Assert.That(e.Problem, Is.EqualTo("unknown key 'units'; expected one of: name, type"));
    }

    [TestCase("\\ud800", Description = "an escaped lone surrogate")]
    [TestCase("\ud800", Description = "a raw lone surrogate in the text")]
    [TestCase("\\u0000", Description = "an escaped NUL")]
    public void Odd_characters_in_strings_load_or_are_rejected_cleanly(string odd)
    {
        foreach (string where in new[] { "\"name\": \"base\"", "\"type\": \"adam\"", "\"layers\": [" })
        {
            string json = where switch
            {
                "\"name\": \"base\"" => SpecLoaderTests.BaseSpec.Replace(where, $"\"name\": \"a{odd}b\", \"description\": \"{odd}\""),
                "\"type\": \"adam\"" => SpecLoaderTests.BaseSpec.Replace(where, $"\"type\": \"adam{odd}\""),
                _ => SpecLoaderTests.BaseSpec.Replace(where, $"\"layers\": [ {{ \"name\": \"x{odd}\", \"type\": \"relu\" }},").Replace("\"calls\": [", $"\"calls\": [\"x{odd}\", "),
            };
            try
            {
                var spec = SpecLoader.Parse(json);
                Assert.That(SpecLoader.Parse(spec.CanonicalJson).CanonicalJson, Is.EqualTo(spec.CanonicalJson));
            }
            catch (SpecException e)
            {
                Assert.That(e.JsonPath, Does.StartWith("$"));
            }
        }
    }

    [Test]
    public void The_total_parameter_count_is_bounded()
    {
        var e = Rejects(Mutate(r =>
        {
            var layers = r["model"]!["layers"]!.AsArray();
            var calls = r["model"]!["calls"]!.AsArray();
            for (int i = 0; i < 20; i++)
            {
                layers.Add(JsonNode.Parse($$"""{ "name": "big{{i}}", "type": "linear", "in": 8, "out": 8 }"""));
                layers.Add(JsonNode.Parse($$"""{ "name": "wide{{i}}", "type": "linear", "in": 8, "out": 8 }"""));
            }
            layers[0]!["out"] = 4000;
            layers[1]!["features"] = 4000;
            layers[3]!["in"] = 4000;
            layers[3]!["out"] = 4000;
            for (int i = 0; i < 20; i++)
            {
                layers[5 + 2 * i]!["in"] = 4000;
                layers[5 + 2 * i]!["out"] = 4000;
                layers[6 + 2 * i]!["in"] = 4000;
                layers[6 + 2 * i]!["out"] = 4000;
                calls.Insert(calls.Count - 1, $"big{i}");
                calls.Insert(calls.Count - 1, $"wide{i}");
            }
            layers[4]!["in"] = 4000;
        }));
        Assert.That(e.JsonPath, Is.EqualTo("$.model.layers"));
        Assert.That(e.Problem, Does.Contain("parameters"));
    }

    [Test]
    public void Null_means_the_default()
    {
        var spec = SpecLoader.Parse(Mutate(r =>
        {
            r["dtype"] = null;
            r["description"] = null;
        }));
        Assert.That(spec.DType, Is.EqualTo(DType.Float32));
        Assert.That(spec.Description, Is.EqualTo(""));
    }

    [Test]
    public void Schema_and_comment_keys_are_allowed_anywhere()
    {
        var spec = SpecLoader.Parse(Mutate(r =>
        {
            r["$schema"] = "../docs/spec.schema.json";
            r["comment"] = "why";
            Layer(r, 0)["comment"] = "first layer";
        }));
        Assert.That(spec.Name, Is.EqualTo("base"));
    }
}
