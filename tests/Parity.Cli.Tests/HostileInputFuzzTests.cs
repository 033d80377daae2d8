using System.Diagnostics;
using System.Text.Json.Nodes;
using Parity.Testing;

namespace Parity.Cli.Tests;

/// <summary>
/// A fuzzer of damaged traces, reports and baselines and of hostile workers, driven through the real commands
/// (<c>run</c>, <c>diagnose</c>, <c>verify</c>, <c>approve</c>). Whatever the input: exit code 0, 1 or 2 only; damaged
/// input is exit 2, never an agreement (0) or a numeric divergence (1); no stack trace without --verbose; no hang past
/// the time limit; nothing written outside the directory the command was given; no worker process left.
/// </summary>
[NonParallelizable]
public class HostileInputFuzzTests
{
    private const int Steps = 3;
    private static readonly string Spec = CliRunner.Fixture("synthetic-mlp-bn.json");
    private static readonly string FakeWorker = Path.Combine(Harness.RepoPaths.Root, "tests", "Parity.Backends.Workers.Tests", "faulty", "fake-worker.py");
    private string _sandbox = "";
    private string _run = "";
    private string _baselines = "";

    [OneTimeSetUp]
    public void RunAndApproveOnce()
    {
        _sandbox = CliRunner.TempDir();
        _run = Path.Combine(_sandbox, "run");
        _baselines = Path.Combine(_sandbox, "baselines");
        Expect(0, "run", Spec, "--steps", Steps.ToString(), "--out", _run);
        Expect(0, "approve", _run, "--baselines", _baselines);
    }

    [OneTimeTearDown]
    public void RemoveSandbox() => Directory.Delete(_sandbox, recursive: true);

    /// <summary>Damage done to one trace directory: the eleven trace corruptions, and more.</summary>
    private static readonly Dictionary<string, Action<string>> TraceDamage = new()
    {
        ["bad kind"] = t => EditRecords(t, 1, line => line.Replace("\"kind\":\"forward\"", "\"kind\":\"forwardz\"", StringComparison.Ordinal)),
        ["negative offset"] = t => EditRecords(t, 1, line => System.Text.RegularExpressions.Regex.Replace(line, "\"offset\":\\d+", "\"offset\":-8")),
        ["huge shape"] = t => EditRecords(t, 1, line => System.Text.RegularExpressions.Regex.Replace(line, "\"shape\":\\[[0-9,]+\\]", "\"shape\":[2147483647,2147483647]")),
        ["wrong version"] = t => EditHeader(t, h => h["version"] = 99),
        ["non-JSON header"] = t => File.WriteAllText(Path.Combine(t, "trace.json"), "{ not json"),
        ["garbage middle line"] = t => EditRecords(t, 1, _ => "#%&! garbage"),
        ["torn last line"] = t => CutRecords(t, tornLast: true),
        ["records cut at a line end"] = t => CutRecords(t, tornLast: false),
        ["empty records"] = t => File.WriteAllText(Path.Combine(t, "records.jsonl"), ""),
        ["truncated tensors.bin"] = t => Truncate(Path.Combine(t, "tensors.bin")),
        ["deleted trace folder"] = t => Directory.Delete(t, recursive: true),
        ["byte flip"] = t => FlipBit(Path.Combine(t, "tensors.bin")),
        ["edited specHash"] = t => EditHeader(t, h => h["specHash"] = "0000000000000000"),
        ["deleted tensors.bin"] = t => File.Delete(Path.Combine(t, "tensors.bin")),
        ["deleted records.jsonl"] = t => File.Delete(Path.Combine(t, "records.jsonl")),
        ["status edited to failed"] = t => EditHeader(t, h => h["status"] = "failed"),
        ["seal removed"] = t => EditHeader(t, h => h.AsObject().Remove("seal")),
    };

    private static IEnumerable<string> TraceDamages() => TraceDamage.Keys;

    private static IEnumerable<string> BaselineDamages() => TraceDamage.Keys.Append("garbage baseline.json").Append("edited baseline specHash");

    [TestCaseSource(nameof(TraceDamages))]
    public void Diagnose_refuses_a_damaged_trace_as_an_input_error(string damage)
    {
        string copy = Copy(_run);
        TraceDamage[damage](Path.Combine(copy, "traces", "reference-f32"));
        var (_, _, stderr) = Expect(2, "diagnose", copy);
        Assert.That(stderr, Does.Contain("reference-f32").Or.Contain(copy), "the message names the damaged file");
    }

    [TestCase("backends", null)]
    [TestCase("trace", "/etc")]
    [TestCase("trace", "../../..")]
    [TestCase("scenario", null)]
    public void Diagnose_and_approve_refuse_a_damaged_report(string field, string? value)
    {
        string copy = Copy(_run);
        EditJson(Path.Combine(copy, "report.json"), report =>
        {
            if (field == "trace") report["backends"]![1]!["trace"] = value;
            else report[field] = value;
        });
        Expect(2, "diagnose", copy);
        string root = Path.Combine(_sandbox, "approve-" + Guid.NewGuid().ToString("N"));
        Expect(2, "approve", copy, "--baselines", root);
        Assert.That(Directory.Exists(root) ? Directory.GetFiles(root, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".approve.lock", StringComparison.Ordinal)) : [], Is.Empty);
    }

    [TestCaseSource(nameof(BaselineDamages))]
    public void Verify_refuses_a_damaged_baseline_as_an_error(string damage)
    {
        string baselines = Copy(_baselines);
        string baseline = Directory.GetDirectories(Path.Combine(baselines, "synthetic-mlp-bn", "reference-f32")).Single();
        if (damage == "garbage baseline.json") File.WriteAllText(Path.Combine(baseline, "baseline.json"), "[[[");
        else if (damage == "edited baseline specHash") EditJson(Path.Combine(baseline, "baseline.json"), b => b["specHash"] = "0000000000000000");
        else TraceDamage[damage](baseline);
        string output = Path.Combine(_sandbox, "verify-" + Guid.NewGuid().ToString("N"));
        var (_, stdout, stderr) = Expect(2, new[] { baselines, output }, "verify", Spec, "--baselines", baselines, "--out", output);
        if (damage != "deleted trace folder") Assert.That(stdout + stderr, Does.Contain("reference-f32"));
    }

    [TestCase("torn last line")]
    [TestCase("records cut at a line end")]
    [TestCase("truncated tensors.bin")]
    [TestCase("status running")]
    public void Approve_stores_nothing_from_a_truncated_or_running_trace(string damage)
    {
        string copy = Copy(_run);
        string trace = Path.Combine(copy, "traces", "reference-f32");
        if (damage == "status running") EditHeader(trace, h => { h["status"] = "running"; h.AsObject().Remove("seal"); });
        else TraceDamage[damage](trace);
        string root = Path.Combine(_sandbox, "approve-" + Guid.NewGuid().ToString("N"));
        var (_, _, stderr) = Expect(2, new[] { root }, "approve", copy, "--baselines", root);
        Assert.That(stderr, Does.Contain("reference-f32"));
        Assert.That(Directory.Exists(root) ? Directory.GetDirectories(root, "*", SearchOption.AllDirectories).Where(d => !Path.GetFileName(d).StartsWith('.')) : [], Is.Empty, "nothing was approved");
    }

    [TestCase("devzero")]
    [TestCase("fifo")]
    [TestCase("symlink")]
    [TestCase("outside")]
    [TestCase("endless")]
    [TestCase("bigline")]
    [TestCase("garbage")]
    [TestCase("deep")]
    [TestCase("hugeshape")]
    [TestCase("negshape")]
    [TestCase("orphan")]
    [TestCase("setsid")]
    [TestCase("crash")]
    public void A_hostile_worker_fails_alone_and_the_run_keeps_everything_else(string fault)
    {
        string marker = Random.Shared.Next(100_000, 999_999).ToString(System.Globalization.CultureInfo.InvariantCulture);
        string output = Path.Combine(_sandbox, "worker-" + fault);
        string worker = $"fw=/usr/bin/python3 {FakeWorker} {fault} 2";
        Environment.SetEnvironmentVariable("FAKE_MARKER", marker);
        try
        {
            var (_, stdout, _) = Expect(2, new[] { output }, "run", Spec, "--steps", Steps.ToString(), "--timeout", "5", "--out", output,
                "--backends", "reference,reference-f32,fw", "--worker", worker);
            Assert.That(stdout, Does.Contain("verdict: error"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("FAKE_MARKER", null);
        }
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "report.json")))!;
        var statuses = report["backends"]!.AsArray().ToDictionary(b => (string)b!["name"]!, b => (string)b!["status"]!);
        Assert.That(statuses["reference-f32"], Is.EqualTo("completed"), "the other backends' work is kept");
        Assert.That(statuses["fw"], Is.EqualTo("failed"));
        for (int i = 0; i < 50 && ProcessTable.WithArgument("600." + marker).Count > 0; i++) Thread.Sleep(100);
        Assert.That(ProcessTable.WithArgument("600." + marker), Is.Empty, "no process of the worker is left");
        Assert.That(Directory.GetDirectories(Path.GetTempPath(), $"parity-worker-{Environment.ProcessId}-*"), Is.Empty, "the exchange directory is gone");
    }

    [Test]
    public void A_harness_killed_with_sigkill_takes_its_worker_along_and_diagnose_reads_what_it_left()
    {
        string marker = Random.Shared.Next(100_000, 999_999).ToString(System.Globalization.CultureInfo.InvariantCulture);
        string output = Path.Combine(_sandbox, "killed");
        using var harness = StartHarnessWithHangingWorker(output, marker);
        var worker = ProcessTable.WithArgument(FakeWorker);
        Assert.That(worker, Is.Not.Empty);
        harness.Kill(entireProcessTree: false);
        harness.WaitForExit();
        for (int i = 0; i < 100 && (ProcessTable.WithArgument("600." + marker).Count > 0 || worker.Any(ProcessTable.IsAlive)); i++) Thread.Sleep(100);
        Assert.That(worker.Where(ProcessTable.IsAlive), Is.Empty, "the worker died with its harness");
        Assert.That(ProcessTable.WithArgument("600." + marker), Is.Empty, "and so did its child");

        // The fake worker's zero weights are a finding (exit 1); without one an interrupted run is exit 2, never 0.
        var (exit, stdout, stderr) = Run("diagnose", output);
        Assert.That(exit, Is.AnyOf(1, 2), stdout + stderr);
        Assert.That(stdout, Does.Contain("status interrupted").And.Contain("diagnosing the 2 trace(s) it left"), "the traces so far: the reference's, and the worker's first step");
        Assert.That(stdout, Does.Contain(Path.Combine(output, "traces", "fw") + ": status running"));
        Assert.That(stdout + stderr, Does.Not.Contain("   at "));
    }

    /// <summary>
    /// Starts <c>parity run</c> of the reference and a fake worker that starts a child and hangs at step 2 (request
    /// timeout 600 s) in a process of its own, and returns it once the worker hangs: the run then holds
    /// <paramref name="output"/> and has written the reference's trace and the worker's first step. One lane
    /// (<c>--jobs 1</c>), so the worker's noise envelopes have not started beside it and what the run left is known.
    /// </summary>
    private static Process StartHarnessWithHangingWorker(string output, string marker)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { Path.Combine(AppContext.BaseDirectory, "parity.dll"), "run", Spec, "--steps", "5", "--timeout", "600", "--out", output,
            "--backends", "reference,fw", "--jobs", "1", "--worker", $"fw=/usr/bin/python3 {FakeWorker} spawnhang 2" })
            info.ArgumentList.Add(a);
        info.Environment["FAKE_MARKER"] = marker;
        var harness = Process.Start(info)!;
        var clock = Stopwatch.StartNew();
        while (ProcessTable.WithArgument("600." + marker).Count == 0)
        {
            Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(90)), "the worker reached its hanging step");
            Assert.That(harness.HasExited, Is.False, harness.HasExited ? harness.StandardError.ReadToEnd() : "");
            Thread.Sleep(200);
        }
        return harness;
    }

    [Test]
    public void A_run_of_another_spec_into_the_directory_of_a_running_run_is_refused_and_the_first_run_stays_whole()
    {
        // Two runs into one --out (synthetic-mlp-bn, and synthetic-shared-bn 0.3 s later) both said "agree": report.json
        // named the first scenario, every trace the second, and records.jsonl had a garbled line.
        string marker = Random.Shared.Next(100_000, 999_999).ToString(System.Globalization.CultureInfo.InvariantCulture);
        string output = Path.Combine(_sandbox, "same");
        using var first = StartHarnessWithHangingWorker(output, marker);
        var (_, _, stderr) = Expect(2, new[] { output }, "run", CliRunner.Fixture("synthetic-shared-bn.json"), "--steps", "5", "--out", output);
        Assert.That(stderr, Does.Contain(output).And.Contain("is in use by another parity process"));

        // The worker dies mid-hang: the first run finishes with the worker failed and writes its report.
        Process.GetProcessById(ProcessTable.ParentOf(ProcessTable.WithArgument("600." + marker).Single())).Kill();
        Assert.That(first.WaitForExit(TimeSpan.FromSeconds(120)), Is.True, "the first run ends once its worker is gone");
        Assert.That(first.ExitCode, Is.EqualTo(2), first.StandardOutput.ReadToEnd() + first.StandardError.ReadToEnd());
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "report.json")))!;
        Assert.That((string?)report["scenario"]!["name"], Is.EqualTo("synthetic-mlp-bn"));
        foreach (string trace in Directory.GetDirectories(Path.Combine(output, "traces")))
            Assert.That(Tracing.TraceReader.Open(trace).Header.Scenario, Is.EqualTo("synthetic-mlp-bn"), trace);
    }

    [Test]
    public void Two_approvals_at_once_into_one_folder_store_one_baseline_and_replace_nothing()
    {
        // approve of a 5-step and a 6-step run started together: in 3 of 5 tries both exited 0 and one printed
        // "replaced reference: ..." without --force.
        string other = Path.Combine(_sandbox, "run-4-steps");
        Expect(0, "run", Spec, "--steps", (Steps + 1).ToString(), "--out", other);
        string root = Path.Combine(_sandbox, "approve-race-" + Guid.NewGuid().ToString("N"));
        var approvals = new[] { _run, other }.Select(run => Task.Run(() => CliProcess.Run(_sandbox, "approve", run, "--baselines", root))).ToArray();
        Task.WaitAll(approvals);
        var results = approvals.Select(a => a.Result).ToList();
        string all = string.Join("\n", results.Select(r => $"exit {r.Exit}: {r.All}"));
        Assert.That(results.Count(r => r.Exit == 0), Is.EqualTo(1), all);
        Assert.That(results.Single(r => r.Exit != 0).Exit, Is.EqualTo(2), all);
        Assert.That(results.Single(r => r.Exit != 0).Err, Does.Contain("already approved"), all);
        Assert.That(all, Does.Not.Contain("replaced"), "never replaced without --force");
    }

    [Test]
    public void A_second_run_into_a_directory_in_use_fails_at_once()
    {
        string output = Path.Combine(_sandbox, "busy");
        using var held = IO.DirectoryLock.Acquire(output, Harness.RunManifest.FileName, "{}");
        var (_, _, stderr) = Expect(2, new[] { output }, "run", Spec, "--steps", "1", "--out", output);
        Assert.That(stderr, Does.Contain("is in use by another parity process"));
        Assert.That(File.Exists(Path.Combine(output, "report.json")), Is.False);
    }

    [Test]
    public void Terminal_escapes_in_a_spec_name_are_refused_and_reach_the_terminal_as_visible_text()
    {
        // A scenario name is an identifier (it names the output folder): escapes in it are a $.name error, and the
        // error quotes the name with its control characters escaped.
        string spec = Path.Combine(_sandbox, "escape.json");
        var node = JsonNode.Parse(File.ReadAllText(Spec))!;
        node["name"] = "x\u001b]0;pwned\u0007\u001b[2J\u202e\nverdict: agree";
        File.WriteAllText(spec, node.ToJsonString());
        string output = Path.Combine(_sandbox, "escape-out");
        var (exit, stdout, stderr) = Run("run", spec, "--steps", "1", "--out", output);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stdout + stderr, Does.Not.Contain("\u001b").And.Not.Contain("\u0007").And.Not.Contain("\u202e"));
        Assert.That(stderr, Does.Contain("$.name").And.Contain("\\u001B]0;pwned\\u0007"));
        Assert.That((stdout + stderr).Split('\n').Count(l => l.StartsWith("verdict:", StringComparison.Ordinal)), Is.Zero, "no forged verdict line");
    }

    [Test]
    public void Terminal_escapes_from_a_worker_reach_the_terminal_as_visible_text()
    {
        // A worker's error message and stderr tail reached the terminal raw: escapes set the title and cleared the
        // screen, and a newline in them printed a forged "verdict: agree" line.
        string output = Path.Combine(_sandbox, "worker-escapes");
        var (_, stdout, stderr) = Expect(2, new[] { output }, "run", Spec, "--steps", Steps.ToString(), "--timeout", "5", "--out", output,
            "--backends", "reference,reference-f32,fw", "--worker", $"fw=/usr/bin/python3 {FakeWorker} escapes 2");
        string all = stdout + stderr;
        Assert.That(all, Does.Not.Contain("\u001b").And.Not.Contain("\u0007"));
        Assert.That(all, Does.Contain("failed \\x1b]0;pwned\\x07").And.Contain("fake worker: \\x1b]0;pwned\\x07"), "the message and the stderr tail, escaped");
        var lines = all.Split('\n');
        Assert.That(lines.Where(l => l.StartsWith("verdict:", StringComparison.Ordinal)), Is.EqualTo(new[] { "verdict: error" }), "no forged verdict line");
        Assert.That(lines.Where(l => l.StartsWith("report: /fake", StringComparison.Ordinal)), Is.Empty);
        Assert.That(lines.Count(l => l.Contains("worker 'fw' refused 'step'", StringComparison.Ordinal)), Is.EqualTo(1), "the failure is printed once, not again as its comparison's");
    }

    [Test]
    public void Every_error_is_one_line_and_verbose_adds_the_stack_trace()
    {
        string copy = Copy(_run);
        TraceDamage["bad kind"](Path.Combine(copy, "traces", "reference-f32"));
        var (_, _, quiet) = Expect(2, "diagnose", copy);
        Assert.That(quiet.Trim().Split('\n'), Has.Length.EqualTo(1), quiet);
        var (exit, _, verbose) = Run("diagnose", copy, "--verbose");
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(verbose, Does.Contain("InvalidDataException").And.Contain("   at "));
    }

    /// <summary>
    /// Runs the CLI with a time limit and checks the invariants: the expected exit code, no stack trace, and no file
    /// written under the sandbox outside <paramref name="allowed"/>.
    /// </summary>
    private (int Exit, string Out, string Err) Expect(int exit, string[] allowed, params string[] args)
    {
        var before = Snapshot();
        var result = Run(args);
        Assert.That(result.Exit, Is.EqualTo(exit), $"parity {string.Join(" ", args)}\n{result.Out}{result.Err}");
        Assert.That(result.Out + result.Err, Does.Not.Contain("   at ").And.Not.Contain("Unhandled exception"), "no stack trace without --verbose");
        var written = Snapshot().Where(f => !before.TryGetValue(f.Key, out var stamp) || stamp != f.Value).Select(f => f.Key)
            .Where(f => !allowed.Any(a => f.StartsWith(a + Path.DirectorySeparatorChar, StringComparison.Ordinal))).ToList();
        Assert.That(written, Is.Empty, "nothing written outside the directory the command was given");
        return result;
    }

    private (int Exit, string Out, string Err) Expect(int exit, params string[] args) =>
        Expect(exit, args.Contains("--out") ? [args[Array.IndexOf(args, "--out") + 1]] : args.Contains("--baselines") ? [args[Array.IndexOf(args, "--baselines") + 1]] : [], args);

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var task = Task.Run(() => CliRunner.Run(args));
        Assert.That(task.Wait(TimeSpan.FromSeconds(120)), Is.True, $"parity {string.Join(" ", args)} ended within the limit");
        Assert.That(task.Result.Exit, Is.AnyOf(0, 1, 2));
        return task.Result;
    }

    private Dictionary<string, DateTime> Snapshot() =>
        Directory.GetFiles(_sandbox, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.GetLastWriteTimeUtc);

    private string Copy(string source)
    {
        string target = Path.Combine(_sandbox, "copy-" + Guid.NewGuid().ToString("N"));
        foreach (string dir in Directory.GetDirectories(source, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(dir.Replace(source, target, StringComparison.Ordinal));
        Directory.CreateDirectory(target);
        foreach (string file in Directory.GetFiles(source, "*", SearchOption.AllDirectories)) File.Copy(file, file.Replace(source, target, StringComparison.Ordinal));
        return target;
    }

    private static void EditRecords(string trace, int line, Func<string, string> edit)
    {
        string path = Path.Combine(trace, "records.jsonl");
        var lines = File.ReadAllLines(path);
        string edited = edit(lines[line]);
        Assert.That(edited, Is.Not.EqualTo(lines[line]), "the damage applies");
        lines[line] = edited;
        File.WriteAllLines(path, lines);
    }

    /// <summary>Cuts records.jsonl in the middle of its last line, or after its first three records (whole lines).</summary>
    private static void CutRecords(string trace, bool tornLast)
    {
        string path = Path.Combine(trace, "records.jsonl");
        var lines = File.ReadAllLines(path);
        Assert.That(lines, Has.Length.GreaterThan(3), "the cut drops records");
        string last = lines[^1];
        File.WriteAllText(path, tornLast ? string.Join("\n", lines[..^1]) + "\n" + last[..(last.Length / 2)] : string.Join("\n", lines[..3]) + "\n");
    }

    private static void EditHeader(string trace, Action<JsonNode> edit) => EditJson(Path.Combine(trace, "trace.json"), edit);

    private static void EditJson(string path, Action<JsonNode> edit)
    {
        var node = JsonNode.Parse(File.ReadAllText(path))!;
        edit(node);
        File.WriteAllText(path, node.ToJsonString());
    }

    private static void Truncate(string path)
    {
        using var f = new FileStream(path, FileMode.Open);
        f.SetLength(f.Length / 2);
    }

    private static void FlipBit(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 1;
        File.WriteAllBytes(path, bytes);
    }
}
