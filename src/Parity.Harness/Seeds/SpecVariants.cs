using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Parity.Specs;

namespace Parity.Harness.Seeds;

/// <summary>
/// Variants of a fixture for the seed studies (sweeps, momentum pairs, init modes), made by editing the spec's JSON
/// and loading the result through <see cref="SpecLoader"/>: every variant is validated like a hand-written spec, and
/// its text can be written next to the results so each run can be repeated with <c>parity run</c>.
/// </summary>
public sealed class SpecVariant
{
    private readonly JsonObject _root;
    private readonly string _baseDirectory;

    private SpecVariant(JsonObject root, string baseDirectory)
    {
        _root = root;
        _baseDirectory = baseDirectory;
    }

    /// <summary>Starts from the spec file at <paramref name="path"/> (fixtures are looked up in fixtures/ when the path does not exist).</summary>
    public static SpecVariant FromFile(string path)
    {
        string resolved = File.Exists(path) ? path : RepoPaths.Fixture(path);
        if (!File.Exists(resolved)) throw new UsageException($"spec '{path}' not found (looked in the working directory and in {RepoPaths.Fixtures})");
        // Validate the original first so a broken fixture is reported against its own file.
        SpecLoader.LoadFile(resolved);
        var root = JsonNode.Parse(File.ReadAllText(resolved)) as JsonObject
            ?? throw new UsageException($"{resolved}: the spec is not a JSON object");
        root.Remove("$schema");
        return new SpecVariant(root, Path.GetDirectoryName(Path.GetFullPath(resolved)) ?? ".");
    }

    /// <summary>A copy to edit independently.</summary>
    public SpecVariant Clone() => new((JsonObject)_root.DeepClone(), _baseDirectory);

    /// <summary>Sets the scenario name (it names the run directory and the trace headers).</summary>
    public SpecVariant Named(string name)
    {
        _root["name"] = name;
        return this;
    }

    /// <summary>Appends a sentence to the description.</summary>
    public SpecVariant Described(string sentence)
    {
        _root["description"] = $"{(string?)_root["description"]} {sentence}".Trim();
        return this;
    }

    /// <summary>Trains <paramref name="steps"/> steps (replacing epochs or steps).</summary>
    public SpecVariant Steps(int steps)
    {
        _root["training"] = new JsonObject { ["steps"] = steps };
        return this;
    }

    /// <summary>Trains <paramref name="epochs"/> epochs (replacing epochs or steps).</summary>
    public SpecVariant Epochs(int epochs)
    {
        _root["training"] = new JsonObject { ["epochs"] = epochs };
        return this;
    }

    /// <summary>Evaluates after every <paramref name="every"/>-th step.</summary>
    public SpecVariant EvalEvery(int every)
    {
        _root["evaluation"] = new JsonObject { ["every"] = every };
        return this;
    }

    /// <summary>Captures steps 1..<paramref name="first"/> and the last one, with <paramref name="kinds"/> (all kinds when null).</summary>
    public SpecVariant CaptureFirst(int first, params string[]? kinds)
    {
        var capture = new JsonObject { ["steps"] = new JsonObject { ["first"] = first, ["last"] = true } };
        if (kinds is { Length: > 0 }) capture["kinds"] = new JsonArray(kinds.Select(k => (JsonNode?)JsonValue.Create(k)).ToArray());
        _root["capture"] = capture;
        return this;
    }

    /// <summary>Sets the batch size.</summary>
    public SpecVariant BatchSize(int batch)
    {
        Data()["batchSize"] = batch;
        return this;
    }

    /// <summary>Limits the training images (IDX sources) to the first <paramref name="train"/> and the eval set to <paramref name="eval"/>.</summary>
    public SpecVariant Subset(int? train, int? eval)
    {
        var data = Data();
        if (train is int t && data["train"] is JsonObject source && (string?)source["type"] == "idx") source["limit"] = t;
        if (eval is int e) data["evalLimit"] = e;
        return this;
    }

    /// <summary>Sets the momentum of every batchnorm layer (canonical meaning: weight of the new batch statistic).</summary>
    public SpecVariant BatchNormMomentum(double momentum)
    {
        foreach (var layer in Layers().Where(l => (string?)l["type"] == "batchnorm")) layer["momentum"] = momentum;
        return this;
    }

    /// <summary>Replaces the optimizer with <paramref name="optimizer"/> (its spec JSON).</summary>
    public SpecVariant Optimizer(string optimizer)
    {
        _root["optimizer"] = JsonNode.Parse(optimizer);
        return this;
    }

    /// <summary>Sets the weight initializer of every linear layer to normal(0, <paramref name="std"/>) (cs231n's weight_scale * randn).</summary>
    public SpecVariant WeightScale(double std)
    {
        foreach (var layer in Layers().Where(l => (string?)l["type"] == "linear"))
        {
            var init = layer["init"] as JsonObject ?? new JsonObject();
            init["weight"] = new JsonObject { ["type"] = "normal", ["std"] = std };
            layer["init"] = init;
        }
        return this;
    }

    /// <summary>Removes every batchnorm and layernorm instance and its calls (cs231n's <c>normalization=None</c>).</summary>
    public SpecVariant WithoutNormalization()
    {
        var removed = Layers().Where(IsNormalization).Select(l => (string?)l["name"]).ToHashSet();
        var model = Model();
        var layers = (JsonArray)model["layers"]!;
        foreach (var layer in layers.OfType<JsonObject>().Where(IsNormalization).ToList()) layers.Remove(layer);
        var calls = (JsonArray)model["calls"]!;
        foreach (var call in calls.Where(c => removed.Contains(CallLayer(c))).ToList()) calls.Remove(call);
        // A linear layer followed by batchnorm may have been written without a bias (batchnorm removes it); without the
        // normalization its bias matters again, as in cs231n's FullyConnectedNet.
        foreach (var layer in Layers().Where(l => (string?)l["type"] == "linear"))
        {
            layer.Remove("bias");
            if (layer["init"] is JsonObject init && init["bias"] is null) init["bias"] = "zeros";
        }
        return this;
    }

    /// <summary>Replaces every batchnorm instance by a layernorm of the same width and eps (cs231n's <c>normalization='layernorm'</c>).</summary>
    public SpecVariant BatchNormToLayerNorm()
    {
        var layers = (JsonArray)Model()["layers"]!;
        for (int i = 0; i < layers.Count; i++)
        {
            if (layers[i] is not JsonObject l || (string?)l["type"] != "batchnorm") continue;
            var ln = new JsonObject { ["name"] = (string?)l["name"], ["type"] = "layernorm", ["features"] = l["features"]!.DeepClone() };
            if (l["eps"] is { } eps) ln["eps"] = eps.DeepClone();
            layers[i] = ln;
        }
        return this;
    }

    /// <summary>Sets <c>init.mode</c> (<c>injected</c> or <c>framework</c>) keeping the init seed.</summary>
    public SpecVariant InitMode(string mode)
    {
        var init = _root["init"] as JsonObject ?? new JsonObject { ["seed"] = _root["seed"]?.DeepClone() };
        init["mode"] = mode;
        _root["init"] = init;
        return this;
    }

    /// <summary>The spec text (indented JSON).</summary>
    public string Json() => _root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>Loads the variant through the spec loader (validation errors name the variant).</summary>
    public ScenarioSpec Load()
    {
        try
        {
            return SpecLoader.Parse(Json(), _baseDirectory);
        }
        catch (SpecException e)
        {
            throw new UsageException($"variant '{(string?)_root["name"]}': {e.Message}");
        }
    }

    /// <summary>Writes the variant's spec into <paramref name="directory"/> as NAME.json and returns the path.</summary>
    public string Save(string directory)
    {
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, (string?)_root["name"] + ".json");
        File.WriteAllText(path, Json());
        return path;
    }

    /// <summary>A compact number for names: 1e-04, 2.6e-03, 1.</summary>
    public static string Short(double value) =>
        value.ToString(value >= 0.01 && value < 1000 ? "0.###" : "0.#e+00", CultureInfo.InvariantCulture);

    private JsonObject Model() => _root["model"] as JsonObject ?? throw new UsageException("the spec has no model object");

    private JsonObject Data() => _root["data"] as JsonObject ?? throw new UsageException("the spec has no data object");

    private IEnumerable<JsonObject> Layers() => ((JsonArray?)Model()["layers"] ?? []).OfType<JsonObject>();

    private static bool IsNormalization(JsonObject layer) => (string?)layer["type"] is "batchnorm" or "layernorm";

    private static string? CallLayer(JsonNode? call) =>
        call is JsonObject o ? (string?)o["layer"] : call?.GetValue<string>();
}
