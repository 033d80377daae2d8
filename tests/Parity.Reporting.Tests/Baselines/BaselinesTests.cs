using System.Buffers.Binary;
using System.Text.Json;
using Parity.Backends.Reference;
using Parity.Harness;
using Parity.Specs;

namespace Parity.Reporting.Tests.Baselines;

/// <summary>approve / verify on a short run of fixtures/synthetic-mlp-bn.json (6 steps), baselines in a temp folder.</summary>
public sealed class BaselinesTests
{
    private const int Steps = 6;
    private static readonly string SpecPath = Repository.Fixture("synthetic-mlp-bn.json");

    private static string RunInto(string directory)
    {
        var request = new RunRequest(SpecLoader.LoadFile(SpecPath), SpecPath, [ReferenceBackend.Float32Name], ReferenceBackend.Float64Name, directory, Steps);
        RunSession.Execute(request, StandardBackends.Create());
        return directory;
    }

    private static VerifyResult Verify(string root, string outDirectory, IReadOnlyList<string>? backends = null) =>
        Harness.Baselines.Verify(SpecLoader.LoadFile(SpecPath), SpecPath, backends, root, StandardBackends.Create(), outDirectory);

    [Test]
    public void Approve_then_verify_round_trips()
    {
        using var dir = new TempDirectory("baselines");
        string root = Path.Combine(dir.Path, "reference-models");
        var approved = Harness.Baselines.Approve(RunInto(Path.Combine(dir.Path, "run")), root, force: false);

        Assert.That(approved.Select(a => a.Backend), Is.EquivalentTo(new[] { "reference", "reference-f32" }));
        Assert.That(approved.All(a => a.Change is null && !a.Replaced), "first approval: nothing before it");
        foreach (var a in approved)
        {
            Assert.That(a.Directory, Does.StartWith(Path.Combine(root, "synthetic-mlp-bn", a.Backend) + Path.DirectorySeparatorChar));
            Assert.That(Directory.GetFiles(a.Directory).Select(Path.GetFileName), Is.EquivalentTo(new[] { "trace.json", "records.jsonl", "tensors.bin", "baseline.json" }));
        }
        Assert.That(Directory.GetDirectories(Path.Combine(root, "synthetic-mlp-bn", "reference")), Has.Length.EqualTo(1), "no temporary folder left behind");

        var result = Verify(root, Path.Combine(dir.Path, "verify"));
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Agree), string.Join("\n", result.Checks.Select(c => c.Message)));
        Assert.That(result.Checks.Select(c => c.Backend), Is.EquivalentTo(new[] { "reference", "reference-f32" }));
    }

    [Test]
    public void Approve_refuses_to_overwrite_unasked_and_with_force_reports_what_changed()
    {
        using var dir = new TempDirectory("baselines");
        string root = Path.Combine(dir.Path, "reference-models");
        string run = RunInto(Path.Combine(dir.Path, "run"));
        var first = Harness.Baselines.Approve(run, root, force: false);
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(first[0].Directory, "baseline.json"));

        var refused = Assert.Throws<UsageException>(() => Harness.Baselines.Approve(run, root, force: false))!;
        Assert.That(refused.Message, Does.Contain("already approved").And.Contain("--force"));
        Assert.That(File.GetLastWriteTimeUtc(Path.Combine(first[0].Directory, "baseline.json")), Is.EqualTo(stamp), "nothing was written");

        var again = Harness.Baselines.Approve(run, root, force: true);
        Assert.That(again.All(a => a.Replaced));
        Assert.That(again.Select(a => a.Change), Has.All.Contains("unchanged within tolerance"));
    }

    [Test]
    public void Two_approvals_at_once_store_one_baseline_and_refuse_the_other()
    {
        using var dir = new TempDirectory("baselines");
        string root = Path.Combine(dir.Path, "reference-models");
        string run = RunInto(Path.Combine(dir.Path, "run"));
        using var start = new Barrier(2);
        var approvals = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            start.SignalAndWait();
            try
            {
                return Harness.Baselines.Approve(run, root, force: false).Any(a => a.Replaced) ? "replaced" : "approved";
            }
            catch (UsageException e)
            {
                return e.Message;
            }
        })).ToArray();
        Task.WaitAll(approvals);

        Assert.That(approvals.Count(a => a.Result == "approved"), Is.EqualTo(1), string.Join("\n", approvals.Select(a => a.Result)));
        Assert.That(approvals.Single(a => a.Result != "approved").Result, Does.Contain("already approved"), "never replaced without --force");
    }

    [Test]
    public void A_perturbed_baseline_makes_verify_exit_1_naming_the_origin()
    {
        using var dir = new TempDirectory("baselines");
        string root = Path.Combine(dir.Path, "reference-models");
        var approved = Harness.Baselines.Approve(RunInto(Path.Combine(dir.Path, "run")), root, force: false);
        string baseline = approved.Single(a => a.Backend == "reference-f32").Directory;
        PerturbOneElement(baseline, step: 3, kind: "forward", site: "l2", element: 5, delta: 0.5);

        var result = Verify(root, Path.Combine(dir.Path, "verify"));

        Assert.That(result.Verdict, Is.EqualTo(Verdict.Diverge));
        var check = result.Checks.Single(c => c.Backend == "reference-f32");
        Assert.That(check.Verdict, Is.EqualTo(Verdict.Diverge));
        Assert.That(check.Message, Does.Contain("diverge at step 3, forward:l2 (origin)"));
        Assert.That(check.Message, Does.Match(@"Mismatched elements: \d+ / 2048"));
        Assert.That(check.Message, Does.Contain("Greatest absolute difference: 0.4"));
        Assert.That(result.Checks.Single(c => c.Backend == "reference").Verdict, Is.EqualTo(Verdict.Agree));
    }

    [Test]
    public void Verify_exits_2_with_a_clear_message_when_a_backend_has_no_baseline()
    {
        using var dir = new TempDirectory("baselines");
        string root = Path.Combine(dir.Path, "reference-models");
        Harness.Baselines.Approve(RunInto(Path.Combine(dir.Path, "run")), root, force: false);
        Directory.Delete(Path.Combine(root, "synthetic-mlp-bn", "reference-f32"), recursive: true);

        var result = Verify(root, Path.Combine(dir.Path, "verify"), ["reference", "reference-f32"]);

        Assert.That(result.Verdict, Is.EqualTo(Verdict.Error));
        Assert.That(result.Checks.Single(c => c.Backend == "reference-f32").Message, Does.StartWith("no baseline for backend 'reference-f32' of scenario 'synthetic-mlp-bn'"));
    }

    [Test]
    public void Verify_without_any_baseline_of_the_scenario_is_a_usage_error()
    {
        using var dir = new TempDirectory("baselines");
        var e = Assert.Throws<UsageException>(() => Verify(Path.Combine(dir.Path, "empty"), Path.Combine(dir.Path, "verify")))!;
        Assert.That(e.Message, Does.Contain("no baseline for scenario 'synthetic-mlp-bn'").And.Contain("parity approve"));
    }

    [Test]
    public void The_version_key_leaves_out_machine_details_and_build_metadata()
    {
        var runtime = new Dictionary<string, string>
        {
            ["parity-reference"] = "1.0.0+0b8e96982e8c",
            [".net"] = ".NET 10.0.12",
            ["device"] = "cpu",
            ["threads"] = "up to 2 threads",
            ["simd"] = "SIMD 512-bit",
        };
        string key = Harness.Baselines.VersionKey("float32", runtime);
        Assert.That(key, Is.EqualTo("float32_.net-.net-10.0.12_device-cpu_parity-reference-1.0.0"));
        Assert.That(Harness.Baselines.VersionKey("float32", new Dictionary<string, string>(runtime) { ["threads"] = "up to 16 threads" }), Is.EqualTo(key));
    }

    /// <summary>
    /// Seals the trace's new tensors.bin as a writer would have, so the perturbed trace stands for a baseline that a
    /// framework with other numerics produced, not for a damaged one (which verify refuses).
    /// </summary>
    private static void Reseal(string trace)
    {
        string header = Path.Combine(trace, "trace.json");
        var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(header))!;
        ulong hash = System.IO.Hashing.XxHash3.HashToUInt64(File.ReadAllBytes(Path.Combine(trace, "tensors.bin")));
        node["seal"]!["tensorsXxh3"] = hash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
        File.WriteAllText(header, node.ToJsonString());
    }

    /// <summary>Adds <paramref name="delta"/> to one float32 element of one tensor in a trace's tensors.bin.</summary>
    private static void PerturbOneElement(string trace, int step, string kind, string site, int element, double delta)
    {
        foreach (string line in File.ReadLines(Path.Combine(trace, "records.jsonl")))
        {
            var record = JsonDocument.Parse(line).RootElement;
            if (record.GetProperty("step").GetInt32() != step || record.GetProperty("phase").GetString() != "train") continue;
            foreach (var entry in record.GetProperty("entries").EnumerateArray())
            {
                if (entry.GetProperty("kind").GetString() != kind || entry.GetProperty("site").GetString() != site) continue;
                Assert.That(entry.GetProperty("dType").GetString(), Is.EqualTo("float32"));
                long offset = entry.GetProperty("offset").GetInt64() + 4L * element;
                using var bin = new FileStream(Path.Combine(trace, "tensors.bin"), FileMode.Open, FileAccess.ReadWrite);
                var bytes = new byte[4];
                bin.Position = offset;
                bin.ReadExactly(bytes);
                BinaryPrimitives.WriteSingleLittleEndian(bytes, (float)(BinaryPrimitives.ReadSingleLittleEndian(bytes) + delta));
                bin.Position = offset;
                bin.Write(bytes);
                bin.Close();
                Reseal(trace);
                return;
            }
        }
        Assert.Fail($"no {kind}:{site} at step {step} in {trace}");
    }
}
