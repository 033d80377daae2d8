using System.Diagnostics;
using System.Text.Json.Nodes;
using Parity.Specs;
using Parity.Specs.Tests;
using Parity.Tests;

namespace Parity.Planning.Tests;

/// <summary>What the planner refuses before it reads data or allocates a buffer: tensors and runs too large, hostile data files.</summary>
public sealed class PlanLimitsTests
{
    private const long Gibibyte = 1L << 30;

    // The finding's spec: inside every loader limit, but 65537 x 65536 activations wrapped a 32-bit size in the
    // reference backend and its kernel wrote out of bounds.
    internal static string WideBatch(int batch) => $$$"""
        {"name":"overflow","model":{"inputs":1,"layers":[{"name":"l1","type":"linear","in":1,"out":65536},{"name":"l2","type":"linear","in":65536,"out":2}],"calls":["l1","l2"]},
         "optimizer":{"type":"sgd","lr":0.01},
         "data":{"train":{"type":"synthetic","generator":"gaussian","samples":{{{batch}}},"features":1,"classes":2},"batchSize":{{{batch}}}},
         "training":{"steps":1}}
        """;

    [TestCase(65537, "4295032832")]
    [TestCase(1048576, "68719476736")]
    [TestCase(32768, "2147483648")]
    public void A_batch_whose_activations_overflow_32_bits_is_a_spec_error_naming_the_size(int batch, string values)
    {
        var spec = SpecLoader.Parse(WideBatch(batch));
        var e = Assert.Throws<SpecException>(() => Planner.Build(spec, memoryBudget: long.MaxValue))!;
        Assert.That(e.JsonPath, Is.EqualTo("$.data.batchSize"));
        Assert.That(e.Problem, Does.Contain($"{batch} x 65536 = {values} values").And.Contain("call 'l1'"));
    }

    [Test]
    public void The_largest_tensor_the_limit_allows_plans()
    {
        // 4096 x 65536 = 2^28 values: at the limit, and within any budget this test gives.
        Assert.DoesNotThrow(() => Planner.Build(SpecLoader.Parse(WideBatch(4096)), memoryBudget: long.MaxValue));
    }

    private static string ReluTower(int reluCalls, int batch = 512) => $$$"""
        {"name":"tower","model":{"inputs":1,"layers":[{"name":"l1","type":"linear","in":1,"out":65536},{"name":"r","type":"relu"},{"name":"l2","type":"linear","in":65536,"out":2}],
          "calls":["l1",{{{string.Join(",", Enumerable.Repeat("\"r\"", reluCalls))}}},"l2"]},
         "optimizer":{"type":"sgd","lr":0.01},
         "data":{"train":{"type":"synthetic","generator":"gaussian","samples":600,"features":1,"classes":2},"batchSize":{{{batch}}}},
         "training":{"steps":1}}
        """;

    [TestCase(200)]
    [TestCase(22)]
    public void A_run_over_the_memory_budget_is_refused_with_the_estimate_and_the_dominant_path(int reluCalls)
    {
        // About 100 GB and 12 GB of activations in the finding: both killed or crashed the process.
        var e = Assert.Throws<SpecException>(() => Planner.Build(SpecLoader.Parse(ReluTower(reluCalls)), memoryBudget: 8 * Gibibyte))!;
        Assert.That(e.JsonPath, Is.EqualTo("$.data.batchSize"));
        Assert.That(e.Problem, Does.Contain("the run needs an estimated").And.Contain("more than the budget of 8.0 GiB")
            .And.Contain($"activations and gradients of {reluCalls + 2} calls at batch size 512").And.Contain("PARITY_MEMORY_BUDGET"));
    }

    [Test]
    public void The_activation_term_grows_with_the_batch()
    {
        var spec = SpecLoader.Parse(ReluTower(22, batch: 4));
        var plan = Planner.Build(spec, memoryBudget: long.MaxValue);
        var small = MemoryEstimate.Of(spec, plan.Graph, Extent(plan.Train), Extent(plan.Eval), false, plan.EvalBatchSize);
        var large = MemoryEstimate.Of(spec with { Data = spec.Data with { BatchSize = 512 } }, plan.Graph, Extent(plan.Train), Extent(plan.Eval), false, 512);
        long Activations(MemoryEstimate m) => m.Terms.Single(t => t.What.StartsWith("activations and gradients", StringComparison.Ordinal)).Bytes;
        Assert.That(Activations(large), Is.EqualTo(128 * Activations(small)));
        Assert.That(large.Dominant.JsonPath, Is.EqualTo("$.data.batchSize"));
        Assert.That(large.TotalBytes, Is.GreaterThan(large.Terms.Sum(t => t.Bytes)), "the harness's own memory counts too");
        Assert.That(large.Terms.Select(t => t.Bytes), Is.Ordered.Descending);
    }

    [Test]
    public void A_run_takes_as_many_lanes_as_its_memory_estimate_fits_in_the_budget()
    {
        var plan = Planner.Build(SpecLoader.Parse(ReluTower(22, batch: 64)), memoryBudget: long.MaxValue);
        var memory = plan.Memory!;
        long lane = memory.TotalBytes - memory.SharedBytes;
        Assert.That(lane, Is.GreaterThanOrEqualTo(memory.Terms.Single(t => t.What.StartsWith("activations and gradients", StringComparison.Ordinal)).Bytes),
            "a lane holds the activations");
        Assert.That(memory.SharedBytes, Is.GreaterThan(0).And.LessThan(memory.TotalBytes));
        Assert.That(memory.LanesWithin(memory.TotalBytes, wanted: 4), Is.EqualTo(1), "one lane: the estimate itself");
        Assert.That(memory.LanesWithin(memory.SharedBytes + 3 * lane, wanted: 4), Is.EqualTo(3));
        Assert.That(memory.LanesWithin(memory.SharedBytes + 3 * lane - 1, wanted: 4), Is.EqualTo(2));
        Assert.That(memory.LanesWithin(long.MaxValue, wanted: 4), Is.EqualTo(4), "never more than asked for");
        Assert.That(memory.LanesWithin(0, wanted: 4), Is.EqualTo(1), "a run the planner let through runs on one lane at least");
        Assert.That(plan.WithFilter(null).Memory, Is.SameAs(memory));
    }

    private static DataExtent Extent(Data.DataSet set) => new(set.Count, set.Features, set.Origin, MemoryEstimate.DataBytes(set.Count, set.Features, false));

    [Test]
    public void A_huge_eval_set_with_captured_outputs_is_refused_at_the_eval_source()
    {
        // 10^7 eval samples evaluated as one batch took 6 GB in 30 s before anything refused it.
        var root = JsonNode.Parse(SpecLoaderTests.BaseSpec)!.AsObject();
        root["data"]!["eval"] = JsonNode.Parse("""{ "type": "synthetic", "generator": "gaussian", "samples": 10000000, "features": 6, "classes": 3 }""");
        root["model"]!["layers"]![0]!["out"] = 128;
        root["model"]!["layers"]![1]!["features"] = 128;
        root["model"]!["layers"]![3]!["in"] = 128;
        root["model"]!["layers"]![3]!["out"] = 128;
        root["model"]!["layers"]![4]!["in"] = 128;
        var e = Assert.Throws<SpecException>(() => Planner.Build(SpecLoader.Parse(root.ToJsonString()), memoryBudget: 8 * Gibibyte))!;
        Assert.That(e.JsonPath, Is.EqualTo("$.data.eval"));
        Assert.That(e.Problem, Does.Contain("10000000 x 128"));
    }

    [Test]
    public void Evaluation_batches_cover_the_eval_set_in_order_in_chunks_of_the_eval_batch_size()
    {
        var root = JsonNode.Parse(SpecLoaderTests.BaseSpec)!.AsObject();
        root["data"]!["eval"] = JsonNode.Parse("""{ "type": "synthetic", "samples": 50, "features": 6, "classes": 3 }""");
        root["evaluation"] = JsonNode.Parse("""{ "every": 1, "batchSize": 16 }""");
        var plan = Planner.Build(SpecLoader.Parse(root.ToJsonString()));
        Assert.That(plan.EvalBatchSize, Is.EqualTo(16));
        var chunks = plan.EvalBatches().ToList();
        Assert.That(chunks.Select(c => c.Size), Is.EqualTo(new[] { 16, 16, 16, 2 }));
        var whole = plan.EvalBatch();
        Assert.That(chunks.SelectMany(c => c.Inputs.Data), Is.EqualTo(whole.Inputs.Data));
        Assert.That(chunks.SelectMany(c => c.Labels), Is.EqualTo(whole.Labels));

        root.Remove("evaluation");
        Assert.That(Planner.Build(SpecLoader.Parse(root.ToJsonString())).EvalBatchSize, Is.EqualTo(16), "default: the training batch size");
    }

    [Test]
    public void A_steps_override_beyond_the_spec_limit_is_a_spec_error()
    {
        var e = Assert.Throws<SpecException>(() => Planner.Build(SpecLoader.Parse(SpecLoaderTests.BaseSpec), 1_000_000_000))!;
        Assert.That(e.JsonPath, Is.EqualTo("$.training.steps"));
        Assert.That(e.Problem, Does.Contain("100000000"));
    }

    [Test]
    public void Planner_errors_start_with_the_spec_file_like_loader_errors()
    {
        using var dir = new TempDirectory();
        var root = JsonNode.Parse(SpecLoaderTests.BaseSpec)!.AsObject();
        root["data"]!["batchSize"] = 65;
        File.WriteAllText(dir.File("x.json"), root.ToJsonString());
        var e = Assert.Throws<SpecException>(() => Planner.Build(SpecLoader.LoadFile(dir.File("x.json"))))!;
        Assert.That(e.Message, Is.EqualTo($"{dir.File("x.json")}: $.data.batchSize: batch size 65 exceeds the 64 training samples"));
        Assert.That(e.File, Is.EqualTo(dir.File("x.json")));
    }

    [Test]
    public void A_gzip_idx_file_claiming_a_million_images_is_refused_from_its_header()
    {
        // 762 KB of gzip that expands to 10^6 images of 28x28: read in full it took 4.77 GB before the spec error.
        using var dir = new TempDirectory();
        HostileSpecs.WriteGzipIdx(dir.File("images.gz"), [1_000_000, 28, 28], 1_000_000L * 784);
        HostileSpecs.WriteGzipIdx(dir.File("labels.gz"), [1_000_000], 1_000_000);
        var spec = IdxSpec(dir, inputs: 20);
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<SpecException>(() => Planner.Build(spec))!;
        Assert.That(e.JsonPath, Is.EqualTo("$.data.train"));
        Assert.That(e.Problem, Does.Contain("1000000 samples of 784 features").And.Contain("268435456"));
        TestContext.Out.WriteLine($"refused in {clock.ElapsedMilliseconds} ms");
    }

    [Test]
    public void Idx_features_are_checked_against_the_model_before_the_data_is_read()
    {
        using var dir = new TempDirectory();
        // 28x28 images for a model of 20 inputs: a spec error at the model's inputs, as for synthetic data.
        File.WriteAllBytes(dir.File("images"), [0, 0, 8, 3, 0, 0, 0, 100, 0, 0, 0, 28, 0, 0, 0, 28, .. new byte[100 * 784]]);
        File.WriteAllBytes(dir.File("labels"), [0, 0, 8, 1, 0, 0, 0, 100, .. new byte[100]]);
        var e = Assert.Throws<SpecException>(() => Planner.Build(IdxSpec(dir, inputs: 20, images: "images", labels: "labels")))!;
        Assert.That(e.JsonPath, Is.EqualTo("$.model.inputs"));
        Assert.That(e.Problem, Does.Contain("784 features"));
    }

    [Test]
    public void An_idx_path_that_is_a_directory_or_a_named_pipe_is_a_spec_error_not_a_hang()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(dir.File("images"));
        var e = Assert.Throws<SpecException>(() => Planner.Build(IdxSpec(dir, inputs: 6, images: "images", labels: "images")))!;
        Assert.That(e.Problem, Does.Contain("is a directory, not a file"));

        string fifo = HostileSpecs.MakeFifo(dir.File("fifo"));
        var planning = Task.Run(() => Assert.Throws<SpecException>(() => Planner.Build(IdxSpec(dir, inputs: 6, images: "fifo", labels: "fifo"))));
        Assert.That(planning.Wait(TimeSpan.FromSeconds(30)), Is.True, "a named pipe must not hang the planner");
        Assert.That(planning.Result!.JsonPath, Is.EqualTo("$.data.train"));
        Assert.That(planning.Result.Problem, Does.Contain($"{fifo} is not a regular file"));
    }

    [Test]
    public void An_init_from_trace_whose_files_are_named_pipes_is_a_spec_error_not_a_hang()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(dir.File("state"));
        HostileSpecs.MakeFifo(dir.File("state/trace.json"));
        var root = JsonNode.Parse(SpecLoaderTests.BaseSpec)!.AsObject();
        root["init"] = JsonNode.Parse("""{ "mode": "injected", "from": "state" }""");
        File.WriteAllText(dir.File("x.json"), root.ToJsonString());
        var planning = Task.Run(() => Assert.Throws<SpecException>(() => Planner.Build(SpecLoader.LoadFile(dir.File("x.json")))));
        Assert.That(planning.Wait(TimeSpan.FromSeconds(30)), Is.True, "a named pipe must not hang the planner");
        Assert.That(planning.Result!.JsonPath, Is.EqualTo("$.init.from"));
        Assert.That(planning.Result.Problem, Does.Contain("not a regular file"));
    }

    private static ScenarioSpec IdxSpec(TempDirectory dir, int inputs, string images = "images.gz", string labels = "labels.gz")
    {
        var root = JsonNode.Parse(SpecLoaderTests.BaseSpec)!.AsObject();
        root["model"]!["inputs"] = inputs;
        root["model"]!["layers"]![0]!["in"] = inputs;
        root["model"]!["layers"]![4]!["out"] = 10;
        root["data"]!["train"] = new JsonObject { ["type"] = "idx", ["images"] = images, ["labels"] = labels };
        File.WriteAllText(dir.File("x.json"), root.ToJsonString());
        return SpecLoader.LoadFile(dir.File("x.json"));
    }

    [TestCase("8G", 8L << 30)]
    [TestCase("1.5GiB", 3L << 29)]
    [TestCase("512 M", 512L << 20)]
    [TestCase("2gb", 2L << 30)]
    [TestCase("1048576", 1L << 20)]
    [TestCase("64K", 64L << 10)]
    public void A_memory_budget_is_bytes_or_a_number_with_a_binary_unit(string text, long bytes)
    {
        Assert.That(MemoryBudget.TryParse(text, out long parsed), Is.True);
        Assert.That(parsed, Is.EqualTo(bytes));
    }

    [TestCase("")]
    [TestCase("lots")]
    [TestCase("-1G")]
    [TestCase("0")]
    [TestCase("1X")]
    [TestCase("1e30")]
    [TestCase("99999999999T")]
    public void A_memory_budget_that_is_not_a_size_is_refused(string text) =>
        Assert.That(MemoryBudget.TryParse(text, out _), Is.False);
}
