using System.Xml.Linq;
using Parity.Reporting.JUnit;

namespace Parity.Reporting.Tests.JUnit;

public sealed class JUnitReportExporterTests
{
    [Test]
    public void Each_backend_comparison_is_one_test_case_and_an_unavailable_backend_is_an_error_as_the_exit_code_says()
    {
        var doc = XDocument.Parse(JUnitReportExporter.Render(SampleReports.Diverging()));
        var suite = doc.Root!.Element("testsuite")!;
        var cases = suite.Elements("testcase").ToList();

        Assert.That(cases.Select(c => (string)c.Attribute("name")!), Is.EqualTo(new[] { "torchsharp vs reference", "keras vs reference" }));
        Assert.That((string)suite.Attribute("tests")!, Is.EqualTo("2"));
        Assert.That((string)suite.Attribute("failures")!, Is.EqualTo("1"));
        Assert.That((string)suite.Attribute("errors")!, Is.EqualTo("1"));
        Assert.That((string)suite.Attribute("skipped")!, Is.EqualTo("0"));
        Assert.That(cases[1].Element("error")!.Attribute("message")!.Value, Is.EqualTo("node is not installed"));
        Assert.That(cases[1].Element("error")!.Attribute("type")!.Value, Is.EqualTo("unavailable"));
    }

    [Test]
    public void A_failure_names_the_origin_metrics_and_cause()
    {
        var doc = XDocument.Parse(JUnitReportExporter.Render(SampleReports.Diverging()));
        var failure = doc.Descendants("failure").Single();

        Assert.That(failure.Attribute("message")!.Value, Is.EqualTo("torchsharp vs reference: diverge at step 3, forward:l2 (origin): cause: shared-stateful-instance"));
        Assert.That(failure.Value, Does.Contain("Mismatched elements: 12 / 640 (1.9%)"));
        Assert.That(failure.Value, Does.Contain("Greatest absolute difference: 0.5 at index (3, 7)"));
        Assert.That(failure.Value, Does.Contain("Explanation: cause: shared-stateful-instance"));
    }

    [Test]
    public void Control_characters_from_a_worker_are_dropped_and_markup_stays_text()
    {
        var report = SampleReports.Diverging(workerMessage: "bad\u0001bytes " + SampleReports.ScriptAttack);
        string xml = JUnitReportExporter.Render(report);
        var doc = XDocument.Parse(xml);
        Assert.That(xml, Does.Not.Contain("<script>"));
        Assert.That(doc.Descendants("testsuite").Single().Attribute("name")!.Value, Is.EqualTo("sample-shared-bn"));
        Assert.That(xml, Does.Not.Contain("\u0001"));
    }
}
