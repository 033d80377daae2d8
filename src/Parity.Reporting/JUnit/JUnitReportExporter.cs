using Parity.Running;
using Parity.IO;
using System.Globalization;
using System.Text;
using System.Xml;

namespace Parity.Reporting.JUnit;

/// <summary>
/// junit.xml: one test suite per scenario, one test case per backend compared with the reference. A divergence is a
/// <c>failure</c> whose message names the origin and whose body carries the metrics and causes; a backend that failed
/// or cannot run here is an <c>error</c> (as the exit code 2 says), never a skip. The format CI systems read (Jenkins, GitLab, GitHub).
/// </summary>
public sealed class JUnitReportExporter : IReportExporter
{
    /// <summary>File name written into the run directory.</summary>
    public const string FileName = "junit.xml";

    /// <inheritdoc />
    public string Name => "junit";

    /// <inheritdoc />
    public string Export(RunReport report, string directory)
    {
        ArgumentNullException.ThrowIfNull(report);
        return AtomicFile.WriteText(Path.Combine(directory, FileName), Render(report));
    }

    /// <summary>The XML document as a string.</summary>
    public static string Render(RunReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var cases = report.Comparisons.Select(c => (Comparison: c, Backend: report.Backends.FirstOrDefault(b => b.Name == c.Backend))).ToList();
        int failures = cases.Count(c => Outcome(c.Comparison, c.Backend) == "failure");
        int errors = cases.Count(c => Outcome(c.Comparison, c.Backend) == "error");
        int skipped = cases.Count(c => Outcome(c.Comparison, c.Backend) == "skipped");
        string time = Seconds(report.Machine.Seconds);
        var text = new StringBuilder();
        using (var w = XmlWriter.Create(text, new XmlWriterSettings { Indent = true, Encoding = Encoding.UTF8, CheckCharacters = true }))
        {
            w.WriteStartDocument();
            w.WriteStartElement("testsuites");
            w.WriteAttributeString("name", "parity");
            Counts(w, cases.Count, failures, errors, skipped, time);
            w.WriteStartElement("testsuite");
            w.WriteAttributeString("name", Clean(report.Scenario.Name));
            Counts(w, cases.Count, failures, errors, skipped, time);
            w.WriteAttributeString("timestamp", report.Machine.StartedUtc.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture));
            w.WriteStartElement("properties");
            Property(w, "specHash", report.Scenario.SpecHash);
            Property(w, "reference", report.Reference);
            Property(w, "verdict", report.Verdict.Name());
            Property(w, "parityVersion", report.Machine.Parity);
            if (report.Scenario.CaptureFilter is { } filter) Property(w, "captureFilter", filter);
            w.WriteEndElement();
            foreach (var (c, b) in cases)
            {
                w.WriteStartElement("testcase");
                w.WriteAttributeString("classname", Clean($"parity.{report.Scenario.Name}"));
                w.WriteAttributeString("name", Clean($"{c.Backend} vs {c.Against}"));
                w.WriteAttributeString("time", Seconds(b?.Seconds ?? 0));
                switch (Outcome(c, b))
                {
                    case "failure":
                        w.WriteStartElement("failure");
                        w.WriteAttributeString("message", Clean(DivergenceText.Headline(c, report.Findings)));
                        w.WriteAttributeString("type", "divergence");
                        w.WriteString(Clean(DivergenceText.Describe(c, report.Findings)));
                        w.WriteEndElement();
                        break;
                    case "error":
                        w.WriteStartElement("error");
                        w.WriteAttributeString("message", Clean(b?.Message ?? c.Message ?? DivergenceText.Headline(c, report.Findings)));
                        w.WriteAttributeString("type", b is { Status: not RunStatus.Completed } ? b.Status.Name() : c.Verdict.Name());
                        w.WriteString(Clean(DivergenceText.Describe(c, report.Findings)));
                        w.WriteEndElement();
                        break;
                }
                var output = (b?.Mismatches ?? []).Select(m => $"declared mismatch {m.Setting}: spec {m.Spec}, backend {m.Backend} (affects {string.Join(", ", m.Affects)})").ToList();
                if (DivergenceText.TrajectoryNote(c, report.Findings) is { } trajectory) output.Add(trajectory);
                if (output.Count > 0) w.WriteElementString("system-out", Clean(string.Join("\n", output)));
                w.WriteEndElement();
            }
            w.WriteEndElement();
            w.WriteEndElement();
            w.WriteEndDocument();
        }
        return text.ToString().Replace("encoding=\"utf-16\"", "encoding=\"utf-8\"", StringComparison.Ordinal);
    }

    // The same rule as the exit code: a backend that did not complete (failed, or unavailable on this machine) is an error,
    // never a skip, so a CI suite cannot go green by running nothing.
    private static string Outcome(ComparisonReport c, BackendReport? b) =>
        b is { Status: not RunStatus.Completed } || c.Verdict == Verdict.Error ? "error"
        : c.Verdict == Verdict.Diverge ? "failure"
        : "passed";

    private static void Counts(XmlWriter w, int tests, int failures, int errors, int skipped, string time)
    {
        w.WriteAttributeString("tests", tests.ToString(CultureInfo.InvariantCulture));
        w.WriteAttributeString("failures", failures.ToString(CultureInfo.InvariantCulture));
        w.WriteAttributeString("errors", errors.ToString(CultureInfo.InvariantCulture));
        w.WriteAttributeString("skipped", skipped.ToString(CultureInfo.InvariantCulture));
        w.WriteAttributeString("time", time);
    }

    private static void Property(XmlWriter w, string name, string value)
    {
        w.WriteStartElement("property");
        w.WriteAttributeString("name", name);
        w.WriteAttributeString("value", Clean(value));
        w.WriteEndElement();
    }

    private static string Seconds(double s) => s.ToString("F3", CultureInfo.InvariantCulture);

    /// <summary>Drops characters XML 1.0 cannot carry (a worker message may hold control characters); XmlWriter escapes the rest.</summary>
    internal static string Clean(string text) => string.Concat(text.Where(XmlConvert.IsXmlChar));
}
