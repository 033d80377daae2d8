using Parity.Reporting.Markdown;

namespace Parity.Reporting.Tests.Markdown;

public sealed class MarkdownReportExporterTests
{
    [Test]
    public void The_summary_is_a_table_with_one_row_per_backend_and_the_first_divergence()
    {
        string md = MarkdownReportExporter.Render(SampleReports.Diverging());
        var rows = md.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal)).ToList();

        Assert.That(rows, Has.Count.EqualTo(1 + 3), "header and one row per backend");
        Assert.That(rows[2], Does.Contain("torchsharp").And.Contain("step 3, forward:l2 (origin): cause: shared-stateful-instance").And.Contain("12 / 640"));
        Assert.That(md, Does.Contain("cause: **shared-stateful-instance** (torchsharp at `bn`)"));
    }

    [Test]
    public void Pipes_newlines_and_html_from_messages_cannot_break_the_table()
    {
        string md = MarkdownReportExporter.Render(SampleReports.Diverging(workerMessage: "a | b\nc " + SampleReports.ScriptAttack));
        Assert.That(md, Does.Contain("a \\| b c &lt;/script&gt;"));
        Assert.That(md, Does.Not.Contain("<script>"));
        foreach (string row in md.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal)))
            Assert.That(row.Replace("\\|", "", StringComparison.Ordinal).Count(c => c == '|'), Is.EqualTo(9), row);
    }
}
