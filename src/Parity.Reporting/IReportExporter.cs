namespace Parity.Reporting;

/// <summary>Renders a <see cref="RunReport"/> into one file of a run directory. Exporters read the report only.</summary>
public interface IReportExporter
{
    /// <summary>Short name, e.g. <c>json</c>, <c>html</c>.</summary>
    string Name { get; }

    /// <summary>Writes the file into <paramref name="directory"/> and returns its path.</summary>
    string Export(RunReport report, string directory);
}

/// <summary>report.json.</summary>
public sealed class JsonReportExporter : IReportExporter
{
    /// <inheritdoc />
    public string Name => "json";

    /// <inheritdoc />
    public string Export(RunReport report, string directory) => ReportWriter.WriteJson(report, directory);
}

/// <summary>The exporters every run writes.</summary>
public static class ReportExporters
{
    /// <summary>All built-in exporters, report.json first: report.json, report.html, junit.xml, summary.md.</summary>
    public static IReadOnlyList<IReportExporter> All { get; } =
        [new JsonReportExporter(), new Html.HtmlReportExporter(), new JUnit.JUnitReportExporter(), new Markdown.MarkdownReportExporter()];
}
