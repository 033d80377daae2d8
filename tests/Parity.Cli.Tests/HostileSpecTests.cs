using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Parity.Specs.Tests;
using Parity.Tracing;

namespace Parity.Cli.Tests;

/// <summary>
/// Hostile specs and data through the real CLI, each in a child process in a scratch folder: every input of a probe
/// of the CLI that crashed it, hung it, or wrote outside the chosen folder, now exits 2 with a message naming the spec
/// file and the JSON path; and a sample of fuzzed spec files exits 0, 1 or 2 without a stack trace, a hang or a stray file.
/// </summary>
[NonParallelizable]
public class HostileSpecTests
{
    private string _root = "";
    private string _work = "";

    [SetUp]
    public void CreateScratch()
    {
        _root = CliRunner.TempDir();
        _work = Path.Combine(_root, "work");
        Directory.CreateDirectory(_work);
    }

    [TearDown]
    public void RemoveScratch()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A leftover scratch folder is harmless.
        }
    }

    private string Spec(string name, string json)
    {
        string path = Path.Combine(_root, name);
        File.WriteAllText(path, json);
        return path;
    }

    private static JsonObject Fixture(string name = "synthetic-mlp-bn.json") => JsonNode.Parse(File.ReadAllText(CliRunner.Fixture(name)))!.AsObject();

    private static void AssertRefused(CliProcess.Result r, string specPath, string jsonPath)
    {
        Assert.That(r.TimedOut, Is.False, "no hang");
        Assert.That(r.Exit, Is.EqualTo(2), r.All);
        Assert.That(r.Err, Does.StartWith($"parity: {specPath}: {jsonPath}: "), r.All);
        Assert.That(r.All, Does.Not.Contain("   at ").And.Not.Contain("Unhandled exception"));
    }

    // Batch 65537 through a 1 -> 65536 linear layer: 65537 x 65536 wrapped to 65536 in 32 bits, and the reference's
    // matrix product wrote past its buffer (AccessViolationException, exit 134); at 32768 every backend failed with a bare
    // OverflowException. gradcheck, bench and metamorphic crashed the same way.
    [TestCase(65537, "run")]
    [TestCase(32768, "run")]
    [TestCase(65537, "gradcheck")]
    [TestCase(65537, "bench")]
    [TestCase(65537, "metamorphic")]
    public void A_batch_past_32_bit_sizes_is_a_spec_error_in_every_command(int batch, string command)
    {
        string spec = Spec("overflow.json", $$$"""
            {"name":"overflow","model":{"inputs":1,"layers":[{"name":"l1","type":"linear","in":1,"out":65536},{"name":"l2","type":"linear","in":65536,"out":2}],"calls":["l1","l2"]},
             "optimizer":{"type":"sgd","lr":0.01},
             "data":{"train":{"type":"synthetic","generator":"gaussian","samples":{{{batch}}},"features":1,"classes":2},"batchSize":{{{batch}}}},
             "training":{"steps":1}}
            """);
        string[] args = command switch
        {
            "run" => ["run", spec, "--out", "o"],
            "bench" => ["bench", spec, "--steps", "1", "--warmup", "0"],
            "metamorphic" => ["metamorphic", spec, "--backends", "reference", "--out", "o"],
            _ => ["gradcheck", spec],
        };
        var r = CliProcess.Run(_work, args);
        AssertRefused(r, spec, "$.data.batchSize");
        Assert.That(r.Err, Does.Contain($"{batch} x 65536 = {(long)batch * 65536} values"));
    }

    [TestCase("../../escaped")]
    [TestCase("..")]
    [TestCase(".")]
    [TestCase("ABSOLUTE")]
    [TestCase("a\u0000b")]
    [TestCase("\u6771")]
    public void A_spec_name_cannot_lead_outside_the_output_folder_or_crash_the_cli(string name)
    {
        // The absolute case points into the scratch folder, so a regression writes where the snapshot sees it.
        name = name switch { "ABSOLUTE" => Path.Combine(_root, "abs", "dir"), "\u6771" => new string('\u6771', 200), _ => name };
        var root = Fixture();
        root["name"] = name;
        string spec = Spec("named.json", root.ToJsonString());
        var before = CliProcess.Snapshot(_root);
        foreach (string[] args in new[] { new[] { "run", spec, "--steps", "1" }, ["verify", spec, "--baselines", Path.Combine(_root, "bl")], ["metamorphic", spec, "--steps", "1"] })
        {
            var r = CliProcess.Run(_work, args);
            AssertRefused(r, spec, "$.name");
            Assert.That(r.Err, Does.Contain("a scenario name names its output folder"));
        }
        Assert.That(CliProcess.WrittenOutside(_root, before, allowed: null), Is.Empty);
    }

    [Test]
    public void Approve_of_a_report_naming_the_scenario_dot_dot_writes_nothing_beside_the_baselines()
    {
        // A run named ".." put its baselines in <baselines>/../reference/... A report edited after the run still can't.
        string run = Path.Combine(_work, "run");
        var made = CliProcess.Run(_work, "run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--steps", "2", "--out", run);
        Assert.That(made.Exit, Is.EqualTo(0), made.All);
        string reportPath = Path.Combine(run, "report.json");
        var report = JsonNode.Parse(File.ReadAllText(reportPath))!;
        report["scenario"]!["name"] = "..";
        File.WriteAllText(reportPath, report.ToJsonString());

        string baselines = Path.Combine(_root, "models", "baselines");
        Directory.CreateDirectory(baselines);
        var before = CliProcess.Snapshot(_root);
        var r = CliProcess.Run(_work, "approve", run, "--baselines", baselines);
        Assert.That(r.Exit, Is.EqualTo(2), r.All);
        Assert.That(r.Err, Does.Contain($"{reportPath}: $.scenario.name: a scenario name names its output folder"), "the message names the report and the field");
        Assert.That(CliProcess.WrittenOutside(_root, before, allowed: baselines), Is.Empty);
    }

    [Test]
    public void A_worker_named_dot_dot_writes_its_trace_under_traces_not_into_the_run_folder()
    {
        string worker = Path.Combine(Harness.RepoPaths.Root, "tests", "Parity.Backends.Workers.Tests", "faulty", "fake-worker.py");
        if (!File.Exists("/usr/bin/python3") && !File.Exists("/usr/local/bin/python3")) Assert.Ignore("python3 is not installed");
        string run = Path.Combine(_work, "run");
        var r = CliProcess.Run(_work, "run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--steps", "2", "--backends", "reference,reference-f32,..",
            "--worker", $"..=python3 {worker} ok", "--out", run);
        Assert.That(r.Exit, Is.AnyOf(0, 1), r.All);
        Assert.That(File.Exists(Path.Combine(run, "traces", "_.", "trace.json")), Is.True);
        Assert.That(File.Exists(Path.Combine(run, "trace.json")), Is.False, "the worker's trace must not land in the run folder");
        // The fake worker's eval chunks (200 samples in chunks of 64) merged into one record of the whole set.
        var eval = TraceReader.Open(Path.Combine(run, "traces", "_.")).Records().Last(x => x.Phase == RecordPhase.Eval);
        Assert.That(eval.Find(TensorKind.EvalOutput, "l3")!.Shape, Is.EqualTo(new[] { 200, 5 }));
    }

    [Test]
    public void A_run_over_the_memory_budget_is_refused_before_it_starts()
    {
        // 22 relu calls on 65536 features at batch 512: RSS climbed to 6 GB in 30 s before; 200 calls: "Out of memory." exit 134.
        var root = JsonNode.Parse("""
            {"name":"tower","model":{"inputs":1,"layers":[{"name":"l1","type":"linear","in":1,"out":65536},{"name":"r","type":"relu"},{"name":"l2","type":"linear","in":65536,"out":2}],"calls":["l1","l2"]},
             "optimizer":{"type":"sgd","lr":0.01},"data":{"train":{"type":"synthetic","generator":"gaussian","samples":600,"features":1,"classes":2},"batchSize":512},"training":{"steps":1}}
            """)!.AsObject();
        var calls = root["model"]!["calls"]!.AsArray();
        for (int i = 0; i < 22; i++) calls.Insert(1, "r");
        string spec = Spec("tower.json", root.ToJsonString());
        var r = CliProcess.Run(_work, TimeSpan.FromSeconds(120), new Dictionary<string, string> { ["PARITY_MEMORY_BUDGET"] = "8G" }, "run", spec, "--out", "o");
        AssertRefused(r, spec, "$.data.batchSize");
        Assert.That(r.Err, Does.Contain("the run needs an estimated").And.Contain("budget of 8.0 GiB").And.Contain("24 calls at batch size 512"));

        var bad = CliProcess.Run(_work, TimeSpan.FromSeconds(120), new Dictionary<string, string> { ["PARITY_MEMORY_BUDGET"] = "lots" }, "run", spec, "--out", "o");
        Assert.That(bad.Exit, Is.EqualTo(2));
        Assert.That(bad.Err, Does.Contain("PARITY_MEMORY_BUDGET=\"lots\" is not a memory size"));
    }

    [Test]
    public void An_eval_set_of_ten_million_samples_is_refused_before_it_is_generated()
    {
        // 10^7 eval samples of 16 features through a 16 -> 128 layer, evaluated as one batch: 6 GB of RSS in 28 s.
        var root = JsonNode.Parse("""
            {"name":"evalbomb","model":{"inputs":16,"layers":[{"name":"l1","type":"linear","in":16,"out":128},{"name":"l2","type":"linear","in":128,"out":2}],"calls":["l1","l2"]},
             "optimizer":{"type":"sgd","lr":0.01},"training":{"steps":1},
             "data":{"train":{"type":"synthetic","generator":"gaussian","samples":640,"features":16,"classes":2},
                     "eval":{"type":"synthetic","generator":"gaussian","samples":10000000,"features":16,"classes":2},"batchSize":64}}
            """)!;
        string spec = Spec("evalbomb.json", root.ToJsonString());
        var r = CliProcess.Run(_work, "run", spec, "--steps", "1", "--out", "o");
        AssertRefused(r, spec, "$.data.eval");
        Assert.That(r.Err, Does.Contain("10000000 x 128"));
    }

    [Test]
    public void A_gzip_bomb_is_refused_from_its_header()
    {
        // 762 KB of gzip claiming 10^6 images of 28x28: 4.77 GB of RSS before the spec error.
        string images = Path.Combine(_root, "images.gz"), labels = Path.Combine(_root, "labels.gz");
        HostileSpecs.WriteGzipIdx(images, [1_000_000, 28, 28], 1_000_000L * 784);
        HostileSpecs.WriteGzipIdx(labels, [1_000_000], 1_000_000);
        var root = Fixture();
        root["data"]!["train"] = new JsonObject { ["type"] = "idx", ["images"] = images, ["labels"] = labels };
        string spec = Spec("bomb.json", root.ToJsonString());
        var r = CliProcess.Run(_work, "run", spec, "--out", "o");
        AssertRefused(r, spec, "$.data.train");
        Assert.That(r.Err, Does.Contain("1000000 samples of 784 features").And.Contain("set 'limit'"));
    }

    [TestCase("1000000000")]
    [TestCase("2147483648")]
    [TestCase("0")]
    [TestCase("-3")]
    [TestCase("ten")]
    public void Steps_outside_the_spec_limit_are_a_command_line_error_naming_the_range(string steps)
    {
        var r = CliProcess.Run(_work, "run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--steps", steps, "--out", "o");
        Assert.That(r.Exit, Is.EqualTo(2));
        Assert.That(r.Err, Does.Contain($"--steps must be a whole number in 1..100000000 (got '{steps}')"));
        Assert.That(r.Err, Does.Not.Contain("System."), "no .NET type name");
        Assert.That(Directory.Exists(Path.Combine(_work, "o")), Is.False);
    }

    [TestCase("directory")]
    [TestCase("fifo")]
    [TestCase("fifo-trace")]
    public void A_data_path_that_is_not_a_regular_file_is_a_spec_error_not_a_hang(string kind)
    {
        string dir = Path.Combine(_root, "data");
        Directory.CreateDirectory(Path.Combine(dir, "trace"));
        foreach (string fifo in new[] { Path.Combine(dir, "fifo"), Path.Combine(dir, "trace", "trace.json") })
            HostileSpecs.MakeFifo(fifo);
        var root = Fixture();
        if (kind == "fifo-trace") root["init"] = new JsonObject { ["mode"] = "injected", ["from"] = Path.Combine(dir, "trace") };
        else root["data"]!["train"] = new JsonObject { ["type"] = "idx", ["images"] = kind == "fifo" ? Path.Combine(dir, "fifo") : dir, ["labels"] = dir };
        string spec = Spec("x.json", root.ToJsonString());
        var r = CliProcess.Run(_work, TimeSpan.FromSeconds(60), null, "run", spec, "--out", "o");
        AssertRefused(r, spec, kind == "fifo-trace" ? "$.init.from" : "$.data.train");
        Assert.That(r.Err, Does.Contain(kind == "directory" ? $"{dir} is a directory, not a file" : "is not a regular file"));
    }

    // The five planner errors of the probe printed the JSON path without the spec file.
    [TestCase("$.data.batchSize", "batch size 641 exceeds the 640 training samples")]
    [TestCase("$.model.inputs", "the model takes 20 inputs but the training data has 21 features")]
    [TestCase("$.model.calls", "the last call outputs 5 values but the data has 6 classes")]
    [TestCase("$.init.from", "the trace directory does not exist")]
    [TestCase("$.data.train", "file not found")]
    public void A_planner_error_names_the_spec_file_first(string jsonPath, string problem)
    {
        var root = Fixture();
        var data = root["data"]!;
        switch (jsonPath)
        {
            case "$.data.batchSize": data["batchSize"] = 641; break;
            case "$.model.inputs": data["train"]!["features"] = 21; data["eval"]!["features"] = 21; break;
            case "$.model.calls": data["train"]!["classes"] = 6; data["eval"]!["classes"] = 6; break;
            case "$.init.from": root["init"] = new JsonObject { ["mode"] = "injected", ["from"] = "no-such-trace" }; break;
            default: data["train"] = new JsonObject { ["type"] = "idx", ["images"] = "no-images.gz", ["labels"] = "no-labels.gz" }; break;
        }
        string spec = Spec("x.json", root.ToJsonString());
        var r = CliProcess.Run(_work, "run", spec, "--out", "o");
        AssertRefused(r, spec, jsonPath);
        Assert.That(r.Err, Does.Contain(problem));
    }

    [Test]
    public void Invalid_utf8_in_a_spec_is_refused_with_its_byte_offset()
    {
        byte[] text = File.ReadAllBytes(CliRunner.Fixture("synthetic-mlp-bn.json"));
        int at = Encoding.UTF8.GetString(text).IndexOf("synthetic-mlp-bn", StringComparison.Ordinal);
        string spec = Path.Combine(_root, "bad.json");
        File.WriteAllBytes(spec, [.. text[..at], 0xFF, 0xFE, .. text[at..]]);
        var r = CliProcess.Run(_work, "run", spec, "--steps", "1", "--out", "o");
        AssertRefused(r, spec, "$");
        Assert.That(r.Err, Does.Contain($"not valid UTF-8: invalid bytes at byte offset {at}"));
    }

    [Test]
    public void Fuzzed_spec_files_exit_0_1_or_2_without_a_stack_trace_a_hang_or_a_stray_file()
    {
        string data = Path.Combine(_root, "data");
        Directory.CreateDirectory(Path.Combine(data, "dir"));
        Directory.CreateDirectory(Path.Combine(data, "trace"));
        foreach (string fifo in new[] { Path.Combine(data, "fifo"), Path.Combine(data, "trace", "trace.json") })
            HostileSpecs.MakeFifo(fifo);
        // Small synthetic fixtures keep the valid runs short; the bombs and path attacks are the generator's own.
        var sources = new[] { "synthetic-mlp-bn.json", "synthetic-shared-bn.json", "synthetic-layernorm-sgd.json", "cs231n-bn.json", "seed002-identity.json" }
            .Select(f => (f, File.ReadAllText(CliRunner.Fixture(f)))).ToList();
        var specs = HostileSpecs.Generate(sources, perCategory: 3, seed: 20261202, Path.Combine(data, "fifo"), Path.Combine(data, "dir"), Path.Combine(data, "trace"));

        var failures = new List<string>();
        var exits = new Dictionary<int, int>();
        var clock = Stopwatch.StartNew();
        foreach (var (spec, i) in specs.Select((s, i) => (s, i)))
        {
            string path = Path.Combine(_root, $"spec{i}.json");
            File.WriteAllBytes(path, spec.Bytes);
            // Half the cases choose --out; the others, and every name attack, leave it to the default out/<name>, where the
            // spec name picks the folder.
            bool chosen = i % 2 == 0 && spec.Category != "path-name";
            string outDir = chosen ? Path.Combine(_work, "out", $"case{i}") : Path.Combine(_work, "out");
            var before = CliProcess.Snapshot(_root);
            var r = CliProcess.Run(_work, TimeSpan.FromSeconds(60), null, chosen ? ["run", path, "--steps", "1", "--out", outDir] : ["run", path, "--steps", "1"]);
            exits[r.Exit] = exits.GetValueOrDefault(r.Exit) + 1;
            string? problem = r.TimedOut ? "no exit within 60 s"
                : r.Exit is not (0 or 1 or 2) ? $"exit code {r.Exit}"
                : r.All.Contains("   at ", StringComparison.Ordinal) || r.All.Contains("Unhandled exception", StringComparison.Ordinal) ? "a stack trace"
                : CliProcess.WrittenOutside(_root, before, outDir) is { Count: > 0 } stray ? $"wrote outside --out: {string.Join(", ", stray.Take(3))}"
                : null;
            if (problem is not null) failures.Add($"{spec.Name}: {problem}\n{r.All[..Math.Min(2000, r.All.Length)]}");
        }
        TestContext.Out.WriteLine($"{specs.Count} hostile specs through the CLI in {clock.Elapsed.TotalSeconds:F1} s; exit codes: "
            + string.Join(", ", exits.OrderBy(e => e.Key).Select(e => $"{e.Key} x{e.Value}")));
        Assert.That(failures, Is.Empty, string.Join("\n\n", failures.Take(5)));
        Assert.That(exits.GetValueOrDefault(2), Is.GreaterThan(specs.Count / 2), "most hostile specs are refused");
    }
}
