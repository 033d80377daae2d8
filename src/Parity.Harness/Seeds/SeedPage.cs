using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using ScottPlot;

namespace Parity.Harness.Seeds;

/// <summary>A plotted series: y over x.</summary>
/// <param name="Label">Legend text.</param>
/// <param name="X">x values.</param>
/// <param name="Y">y values (non-finite values leave a gap).</param>
public sealed record PlotSeries(string Label, IReadOnlyList<double> X, IReadOnlyList<double> Y);

/// <summary>A figure of a seed page.</summary>
/// <param name="Title">Title.</param>
/// <param name="XLabel">x axis label.</param>
/// <param name="YLabel">y axis label.</param>
/// <param name="Series">The lines.</param>
/// <param name="LogX">Log-scaled x axis (the weight-scale sweep).</param>
public sealed record Figure(string Title, string XLabel, string YLabel, IReadOnlyList<PlotSeries> Series, bool LogX = false);

/// <summary>A table: header cells and rows of text cells.</summary>
/// <param name="Caption">One line above the table.</param>
/// <param name="Header">Column names.</param>
/// <param name="Rows">Rows, as many cells as the header.</param>
public sealed record Table(string Caption, IReadOnlyList<string> Header, IReadOnlyList<IReadOnlyList<string>> Rows);

/// <summary>
/// One seed's report page: what it shows, the result in a sentence, tables, figures, notes; written as summary.md
/// (tables, figure data omitted), index.html (the same with ScottPlot SVG figures) and, by the caller, a JSON file of
/// the raw results. Every string is HTML-encoded; plots are SVG produced by ScottPlot, which XML-escapes text.
/// </summary>
public sealed class SeedPage
{
    /// <summary>Creates a page.</summary>
    public SeedPage(string title, string shows)
    {
        Title = title;
        Shows = shows;
    }

    /// <summary>Title (e.g. <c>Seed 000: shared BatchNorm</c>).</summary>
    public string Title { get; }

    /// <summary>What the seed is and what this replication shows.</summary>
    public string Shows { get; }

    /// <summary>The result in one line (for the demo index).</summary>
    public string Result { get; set; } = "";

    /// <summary>Tables, in order.</summary>
    public List<Table> Tables { get; } = [];

    /// <summary>Figures, in order.</summary>
    public List<Figure> Figures { get; } = [];

    /// <summary>Notes: how it was run, what to read next.</summary>
    public List<string> Notes { get; } = [];

    /// <summary>Links to other reports: text and relative path.</summary>
    public List<(string Text, string Path)> Links { get; } = [];

    /// <summary>Writes summary.md and index.html into <paramref name="directory"/>, and <paramref name="data"/> as results.json.</summary>
    public void Write(string directory, object data)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "summary.md"), Markdown());
        File.WriteAllText(Path.Combine(directory, "index.html"), Html());
        File.WriteAllText(Path.Combine(directory, "results.json"), JsonSerializer.Serialize(data, Json));
    }

    /// <summary>JSON options of results.json: camelCase, indented, NaN written as a string.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The Markdown text.</summary>
    public string Markdown()
    {
        var md = new StringBuilder($"# {Title}\n\n{Shows}\n\n**Result:** {Result}\n");
        foreach (var t in Tables)
        {
            md.Append($"\n{t.Caption}\n\n| {string.Join(" | ", t.Header.Select(Cell))} |\n|{string.Concat(t.Header.Select(_ => "---|"))}\n");
            foreach (var row in t.Rows) md.Append($"| {string.Join(" | ", row.Select(Cell))} |\n");
        }
        if (Figures.Count > 0) md.Append("\nFigures: open index.html (").Append(string.Join("; ", Figures.Select(f => f.Title))).Append(").\n");
        if (Links.Count > 0)
        {
            md.Append("\nReports:\n\n");
            foreach (var (text, path) in Links) md.Append($"- [{text}]({path})\n");
        }
        if (Notes.Count > 0)
        {
            md.Append("\nNotes:\n\n");
            foreach (string n in Notes) md.Append($"- {n}\n");
        }
        return md.ToString();
    }

    /// <summary>The HTML page (self-contained: inline CSS and SVG).</summary>
    public string Html()
    {
        static string E(string s) => WebUtility.HtmlEncode(s);
        var h = new StringBuilder();
        h.Append("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">");
        h.Append($"<title>{E(Title)}</title><style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:90%}}th{{background:#f3f3f3}}.fig{{display:inline-block;margin:4px}}</style></head><body>");
        h.Append($"<h1>{E(Title)}</h1><p>{E(Shows)}</p><p><b>Result:</b> {E(Result)}</p>");
        foreach (var f in Figures) h.Append($"<div class=\"fig\">{Svg(f)}</div>");
        foreach (var t in Tables)
        {
            h.Append($"<p>{E(t.Caption)}</p><table><tr>{string.Concat(t.Header.Select(c => $"<th>{E(c)}</th>"))}</tr>");
            foreach (var row in t.Rows) h.Append($"<tr>{string.Concat(row.Select(c => $"<td>{E(c)}</td>"))}</tr>");
            h.Append("</table>");
        }
        if (Links.Count > 0)
        {
            h.Append("<h2>Reports</h2><ul>");
            foreach (var (text, path) in Links) h.Append($"<li><a href=\"{E(path)}\">{E(text)}</a></li>");
            h.Append("</ul>");
        }
        if (Notes.Count > 0)
        {
            h.Append("<h2>Notes</h2><ul>");
            foreach (string n in Notes) h.Append($"<li>{E(n)}</li>");
            h.Append("</ul>");
        }
        return h.Append("</body></html>\n").ToString();
    }

    /// <summary>A number for tables: 4 significant digits, invariant culture; n/a for NaN.</summary>
    public static string Number(double value) =>
        double.IsNaN(value) ? "n/a" : value.ToString(Math.Abs(value) is > 0 and (< 1e-3 or >= 1e5) ? "0.###e+00" : "0.####", CultureInfo.InvariantCulture);

    // Pipes would split a Markdown cell.
    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);

    private static string Svg(Figure figure)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < figure.Series.Count; i++)
        {
            var s = figure.Series[i];
            double[] xs = s.X.Select(x => figure.LogX ? Math.Log10(x) : x).ToArray();
            var line = plot.Add.Scatter(xs, s.Y.Select(y => double.IsFinite(y) ? y : double.NaN).ToArray());
            line.LegendText = s.Label;
            line.Color = palette.GetColor(i);
            line.LineWidth = 2;
            line.MarkerSize = s.X.Count <= 40 ? 5 : 0;
        }
        if (figure.LogX)
        {
            // Decade ticks on a log10 axis (ScottPlot 5 plots log scales as transformed data).
            var ticks = new ScottPlot.TickGenerators.NumericManual();
            double min = figure.Series.SelectMany(s => s.X).DefaultIfEmpty(1).Min(), max = figure.Series.SelectMany(s => s.X).DefaultIfEmpty(1).Max();
            for (int d = (int)Math.Floor(Math.Log10(min)); d <= (int)Math.Ceiling(Math.Log10(max)); d++)
                ticks.AddMajor(d, $"1e{d}");
            plot.Axes.Bottom.TickGenerator = ticks;
        }
        plot.Title(figure.Title, size: 13);
        plot.Axes.Bottom.Label.Text = figure.XLabel;
        plot.Axes.Left.Label.Text = figure.YLabel;
        plot.Axes.Left.Label.FontSize = 11;
        plot.Axes.Bottom.Label.FontSize = 11;
        plot.Legend.FontSize = 10;
        plot.ShowLegend(Alignment.LowerRight);
        plot.Font.Set("DejaVu Sans");
        string svg = plot.GetSvgXml(520, 320);
        int start = svg.IndexOf("<svg", StringComparison.Ordinal);
        return start > 0 ? svg[start..] : svg;
    }
}
