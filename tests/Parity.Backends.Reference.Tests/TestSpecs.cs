using Parity.Planning;
using Parity.Specs;

namespace Parity.Backends.Reference.Tests;

/// <summary>Small specs written inline and the repository's fixtures.</summary>
internal static class TestSpecs
{
    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Parity.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("Parity.sln not found above the test directory");
        }
    }

    public static string Fixture(string name) => Path.Combine(RepositoryRoot, "fixtures", name);

    public static Plan FixturePlan(string name, int? steps = null) => Planner.Build(SpecLoader.LoadFile(Fixture(name)), steps);

    public static Plan Plan(string json, int? steps = null) => Planner.Build(SpecLoader.Parse(json), steps);

    /// <summary>A float64 MLP with the given layers and calls on teacher data: 6 inputs, 3 classes.</summary>
    public static string Mlp(string layers, string calls, string optimizer = """{ "type": "sgd", "lr": 0.1, "momentum": 0.9 }""",
        int batch = 8, int steps = 3) => $$"""
        {
          "name": "test-mlp",
          "seed": 17,
          "dtype": "float64",
          "model": { "inputs": 6, "layers": [ {{layers}} ], "calls": [ {{calls}} ] },
          "optimizer": {{optimizer}},
          "data": {
            "train": { "type": "synthetic", "generator": "teacher", "samples": 64, "features": 6, "classes": 3, "seed": 3, "teacherSeed": 4 },
            "eval": { "type": "synthetic", "generator": "teacher", "samples": 24, "features": 6, "classes": 3, "seed": 5, "teacherSeed": 4 },
            "batchSize": {{batch}},
            "shuffleSeed": 1
          },
          "training": { "steps": {{steps}} },
          "evaluation": { "every": 1 }
        }
        """;

    /// <summary>linear (bias) -> batchnorm -> relu -> linear -> batchnorm -> relu -> linear.</summary>
    public static string BatchNormNet(string optimizer = """{ "type": "sgd", "lr": 0.1, "momentum": 0.9 }""", string variance = "unbiased") => Mlp(
        $$"""
        { "name": "l1", "type": "linear", "in": 6, "out": 10, "init": { "weight": "he_normal", "bias": "pytorch_default" } },
        { "name": "bn1", "type": "batchnorm", "features": 10, "momentum": 0.1, "eps": 1e-5, "runningVariance": "{{variance}}" },
        { "name": "relu", "type": "relu" },
        { "name": "l2", "type": "linear", "in": 10, "out": 10, "bias": false, "init": { "weight": "he_normal" } },
        { "name": "bn2", "type": "batchnorm", "features": 10, "momentum": 0.2, "eps": 1e-3, "runningVariance": "{{variance}}" },
        { "name": "l3", "type": "linear", "in": 10, "out": 3, "init": { "weight": "he_normal", "bias": "pytorch_default" } }
        """,
        """ "l1", "bn1", "relu", "l2", "bn2", "relu", "l3" """, optimizer);

    /// <summary>Every activation between small linear layers; the ELU has alpha 0.7, so its derivative jumps at 0.</summary>
    public static string ActivationNet() => Mlp(
        """
        { "name": "l1", "type": "linear", "in": 6, "out": 8, "init": { "weight": "glorot_uniform", "bias": "pytorch_default" } },
        { "name": "gelu", "type": "gelu" },
        { "name": "l2", "type": "linear", "in": 8, "out": 8 },
        { "name": "leaky", "type": "leaky_relu", "slope": 0.2 },
        { "name": "elu", "type": "elu", "alpha": 0.7 },
        { "name": "l3", "type": "linear", "in": 8, "out": 8 },
        { "name": "silu", "type": "silu" },
        { "name": "tanh", "type": "tanh" },
        { "name": "sigmoid", "type": "sigmoid" },
        { "name": "gelu_tanh", "type": "gelu", "approximation": "tanh" },
        { "name": "l4", "type": "linear", "in": 8, "out": 3 }
        """,
        """ "l1", "gelu", "l2", "leaky", "elu", "l3", "silu", "tanh", "sigmoid", "gelu_tanh", "l4" """);

    /// <summary>linear -> layernorm -> relu -> identity -> linear (no bias) -> relu -> linear.</summary>
    public static string LayerNormNet() => Mlp(
        """
        { "name": "l1", "type": "linear", "in": 6, "out": 10, "init": { "weight": "glorot_uniform", "bias": "pytorch_default" } },
        { "name": "ln", "type": "layernorm", "features": 10, "eps": 1e-5 },
        { "name": "relu", "type": "relu" },
        { "name": "id", "type": "identity" },
        { "name": "l2", "type": "linear", "in": 10, "out": 8, "bias": false, "init": { "weight": "lecun_normal" } },
        { "name": "l3", "type": "linear", "in": 8, "out": 3, "init": { "weight": "he_normal", "bias": "pytorch_default" } }
        """,
        """ "l1", "ln", "relu", "id", "l2", "relu", "l3" """);

    /// <summary>The seed 000 model in miniature: ONE batchnorm instance called after both hidden layers.</summary>
    public static string SharedBatchNormNet(string optimizer = """{ "type": "adam", "lr": 0.01, "eps": 1e-8 }""") => Mlp(
        """
        { "name": "l1", "type": "linear", "in": 6, "out": 10, "init": { "weight": "he_normal", "bias": "pytorch_default" } },
        { "name": "bn", "type": "batchnorm", "features": 10, "momentum": 0.1, "eps": 1e-3, "runningVariance": "unbiased" },
        { "name": "relu", "type": "relu" },
        { "name": "l2", "type": "linear", "in": 10, "out": 10, "init": { "weight": "he_normal", "bias": "pytorch_default" } },
        { "name": "l3", "type": "linear", "in": 10, "out": 3, "init": { "weight": "he_normal", "bias": "pytorch_default" } }
        """,
        """ "l1", {"id": "bn_a", "layer": "bn"}, "relu", "l2", {"id": "bn_b", "layer": "bn"}, "relu", "l3" """, optimizer);

    /// <summary>Wide enough (batch 256, 64-128-128-5) that every matrix product takes the multi-threaded path.</summary>
    public static string WideSharedBatchNormNet() => """
        {
          "name": "wide-shared-bn",
          "seed": 23,
          "dtype": "float32",
          "model": {
            "inputs": 64,
            "layers": [
              { "name": "l1", "type": "linear", "in": 64, "out": 128, "init": { "weight": "he_normal", "bias": "zeros" } },
              { "name": "bn", "type": "batchnorm", "features": 128, "momentum": 0.1, "eps": 1e-3, "runningVariance": "unbiased" },
              { "name": "relu", "type": "relu" },
              { "name": "l2", "type": "linear", "in": 128, "out": 128, "init": { "weight": "he_normal", "bias": "zeros" } },
              { "name": "l3", "type": "linear", "in": 128, "out": 5 }
            ],
            "calls": ["l1", "bn", "relu", "l2", "bn", "relu", "l3"]
          },
          "optimizer": { "type": "adam", "lr": 0.01, "eps": 1e-8 },
          "data": {
            "train": { "type": "synthetic", "generator": "teacher", "samples": 1024, "features": 64, "classes": 5, "seed": 1, "teacherSeed": 3 },
            "eval": { "type": "synthetic", "generator": "teacher", "samples": 300, "features": 64, "classes": 5, "seed": 2, "teacherSeed": 3 },
            "batchSize": 256,
            "shuffleSeed": 11
          },
          "training": { "steps": 6 },
          "evaluation": { "every": 3 }
        }
        """;
}
