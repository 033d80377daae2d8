using System.Net;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Parity.Backends;
using Parity.Comparison;
using Parity.Diagnostics;
using Parity.NUnit;
using Parity.Reporting;
using Parity.Reporting.Html;
using Parity.Reporting.JUnit;
using Parity.Reporting.Markdown;

namespace Parity.Cli.Tests;

/// <summary>
/// The five outputs a person reads (terminal, report.html, summary.md, junit.xml, ParityAssert's message) explain each
/// divergence in the same words, and none of them calls a finding about the spec a cause.
/// </summary>
public sealed class ExplanationSurfacesTests
{
    private const string RunningVariance = "model.layers[bn].runningVariance";

    public static IEnumerable<TestCaseData> Cases()
    {
        // seed000-shared-bn judged on trajectories: keras diverges in its running variance, which it declared it stores biased;
        // every backend shares the batchnorm alike, a finding about the spec.
        yield return new TestCaseData(Array.Empty<string>(), RunningVariance, $"explained by declared mismatch {RunningVariance}").SetName("Declared_mismatch");
        yield return new TestCaseData(new[] { CauseIds.BnMomentumConvention }, null, "cause: bn-momentum-convention").SetName("Detector_cause");
        yield return new TestCaseData(new[] { CauseIds.UnexplainedDivergence }, null, "unexplained: no known cause fits").SetName("Unexplained");
    }

    [TestCaseSource(nameof(Cases))]
    public void Every_output_explains_the_divergence_in_the_same_words(string[] causes, string? declared, string expected)
    {
        var report = Report(causes, declared);

        foreach (var (surface, text) in Surfaces(report))
        {
            // The headline form (terminal, table cells, JUnit message) or the line of the full message (ParityAssert).
            Assert.That(text, Does.Contain($"step 1, runningVariance:bn (origin): {expected}").Or.Contain($"\nExplanation: {expected}\n"), surface);
            Assert.That(text, Does.Not.Match("(?i)cause:? \\[?shared-stateful-layer"), $"{surface} calls a finding about the spec a cause");
        }
    }

    [Test]
    public void A_finding_every_backend_shows_is_shown_once_listing_the_backends()
    {
        var report = Report([], RunningVariance);
        var surfaces = Surfaces(report).ToDictionary(s => s.Surface, s => s.Text);

        Assert.That(surfaces["terminal"], Does.Contain("about the spec [shared-stateful-layer] reference, torchsharp, keras at step 1 train runningMean:bn"));
        Assert.That(Regex.Matches(surfaces["terminal"], "shared-stateful-layer").Count, Is.EqualTo(1));
        Assert.That(surfaces["summary.md"], Does.Contain("about the spec: **shared-stateful-layer** (reference, torchsharp, keras at"));
        Assert.That(Regex.Matches(surfaces["summary.md"], "shared-stateful-layer").Count, Is.EqualTo(1));
        Assert.That(Regex.Matches(HtmlReportExporter.Render(report), "<div class=\"finding").Count, Is.EqualTo(1), "one card");
        Assert.That(surfaces["report.html"], Does.Contain("shared-stateful-layer about the spec · reference, torchsharp, keras at"));
    }

    [Test]
    public void The_keras_divergence_of_seed000_has_the_same_explanation_in_all_five_outputs_of_a_real_run()
    {
        string? unavailable = RequiresBackendAttribute.UnavailableReason("keras", Backends.All.BackendCatalog.Create(null));
        Assume.That(unavailable, Is.Null, unavailable);
        string dir = CliRunner.TempDir();

        // Judged on trajectories: keras's biased running variance (declared) makes it diverge at step 1.
        var (exit, stdout, stderr) = CliRunner.Run("run", CliRunner.Fixture("seed000-shared-bn.json"), "--backends", "reference,keras", "--steps", "3",
            "--trajectory-only", "--out", dir);

        Assert.That(exit, Is.EqualTo(1), stdout + stderr);
        var report = ReportWriter.ReadJson(Path.Combine(dir, "report.json"));
        var failure = XDocument.Load(Path.Combine(dir, JUnitReportExporter.FileName)).Descendants("failure").Single();
        var outputs = new Dictionary<string, string>
        {
            ["terminal"] = stdout,
            ["report.html"] = WebUtility.HtmlDecode(Regex.Replace(File.ReadAllText(Path.Combine(dir, HtmlReportExporter.FileName)), "<[^>]+>", "")),
            ["summary.md"] = Regex.Replace(File.ReadAllText(Path.Combine(dir, MarkdownReportExporter.FileName)), @"\\(.)", "$1"),
            ["junit.xml"] = failure.Attribute("message")!.Value + "\n" + failure.Value,
            ["ParityAssert"] = ParityAssert.Explain(report, dir)!,
        };
        Assert.That(report.Comparisons.Single().FirstDivergence!.Explanation!.Text, Is.EqualTo($"explained by declared mismatch {RunningVariance}"), "report.json");
        foreach (var (surface, text) in outputs)
        {
            Assert.That(text, Does.Contain($"explained by declared mismatch {RunningVariance}"), surface);
            Assert.That(text, Does.Not.Match("(?i)cause:? \\[?shared-stateful-layer"), surface);
        }
    }

    /// <summary>Each output as the plain text a person reads: Markdown escapes and HTML markup removed.</summary>
    private static IEnumerable<(string Surface, string Text)> Surfaces(RunReport report)
    {
        var terminal = new StringWriter();
        ResultTable.Print(report, terminal);
        yield return ("terminal", terminal.ToString());
        yield return ("report.html", WebUtility.HtmlDecode(Regex.Replace(HtmlReportExporter.Render(report), "<[^>]+>", "")));
        yield return ("summary.md", Regex.Replace(MarkdownReportExporter.Render(report), @"\\(.)", "$1"));
        var failure = XDocument.Parse(JUnitReportExporter.Render(report)).Descendants("failure").Single();
        yield return ("junit.xml", failure.Attribute("message")!.Value + "\n" + failure.Value);
        yield return ("ParityAssert", ParityAssert.Explain(report, null)!);
    }

    private static RunReport Report(string[] causes, string? declared)
    {
        var divergence = new DivergenceReport(1, "train", "runningVariance", "bn", "origin", new MetricsReport(8.6e-5, 9.6e-5, 100, 100, 4.1e-5, 1, 4.77),
            ["batchVariance:bn#1", "batchVariance:bn#2", "runningVariance:bn"], [], declared is null ? [] : [declared]);
        var mismatches = declared is null ? new List<ConventionMismatch>() : [new ConventionMismatch(declared, "unbiased", "biased", ["runningVariance"])];
        var findings = new List<FindingReport>();
        foreach (string backend in new[] { "reference", "torchsharp", "keras" })
        {
            findings.Add(new FindingReport(CauseIds.SharedStatefulLayer, backend, "step 1 train runningMean:bn",
                $"batchnorm 'bn' is called at 2 sites; eval accuracy of {backend}", new Dictionary<string, object?> { ["updatesPerStep"] = "2 per step" },
                "Give every call site its own batchnorm instance.") { Kind = FindingKind.Spec });
        }
        findings.AddRange(causes.Select(c => new FindingReport(c, "keras", "step 1 train runningVariance:bn", $"{c} fits", new Dictionary<string, object?>(), "see docs")));
        var heatmap = new HeatmapReport([], [], []);
        return new RunReport
        {
            Scenario = new ScenarioInfo("seed000-shared-bn", "", "009e4ed8de874130", null, "float32", 10, 10, 640, 200, "synthetic", ["bn"], []),
            Machine = new MachineInfo("Linux", 2, "10.0.0", "1.0.0", DateTimeOffset.UnixEpoch, 30),
            Reference = "reference",
            TolerancePolicy = TolerancePolicy.Create().Describe(),
            Backends =
            [
                new BackendReport("reference", "float64", RunStatus.Completed, null, 10, 3, new Dictionary<string, string>(), [], "traces/reference", false),
                new BackendReport("torchsharp", "float32", RunStatus.Completed, null, 10, 5, new Dictionary<string, string>(), [], "traces/torchsharp", false),
                new BackendReport("keras", "float32", RunStatus.Completed, null, 10, 6, new Dictionary<string, string>(), mismatches, "traces/keras", false),
            ],
            Comparisons =
            [
                new ComparisonReport("torchsharp", "reference", Verdict.Agree, null, null, 10, 586, 0, [], heatmap),
                new ComparisonReport("keras", "reference", Verdict.Diverge, null, divergence, 10, 586, 289, [], heatmap),
            ],
            Findings = findings,
            ExitCode = 1,
            Verdict = Verdict.Diverge,
        };
    }
}
