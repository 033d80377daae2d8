using System.Text.Json;
using Parity.Backends.All;

namespace Parity.Cli.Tests;

/// <summary><c>parity seed</c> and <c>parity demo</c>'s index (docs/seeds.md), on tiny schedules.</summary>
[NonParallelizable]
public class DemoTests
{
    [TestCase("scenario")]
    [TestCase("seed")]
    public void An_unknown_scenario_exits_2_and_lists_the_names_and_ids_under_the_command_and_its_old_alias(string command)
    {
        var (exit, _, stderr) = CliRunner.Run(command, "042");

        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("unknown scenario '042': use one of shared-batchnorm (000), running-statistics (001), identity-layer (002), cs231n-batchnorm (003)"));
    }

    [Test]
    public void Seed_002_on_two_backends_writes_its_page_and_says_the_identity_changed_nothing()
    {
        string dir = CliRunner.TempDir();

        var (exit, stdout, stderr) = CliRunner.Run("seed", "002", "--backends", "reference,reference-f32", "--steps", "9", "--out", dir);

        Assert.That(exit, Is.EqualTo(0), stdout + stderr);
        Assert.That(stdout, Does.Contain("reproduced and diagnosed").And.Contain(Path.Combine(dir, "index.html")));
        using var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "results.json")));
        var reports = results.RootElement.GetProperty("reports").EnumerateArray().ToList();
        Assert.That(reports.Select(r => r.GetProperty("initMode").GetString()), Is.EqualTo(new[] { "injected", "framework" }));
        Assert.That(reports[0].GetProperty("steps").GetInt32(), Is.EqualTo(9));
    }

    [Test]
    public void Seed_000_for_three_steps_shows_the_shared_instance_finding_in_its_results()
    {
        Assert.That(File.Exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"), Is.True, "run scripts/setup (dataset-fashion-mnist)");
        string dir = CliRunner.TempDir();

        var (exit, stdout, stderr) = CliRunner.Run("seed", "000", "--backends", "reference-f32", "--quick", "--steps", "3", "--out", dir);

        Assert.That(exit, Is.AnyOf(0, 1), stdout + stderr);
        string summary = File.ReadAllText(Path.Combine(dir, "summary.md"));
        Assert.That(summary, Does.Contain("| shared | shared-stateful-layer | reference-f32 |"));
        Assert.That(summary, Does.Contain("| shared | bn | mean of sites | 3 |"));
        Assert.That(File.ReadAllText(Path.Combine(dir, "index.html")), Does.Contain("<svg"));
    }

    [Test]
    public void The_demo_index_has_one_row_per_seed_linking_its_report_and_encodes_text()
    {
        string dir = CliRunner.TempDir();
        var outcomes = new[]
        {
            new DemoCommand.IndexRow("000", "Seed 000: <shared> BN", "gap 0.1 | found", true, "seed000/index.html", "seed000/summary.md"),
            new DemoCommand.IndexRow("001", "Seed 001", "lag", false, "seed001/index.html", "seed001/summary.md"),
        };

        DemoCommand.WriteIndex(dir, outcomes, TimeSpan.FromSeconds(12));

        string md = File.ReadAllText(Path.Combine(dir, "index.md"));
        Assert.That(md, Does.Contain("| 000 | Seed 000: <shared> BN | gap 0.1 \\| found | yes | [seed000/index.html](seed000/index.html)"));
        Assert.That(md, Does.Contain("| 001 | Seed 001 | lag | NO |"));
        string html = File.ReadAllText(Path.Combine(dir, "index.html"));
        Assert.That(html, Does.Contain("Seed 000: &lt;shared&gt; BN").And.Contain("href=\"seed001/index.html\""));
    }

    [Test]
    public void The_demo_s_planted_bug_is_caught_at_the_step_it_starts_with_its_cause_named()
    {
        string dir = CliRunner.TempDir();
        using var output = new StringWriter();

        var row = DemoCommand.CaughtBug(dir, BackendCatalog.Create(), output);

        Assert.That(row.Reproduced, Is.True, output.ToString());
        Assert.That(row.Result, Does.Match(@"verdict diverge \(exit 1\): first divergence at step 8, running(Mean|Variance):bn1; cause bn-momentum-convention"));
        Assert.That(File.ReadAllText(Path.Combine(dir, "summary.md")), Does.Contain("bn-momentum-convention"));
        Assert.That(File.Exists(Path.Combine(dir, "report.html")), Is.True);
    }
}
