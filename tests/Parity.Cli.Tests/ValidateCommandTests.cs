using System.Text.Json;
using System.Text.Json.Nodes;

namespace Parity.Cli.Tests;

/// <summary>
/// <c>parity validate</c>: every error of a spec at once with its path and exit 2, or a one-line summary and exit 0;
/// the same as JSON; the planner's checks (data, shapes, sizes) for a spec the loader accepts.
/// </summary>
[NonParallelizable]
public class ValidateCommandTests
{
    private static string Write(string json)
    {
        string path = Path.Combine(CliRunner.TempDir(), "spec.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static string ThreeMistakes()
    {
        var root = JsonNode.Parse(File.ReadAllText(CliRunner.Fixture("synthetic-mlp-bn.json")))!.AsObject();
        root["model"]!["layers"]![0]!["out"] = -3;
        root["optimizer"]!["amsgrad"] = true;
        root["data"]!["batch_size"] = 64;
        return Write(root.ToJsonString());
    }

    [Test]
    public void A_spec_with_three_mistakes_lists_all_three_with_their_paths_and_exits_2()
    {
        string spec = ThreeMistakes();
        var (exit, stdout, stderr) = CliRunner.Run("validate", spec);
        Assert.That(exit, Is.EqualTo(2), stdout + stderr);
        var lines = stdout.TrimEnd().Split('\n');
        Assert.That(lines, Is.EqualTo(new[]
        {
            $"{spec}: invalid, 3 error(s):",
            "  $.model.layers[0].out: expected an integer in 1..65536, found -3",
            "  $.optimizer.amsgrad: not supported: 'amsgrad', AMSGrad (Adam with the running maximum of v) (see docs/spec.md#adam)",
            "  $.data.batch_size: unknown key 'batch_size'; did you mean 'batchSize'? expected one of: train, eval, batchSize, shuffle, shuffleSeed, evalLimit",
        }));

        // run refuses the same spec before anything runs, with every error listed, the first on the first line.
        var (runExit, _, runErr) = CliRunner.Run("run", spec, "--out", CliRunner.TempDir());
        Assert.That(runExit, Is.EqualTo(2));
        Assert.That(runErr, Does.StartWith($"parity: {spec}: $.model.layers[0].out: "));
        Assert.That(runErr, Does.Contain("$.optimizer.amsgrad").And.Contain("$.data.batch_size"));
    }

    [Test]
    public void Json_output_has_each_error_with_its_path_and_the_summary_of_a_valid_spec()
    {
        string valid = CliRunner.Fixture("synthetic-mlp-bn.json");
        var (exit, stdout, _) = CliRunner.Run("validate", ThreeMistakes(), valid, "--json");
        Assert.That(exit, Is.EqualTo(2));
        var checks = JsonNode.Parse(stdout)!.AsArray();
        Assert.That(checks[0]!["valid"]!.GetValue<bool>(), Is.False);
        Assert.That(checks[0]!["errors"]!.AsArray().Select(e => (string?)e!["path"]), Is.EqualTo(new[] { "$.model.layers[0].out", "$.optimizer.amsgrad", "$.data.batch_size" }));
        Assert.That(checks[0]!["summary"], Is.Null);
        var summary = checks[1]!["summary"]!;
        Assert.That(checks[1]!["valid"]!.GetValue<bool>(), Is.True);
        Assert.That((int?)summary["steps"], Is.EqualTo(50));
        Assert.That((string?)summary["optimizer"]!["type"], Is.EqualTo("adam"));
        Assert.That((int?)summary["data"]!["trainSamples"], Is.EqualTo(640));
        Assert.That((string?)summary["specHash"], Is.EqualTo(Specs.SpecLoader.Hash(Specs.SpecLoader.LoadFile(valid))));
    }

    // The gpu-* fixtures are sized for a GPU machine: the memory budget of a small machine refuses gpu-bench-4096 (as
    // run would), and labelling gpu-fmnist-shaped's data by its teacher takes about 20 s on a CPU.
    [Test]
    public void Every_fixture_but_the_gpu_ones_is_valid()
    {
        var fixtures = Directory.GetFiles(Harness.RepoPaths.Fixtures, "*.json").Where(f => !Path.GetFileName(f).StartsWith("gpu-", StringComparison.Ordinal)).Order().ToArray();
        var (exit, stdout, stderr) = CliRunner.Run(["validate", .. fixtures]);
        Assert.That(exit, Is.EqualTo(0), stdout + stderr);
        Assert.That(stdout, Does.EndWith($"{fixtures.Length} of {fixtures.Length} specs valid\n"));
        Assert.That(stdout, Does.Contain("seed000-shared-bn.json: valid: model 784 -> 10 (7 calls of 5 layers, 89810 parameters); data 60000 training samples"));
    }

    [Test]
    public void A_spec_the_loader_accepts_is_still_checked_against_its_data()
    {
        var root = JsonNode.Parse(File.ReadAllText(CliRunner.Fixture("synthetic-mlp-bn.json")))!.AsObject();
        root["model"]!["inputs"] = 21;
        root["model"]!["layers"]![0]!["in"] = 21;
        var (exit, stdout, _) = CliRunner.Run("validate", Write(root.ToJsonString()));
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stdout, Does.Contain("  $.model.inputs: the model takes 21 inputs but the training data has 20 features"));
    }

    [Test]
    public void Backends_say_whether_they_run_the_spec_without_training_a_step()
    {
        var (exit, stdout, stderr) = CliRunner.Run("validate", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "reference,onnxruntime", "--json");
        Assert.That(exit, Is.EqualTo(0), stderr);
        using var doc = JsonDocument.Parse(stdout);
        var backends = doc.RootElement[0].GetProperty("backends").EnumerateArray().ToList();
        Assert.That(backends.Select(b => b.GetProperty("verdict").GetString()), Is.EqualTo(new[] { "runs", "arbiter" }));

        var (badExit, _, badErr) = CliRunner.Run("validate", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "tensorflow");
        Assert.That(badExit, Is.EqualTo(2));
        Assert.That(badErr, Does.Contain("tensorflow"));
    }
}
