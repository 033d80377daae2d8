using System.Text.Json;

namespace Parity.Cli.Tests;

[NonParallelizable]
public class RunCommandTests
{
    [Test]
    public void A_float32_reference_agrees_with_the_float64_reference_and_the_run_exits_0()
    {
        string outDir = CliRunner.TempDir();
        var (exit, stdout, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "reference,reference-f32", "--steps", "20", "--out", outDir);

        Assert.That(exit, Is.EqualTo(0), stdout + stderr);
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")));
        var comparison = report.RootElement.GetProperty("comparisons").EnumerateArray().Single();
        Assert.That(comparison.GetProperty("backend").GetString(), Is.EqualTo("reference-f32"));
        Assert.That(comparison.GetProperty("verdict").GetString(), Is.EqualTo("agree"));
        Assert.That(report.RootElement.GetProperty("scenario").GetProperty("steps").GetInt32(), Is.EqualTo(20));
        Assert.That(Directory.Exists(Path.Combine(outDir, "traces", "reference")), Is.True);
    }

    [TestCase("mine=/no/such/adapter.py", "the adapter module /no/such/adapter.py does not exist")]
    [TestCase("mine=/etc/hostname", "/etc/hostname is not a Python module")]
    [TestCase("mine", "expected NAME=ADAPTER.py")]
    public void A_bad_python_adapter_is_a_usage_error_naming_the_value_before_anything_runs(string value, string message)
    {
        string outDir = CliRunner.TempDir();
        var (exit, stdout, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "reference,mine", "--steps", "1",
            "--python-adapter", value, "--out", outDir);
        Assert.That(exit, Is.EqualTo(2), stdout + stderr);
        Assert.That(stderr, Does.Contain($"--python-adapter '{value}': {message}"));
        Assert.That(File.Exists(Path.Combine(outDir, "report.json")), Is.False, "nothing ran");
    }

    private static readonly string FakeWorker = Path.Combine(Harness.RepoPaths.Root, "tests", "Parity.Backends.Workers.Tests", "faulty", "fake-worker.py");

    [Test]
    public void Keep_traces_failed_keeps_the_diverging_backend_with_what_it_was_judged_against_and_diagnose_still_explains_it()
    {
        string outDir = CliRunner.TempDir();
        // The fake worker answers zeros: it diverges from the reference at once; reference-f32 agrees.
        var (exit, stdout, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "reference,reference-f32,fw", "--steps", "3",
            "--worker", $"fw=/usr/bin/python3 {FakeWorker} ok", "--keep-traces", "failed", "--out", outDir);

        Assert.That(exit, Is.EqualTo(1), stdout + stderr);
        string traces = Path.Combine(outDir, "traces");
        Assert.That(Directory.Exists(Path.Combine(traces, "fw")), Is.True, "the diverging backend's trace");
        Assert.That(Directory.Exists(Path.Combine(traces, "reference")), Is.True, "the reference it was judged against");
        Assert.That(Directory.Exists(Path.Combine(traces, "reference-f32")), Is.True, "fw's noise envelope");
        Assert.That(File.Exists(Path.Combine(outDir, "report.html")), Is.True);

        var (_, diagnosis, diagnoseErr) = CliRunner.Run("diagnose", outDir);
        Assert.That(diagnosis, Does.Contain("over 3 backend(s)").And.Contain("[initial-weights-mismatch] cause: fw at step 0"), diagnoseErr);
    }

    [Test]
    public void Keep_traces_none_leaves_the_reports_and_diagnose_says_why_the_traces_are_gone()
    {
        string outDir = CliRunner.TempDir();
        var (exit, stdout, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "reference,reference-f32", "--steps", "2",
            "--keep-traces", "none", "--out", outDir);

        Assert.That(exit, Is.EqualTo(0), stdout + stderr);
        Assert.That(Directory.GetDirectories(Path.Combine(outDir, "traces")), Is.Empty);
        foreach (string file in new[] { "report.json", "report.html", "summary.md", "junit.xml" })
            Assert.That(File.Exists(Path.Combine(outDir, file)), Is.True, file);
        var (_, diagnosis, _) = CliRunner.Run("diagnose", outDir);
        Assert.That(diagnosis, Does.Contain("backend reference-f32 is left out: its trace was not kept (--keep-traces none)"));

        var (badExit, _, badErr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--keep-traces", "some", "--out", CliRunner.TempDir());
        Assert.That(badExit, Is.EqualTo(2));
        Assert.That(badErr, Does.Contain("--keep-traces: 'some' is not one of: all, failed, none"));
    }

    [Test]
    public void Json_output_of_run_and_backends_is_the_report_and_the_backend_list()
    {
        string outDir = CliRunner.TempDir();
        var (exit, stdout, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--steps", "1", "--json", "--out", outDir);
        Assert.That(exit, Is.EqualTo(0), stderr);
        using (var report = JsonDocument.Parse(stdout))
        {
            Assert.That(report.RootElement.GetProperty("format").GetString(), Is.EqualTo("parity-report"));
            Assert.That(report.RootElement.GetProperty("verdict").GetString(), Is.EqualTo("agree"));
        }

        (exit, stdout, stderr) = CliRunner.Run("backends", "--json");
        Assert.That(exit, Is.EqualTo(0), stderr);
        using var list = JsonDocument.Parse(stdout);
        var reference = list.RootElement.EnumerateArray().Single(b => b.GetProperty("name").GetString() == "reference");
        Assert.That(reference.GetProperty("available").GetBoolean(), Is.True);
        Assert.That(reference.GetProperty("dtypes")[0].GetString(), Is.EqualTo("float64"));
    }

    [Test]
    public void A_spec_with_a_wrong_type_exits_2_naming_the_json_path()
    {
        string dir = CliRunner.TempDir();
        string spec = Path.Combine(dir, "broken.json");
        File.WriteAllText(spec, File.ReadAllText(CliRunner.Fixture("synthetic-mlp-bn.json")).Replace("\"batchSize\": 64", "\"batchSize\": \"sixty-four\""));

        var (exit, _, stderr) = CliRunner.Run("run", spec, "--out", Path.Combine(dir, "out"));

        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("$.data.batchSize").And.Contain("expected an integer"));
        Assert.That(stderr, Does.Not.Contain("   at "), "no stack trace for a user mistake");
    }

    [Test]
    public void A_missing_spec_file_exits_2_with_a_one_line_message()
    {
        var (exit, _, stderr) = CliRunner.Run("run", "/nonexistent/spec.json");

        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("/nonexistent/spec.json").And.Contain("cannot read"));
    }

    [Test]
    public void An_unknown_backend_exits_2_and_lists_the_known_ones()
    {
        var (exit, _, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "reference,tensorflow-9");

        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("unknown backend 'tensorflow-9'").And.Contain("reference-f32"));
    }

    [Test]
    public void An_unknown_option_exits_2()
    {
        var (exit, _, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--stepz", "3");

        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("--stepz"));
    }

    [Test]
    public void The_backends_command_lists_the_reference_backends_as_available()
    {
        var (exit, stdout, _) = CliRunner.Run("backends");

        Assert.That(exit, Is.EqualTo(0));
        Assert.That(stdout, Does.Match(@"(?m)^reference\s+yes"));
        Assert.That(stdout, Does.Match(@"(?m)^reference-f32\s+yes"));
    }
}

[NonParallelizable]
public class OutputErrorTests
{
    [Test]
    public void An_output_directory_that_cannot_be_created_exits_2_with_a_message()
    {
        string dir = CliRunner.TempDir();
        string blocker = Path.Combine(dir, "a-file");
        File.WriteAllText(blocker, "not a directory");

        var (exit, _, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--steps", "1", "--out", Path.Combine(blocker, "run"));

        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("parity: cannot write the run's files"));
    }
}
