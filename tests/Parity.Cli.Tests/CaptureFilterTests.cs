using System.Text.Json;
using Parity.Tracing;

namespace Parity.Cli.Tests;

/// <summary><c>parity run --kinds --sites --steps-range</c>: less is captured and written, the report says so, wrong names are usage errors.</summary>
[NonParallelizable]
public sealed class CaptureFilterTests
{
    private static readonly HashSet<TensorKind> Asked = [TensorKind.Forward, TensorKind.OutputGradient, .. TensorKinds.State];

    [Test]
    public void A_filtered_run_writes_only_the_asked_kinds_sites_and_steps_and_every_output_says_what_was_left_out()
    {
        string outDir = CliRunner.TempDir();
        var (exit, stdout, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "reference,reference-f32", "--steps", "4",
            "--kinds", string.Join(",", Asked.Select(k => k.Name())), "--sites", "l2", "--steps-range", "2..3", "--out", outDir);

        Assert.That(exit, Is.EqualTo(0), stdout + stderr);
        Assert.That(stdout, Does.Contain("capture filtered to kinds").And.Contain("sites l2").And.Contain("steps 2..3 of 4"));
        foreach (string backend in new[] { "reference", "reference-f32" })
        {
            foreach (var record in TraceReader.Open(Path.Combine(outDir, "traces", backend)).Records().Where(r => r.Phase == RecordPhase.Train))
            {
                var captured = record.Entries.Where(e => !TensorKinds.AlwaysRecorded.Contains(e.Key.Kind)).Select(e => e.Key).ToList();
                string where = $"{backend} step {record.Step}";
                if (record.Step is 2 or 3)
                {
                    Assert.That(captured.Select(k => k.Kind).Distinct(), Is.SubsetOf(Asked), where);
                    Assert.That(captured.Where(k => !k.Kind.IsState()).Select(k => k.Site).Distinct(), Is.EquivalentTo(new[] { "l2" }), where);
                    Assert.That(captured.Where(k => k.Kind.IsState()).Select(k => k.Site), Does.Contain("l1.weight"), $"{where}: the state of every site stays for the replays");
                }
                else
                {
                    // Step 1 only holds the state step 2 is replayed from; step 4 only the scalars.
                    Assert.That(captured.Where(k => !k.Kind.IsState()), Is.Empty, where);
                    if (record.Step == 4) Assert.That(captured, Is.Empty, where);
                }
            }
        }
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")));
        Assert.That(report.RootElement.GetProperty("scenario").GetProperty("captureFilter").GetString(), Does.Contain("steps 2..3 of 4").And.Contain("are not judged"));
        var stepChecks = report.RootElement.GetProperty("comparisons")[0].GetProperty("stepChecks");
        // Steps 2 and 3 in full, and step 1's state (recorded so that step 2 can be replayed from it), checked too; not step 4.
        Assert.That(stepChecks.GetProperty("stepsChecked").GetInt32(), Is.EqualTo(3), "only the captured steps are step-checked");
        Assert.That(stepChecks.GetProperty("verdict").GetString(), Is.EqualTo("agree"));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "report.html")), Does.Contain("capture filtered to"));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "summary.md")), Does.Contain("capture filtered to"));
    }

    [Test]
    public void A_kinds_filter_keeps_the_state_so_every_captured_step_is_still_step_checked()
    {
        string outDir = CliRunner.TempDir();
        var (exit, stdout, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "reference,reference-f32", "--steps", "2",
            "--kinds", "forward", "--out", outDir);

        Assert.That(exit, Is.EqualTo(0), stdout + stderr);
        var kinds = TraceReader.Open(Path.Combine(outDir, "traces", "reference-f32")).Records().Where(r => r.Phase == RecordPhase.Train)
            .SelectMany(r => r.Entries.Select(e => e.Key.Kind)).Where(k => !TensorKinds.AlwaysRecorded.Contains(k)).ToHashSet();
        Assert.That(kinds, Is.EquivalentTo(TensorKinds.State.Append(TensorKind.Forward)), "forward and the state, no gradients");
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")));
        Assert.That(report.RootElement.GetProperty("comparisons")[0].GetProperty("stepChecks").GetProperty("stepsChecked").GetInt32(), Is.EqualTo(2));
        Assert.That(stdout, Does.Contain("kinds forward (and the state kinds, kept for the step replays)"));
    }

    [TestCase("--kinds", "forward,activations", "unknown tensor kind 'activations': use forward, ")]
    [TestCase("--sites", "l1,conv9", "unknown site 'conv9' in scenario synthetic-mlp-bn; its call sites, layers and parameters are ")]
    [TestCase("--steps-range", "3..2", "the first step 3 comes after the last 2")]
    [TestCase("--steps-range", "9..", "it starts at step 9, after the run's last step 4")]
    public void A_wrong_name_or_range_is_a_usage_error_that_lists_the_valid_ones(string option, string value, string message)
    {
        string outDir = CliRunner.TempDir();
        var (exit, _, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "reference-f32", "--steps", "4", option, value, "--out", outDir);

        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain($"{option}: {message}"));
        if (option == "--sites") Assert.That(stderr, Does.Contain("bn1").And.Contain("l1.weight"));
        Assert.That(Directory.Exists(Path.Combine(outDir, "traces")), Is.False, "refused before anything ran");
    }
}
