using System.Text.Json;
using Parity.Harness;
using Parity.Harness.Seeds;

namespace Parity.Cli.Tests;

/// <summary>One version string everywhere; the scenarios named by what they are; the default baseline folder.</summary>
[NonParallelizable]
public sealed class VersionAndNamesTests
{
    [Test]
    public void Parity_version_prints_the_version_the_report_junit_and_run_manifest_record()
    {
        var (exit, version, stderr) = CliRunner.Run("--version");
        Assert.That(exit, Is.EqualTo(0), stderr);
        version = version.Trim();
        Assert.That(version, Does.Match(@"^\d+\.\d+\.\d+"));

        string outDir = CliRunner.TempDir();
        var (runExit, stdout, runErr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "reference,reference-f32", "--steps", "1", "--out", outDir);
        Assert.That(runExit, Is.EqualTo(0), stdout + runErr);
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")));
        Assert.That(report.RootElement.GetProperty("machine").GetProperty("parity").GetString(), Is.EqualTo(version), "report.json");
        Assert.That(File.ReadAllText(Path.Combine(outDir, "report.html")), Does.Contain($"Parity {version} "), "report.html footer");
        Assert.That(File.ReadAllText(Path.Combine(outDir, "junit.xml")), Does.Contain($"name=\"parityVersion\" value=\"{version}\""), "junit.xml");
        Assert.That(RunManifest.Read(outDir)?.ParityVersion, Is.EqualTo(version), "run.lock");
    }

    [TestCase("shared-batchnorm", "000")]
    [TestCase("000", "000")]
    [TestCase("Identity-Layer", "002")]
    [TestCase("cs231n-batchnorm", "003")]
    public void A_scenario_is_named_by_what_it_is_or_by_its_id(string given, string id) =>
        Assert.That(SeedReplications.Resolve(given), Is.EqualTo(id));

    [Test]
    public void Baselines_default_to_parity_baselines_at_the_git_root_holding_the_spec_else_beside_the_spec()
    {
        string repo = CliRunner.TempDir();
        string specs = Directory.CreateDirectory(Path.Combine(repo, "tests", "specs")).FullName;
        string spec = Path.Combine(specs, "model.json");
        File.WriteAllText(spec, "{}");
        Assert.That(BaselineLocation.For(spec), Is.EqualTo(Path.Combine(specs, "parity-baselines")), "no git work tree: beside the spec");

        Directory.CreateDirectory(Path.Combine(repo, ".git"));
        Assert.That(BaselineLocation.For(spec), Is.EqualTo(Path.Combine(repo, "parity-baselines")), "the git root");
        Assert.That(BaselineLocation.For(specs), Is.EqualTo(Path.Combine(repo, "parity-baselines")), "a directory of specs");
        Assert.That(BaselineLocation.ForRun(Path.Combine(repo, "no-such-run")), Is.EqualTo(Path.Combine(repo, "parity-baselines")), "a run without a report: from its own folder");
    }
}
