using System.Text.RegularExpressions;
using Parity.Reporting.Html;

namespace Parity.Reporting.Tests.Html;

public sealed class HtmlReportExporterTests
{
    [Test]
    public void Hostile_scenario_names_and_worker_messages_appear_only_encoded()
    {
        var report = SampleReports.Diverging(SampleReports.ScriptAttack + SampleReports.AttributeAttack, "crash: " + SampleReports.ScriptAttack);
        string html = HtmlReportExporter.Render(report);

        Assert.That(html, Does.Not.Contain("<script"), "no script element may appear");
        Assert.That(html, Does.Not.Contain("<img"), "no injected img element may appear");
        Assert.That(html, Does.Not.Contain("\"><img"), "the attribute attack must not close an attribute");
        Assert.That(html, Does.Contain("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
        Assert.That(html, Does.Contain("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
        Assert.That(html, Does.Contain("crash: &lt;/script&gt;"), "the worker message is shown, encoded");
    }

    [Test]
    public void The_page_forbids_script_and_network_through_its_content_security_policy()
    {
        string html = HtmlReportExporter.Render(SampleReports.Diverging());
        Assert.That(html, Does.Contain("Content-Security-Policy").And.Contain("default-src 'none'"));
        Assert.That(Regex.IsMatch(html, "(src|href)=\"https?:"), Is.False, "no external asset");
    }

    [Test]
    public void A_diverging_report_shows_the_verdict_table_the_heatmap_curves_findings_mismatches_and_matrix()
    {
        string html = HtmlReportExporter.Render(SampleReports.Diverging());

        Assert.That(html, Does.Contain("<table id=\"verdicts\""));
        Assert.That(html, Does.Contain("<td>step 3, forward:l2 (origin): cause: shared-stateful-instance</td>"));
        Assert.That(html, Does.Contain("12 / 640"));
        Assert.That(Regex.Matches(html, "<svg").Count, Is.EqualTo(1 + 3), "one heatmap (keras has no checks) and loss, running mean and norm curves");
        Assert.That(html, Does.Contain("shared-stateful-instance").And.Contain("give each call its own instance"));
        Assert.That(html, Does.Contain("layers[bn].runningVariance"));
        Assert.That(html, Does.Contain("<table id=\"matrix\""));
        Assert.That(html, Does.Contain("<table id=\"arbitration\"").And.Contain("evalOutput:l2 (max abs 0.1, score 5)"));
        Assert.That(html, Does.Contain("node is not installed"));
    }

    [Test]
    public void Export_writes_report_html_into_the_run_directory()
    {
        using var dir = new TempDirectory();
        string path = new HtmlReportExporter().Export(SampleReports.Diverging(), dir.Path);
        Assert.That(path, Is.EqualTo(Path.Combine(dir.Path, "report.html")));
        Assert.That(File.ReadAllText(path), Does.StartWith("<!DOCTYPE html>"));
        Assert.That(Directory.GetFiles(dir.Path), Has.Length.EqualTo(1), "no temporary file left behind");
    }

    [TestCase(1.0, 0.0)]
    [TestCase(100.0, 2.0)]
    [TestCase(1e-9, -3.0)]
    [TestCase(0.0, -3.0)]
    [TestCase(double.PositiveInfinity, 2.0)]
    [TestCase(double.NaN, 2.0)]
    public void Heatmap_colours_are_log10_of_the_score_clamped_to_the_bar(double score, double expected) =>
        Assert.That(ReportPlots.LogScore(score), Is.EqualTo(expected).Within(1e-12));
}
