using System.Globalization;
using ScottPlot;

namespace Parity.Reporting.Html;

/// <summary>
/// The plots of report.html, drawn by ScottPlot and returned as SVG markup for inline embedding. Every label that
/// reaches a plot (backend names, tensor rows) goes through Skia's SVG writer, which XML-escapes text.
/// </summary>
internal static class ReportPlots
{
    /// <summary>Heatmap colour range in log10(score): 1e-3 (far inside tolerance) to 1e2 (a hundred times over).</summary>
    internal const double LogScoreMin = -3, LogScoreMax = 2;

    /// <summary>Most heatmap cells drawn as SVG rectangles.</summary>
    private const int MaxVectorCells = 6000;

    /// <summary>Pixel height of one heatmap row.</summary>
    private const int RowHeight = 13;

    /// <summary>
    /// The layer(tensor row)-by-step error map of one comparison: colour = log10(observed / allowed error), so 0 is the
    /// tolerance edge (above it fails). Cells that were not captured stay blank.
    /// </summary>
    public static string Heatmap(HeatmapReport heatmap, string title)
    {
        int rows = heatmap.Rows.Count, columns = heatmap.Steps.Count;
        var values = new double[rows, columns];
        var excludedValues = new double[rows, columns];
        bool anyExcluded = false;
        for (int r = 0; r < rows; r++)
        {
            var excluded = r < heatmap.Excluded.Count ? heatmap.Excluded[r].ToHashSet() : [];
            for (int c = 0; c < columns; c++)
            {
                double v = heatmap.Scores[r][c] is double s ? LogScore(s) : double.NaN;
                bool isExcluded = excluded.Contains(c);
                anyExcluded |= isExcluded;
                values[r, c] = isExcluded ? double.NaN : v;
                excludedValues[r, c] = isExcluded ? v : double.NaN;
            }
        }
        var plot = new Plot();
        var map = AddMap(plot, values, new PassFailColormap(), rows, columns);
        // Cells kept out of the verdict (not identifiable) in grey, so a reader does not take their red for a failure.
        if (anyExcluded) AddMap(plot, excludedValues, new ExcludedColormap(), rows, columns);
        var bar = plot.Add.ColorBar(map);
        bar.Label = "log10(error / allowed)  (> 0 fails)";
        plot.Axes.Left.SetTicks(
            Enumerable.Range(0, rows).Select(r => rows - r - 0.5).ToArray(),
            heatmap.Rows.ToArray());
        plot.Axes.Left.TickLabelStyle.FontSize = 10;
        var (positions, labels) = StepTicks(heatmap.Steps);
        plot.Axes.Bottom.SetTicks(positions, labels);
        plot.Axes.Bottom.Label.Text = "step";
        plot.Title(title, size: 14);
        plot.Axes.SetLimits(0, columns, 0, rows);
        int height = Math.Max(220, rows * RowHeight + 110);
        return Svg(plot, 1200, height);
    }

    private static ScottPlot.Plottables.Heatmap AddMap(Plot plot, double[,] values, IColormap colormap, int rows, int columns)
    {
        var map = plot.Add.Heatmap(values);
        map.Colormap = colormap;
        map.ManualRange = new ScottPlot.Range(LogScoreMin, LogScoreMax);
        map.NaNCellColor = Colors.Transparent;
        map.Extent = new CoordinateRect(0, columns, 0, rows);
        map.Smooth = false;
        // Vector cells are exact at any zoom; past a few thousand cells they make the page heavy, so large maps stay a
        // bitmap (the page's CSS keeps it pixelated).
        if (rows * columns <= MaxVectorCells) map.RenderStrategy = new ScottPlot.Plottables.Heatmap.RenderStrategies.Rectangles();
        return map;
    }

    /// <summary>One curve per backend of one named series (a loss, an accuracy, a norm, a running statistic).</summary>
    public static string Lines(string title, string yLabel, IReadOnlyList<SeriesReport> series, IReadOnlyList<string> backendOrder)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        foreach (var s in series.OrderBy(s => IndexOf(backendOrder, s.Backend)))
        {
            int i = IndexOf(backendOrder, s.Backend);
            var line = plot.Add.Scatter(s.Steps.Select(x => (double)x).ToArray(), s.Values.Select(Finite).ToArray());
            line.LegendText = s.Backend;
            // Agreeing backends draw on top of one another: the first is wide and pale, later ones narrower, so every one
            // stays visible. (No dash patterns: Skia's SVG canvas cannot write path effects and drops them.)
            line.LineWidth = Math.Max(1.2f, 5f - 1.6f * i);
            line.Color = palette.GetColor(i).WithAlpha(i == 0 ? 0.45 : 0.95);
            line.MarkerSize = s.Steps.Count <= 30 ? Math.Max(3f, 7f - 2f * i) : 0;
        }
        plot.Title(title, size: 13);
        plot.Axes.Bottom.Label.Text = "step";
        plot.Axes.Left.Label.Text = yLabel;
        plot.Axes.Left.Label.FontSize = 11;
        plot.Axes.Bottom.Label.FontSize = 11;
        plot.Legend.FontSize = 10;
        plot.ShowLegend(Alignment.UpperRight);
        return Svg(plot, 440, 270);
    }

    internal static double LogScore(double score) =>
        double.IsNaN(score) || double.IsPositiveInfinity(score) ? LogScoreMax
        : score <= 0 ? LogScoreMin
        : Math.Clamp(Math.Log10(score), LogScoreMin, LogScoreMax);

    private static double Finite(double v) => double.IsFinite(v) ? v : double.NaN;

    private static int IndexOf(IReadOnlyList<string> order, string name)
    {
        for (int i = 0; i < order.Count; i++)
            if (order[i] == name) return i;
        return order.Count;
    }

    private static (double[] Positions, string[] Labels) StepTicks(IReadOnlyList<int> steps)
    {
        int count = steps.Count, every = Math.Max(1, (int)Math.Ceiling(count / 12.0));
        var positions = new List<double>();
        var labels = new List<string>();
        for (int c = 0; c < count; c += every)
        {
            positions.Add(c + 0.5);
            labels.Add(steps[c].ToString(CultureInfo.InvariantCulture));
        }
        return (positions.ToArray(), labels.ToArray());
    }

    /// <summary>SVG markup without the XML declaration, ready to sit inside HTML.</summary>
    private static string Svg(Plot plot, int width, int height)
    {
        plot.Font.Set("DejaVu Sans");
        string svg = plot.GetSvgXml(width, height);
        int start = svg.IndexOf("<svg", StringComparison.Ordinal);
        return start > 0 ? svg[start..] : svg;
    }

    /// <summary>Light to mid grey: the same scale as <see cref="PassFailColormap"/>, without the pass/fail colours.</summary>
    private sealed class ExcludedColormap : IColormap
    {
        public string Name => "excluded";

        public Color GetColor(double position)
        {
            position = double.IsNaN(position) ? 1 : Math.Clamp(position, 0, 1);
            byte v = (byte)(235 - 110 * position);
            return new Color(v, v, v);
        }
    }

    /// <summary>
    /// Green far inside tolerance, through yellow at the tolerance edge (log score 0), to red and dark red beyond:
    /// a reader sees pass/fail before reading the bar.
    /// </summary>
    private sealed class PassFailColormap : IColormap
    {
        private static readonly (double At, Color Color)[] Stops =
        [
            (0.0, new Color(26, 152, 80)),
            (0.45, new Color(166, 217, 106)),
            (0.6, new Color(255, 230, 120)),
            (0.62, new Color(253, 174, 97)),
            (0.8, new Color(215, 48, 39)),
            (1.0, new Color(110, 10, 20)),
        ];

        public string Name => "pass-fail";

        public Color GetColor(double position)
        {
            position = double.IsNaN(position) ? 1 : Math.Clamp(position, 0, 1);
            for (int i = 1; i < Stops.Length; i++)
            {
                if (position > Stops[i].At) continue;
                var (a, ca) = Stops[i - 1];
                var (b, cb) = Stops[i];
                double t = b == a ? 0 : (position - a) / (b - a);
                return new Color((byte)(ca.R + (cb.R - ca.R) * t), (byte)(ca.G + (cb.G - ca.G) * t), (byte)(ca.B + (cb.B - ca.B) * t));
            }
            return Stops[^1].Color;
        }
    }
}
