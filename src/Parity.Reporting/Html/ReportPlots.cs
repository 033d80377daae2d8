using System.Globalization;
using Parity.Tracing;
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

    /// <summary>Most evaluated steps that get a tick each; more fall back to automatic ticks.</summary>
    private const int MaxEvaluatedTicks = 12;

    /// <summary>Pixel height of one heatmap row.</summary>
    private const int RowHeight = 13;

    /// <summary>
    /// The layer(tensor row)-by-step error map of one comparison: colour = log10(observed / allowed error), so 0 is the
    /// tolerance edge (above it fails). Cells kept out of the verdict or explained by a declared mismatch get their own
    /// colour scale and legend entry; cells that were not captured stay blank.
    /// </summary>
    public static string Heatmap(HeatmapReport heatmap, string title)
    {
        int rows = heatmap.Rows.Count, columns = heatmap.Steps.Count;
        var layers = CellKinds.ToDictionary(k => k.Kind, _ => new double[rows, columns]);
        var present = new HashSet<CellKind>();
        for (int r = 0; r < rows; r++)
        {
            var excluded = ColumnsOf(heatmap.Excluded, r);
            var kink = ColumnsOf(heatmap.KinkExcused, r);
            var explained = ColumnsOf(heatmap.Explained, r);
            for (int c = 0; c < columns; c++)
            {
                double v = heatmap.Scores[r][c] is double s ? LogScore(s) : double.NaN;
                var kind = kink.Contains(c) ? CellKind.KinkExcused
                    : excluded.Contains(c) ? CellKind.NotIdentifiable
                    : explained.Contains(c) ? CellKind.Explained
                    : CellKind.Counted;
                foreach (var layer in layers) layer.Value[r, c] = layer.Key == kind ? v : double.NaN;
                if (!double.IsNaN(v)) present.Add(kind);
            }
        }
        var plot = new Plot();
        var map = AddMap(plot, layers[CellKind.Counted], CellKinds[0].Colormap, rows, columns);
        foreach (var (kind, colormap, label) in CellKinds.Skip(1))
        {
            if (!present.Contains(kind)) continue;
            AddMap(plot, layers[kind], colormap, rows, columns);
            // The swatch shows the colour of a cell at the tolerance edge.
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = label, FillColor = colormap.GetColor(Position(0)), LineWidth = 0 });
        }
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
        int height = Math.Max(300, rows * RowHeight + 110);
        if (plot.Legend.ManualItems.Count > 0)
        {
            plot.Legend.FontSize = 11;
            plot.Legend.FontName = "DejaVu Sans";
            plot.Legend.Orientation = Orientation.Horizontal;
            plot.ShowLegend(Edge.Bottom);
            height += 30;
        }
        return Render(plot, (1200, height));
    }

    /// <summary>What a heatmap cell stands for; each has its own colour scale.</summary>
    internal enum CellKind
    {
        /// <summary>Counts in the verdict.</summary>
        Counted,

        /// <summary>Kept out of the verdict: the loss does not depend on the tensor.</summary>
        NotIdentifiable,

        /// <summary>Kept out of the verdict: downstream of a ReLU kink flip.</summary>
        KinkExcused,

        /// <summary>Fails, and a convention mismatch the backend declared names its kind.</summary>
        Explained,
    }

    /// <summary>Each kind of cell, its colour scale and its legend entry; the counted cells' scale is the colour bar.</summary>
    internal static readonly IReadOnlyList<(CellKind Kind, IColormap Colormap, string Label)> CellKinds =
    [
        (CellKind.Counted, new PassFailColormap(), "counts in the verdict"),
        (CellKind.NotIdentifiable, new ShadeColormap("not identifiable", new Color(236, 236, 236), new Color(120, 120, 120)), "not identifiable (not counted)"),
        (CellKind.KinkExcused, new ShadeColormap("kink", new Color(232, 226, 245), new Color(110, 84, 163)), "ReLU kink flip downstream (excused, not counted)"),
        (CellKind.Explained, new ShadeColormap("explained", new Color(222, 235, 247), new Color(33, 102, 172)), "explained by a declared mismatch (counted)"),
    ];

    private static HashSet<int> ColumnsOf(IReadOnlyList<IReadOnlyList<int>> perRow, int row) => row < perRow.Count ? [.. perRow[row]] : [];

    /// <summary>Colour-map position (0..1) of a log10 score.</summary>
    internal static double Position(double logScore) => (logScore - LogScoreMin) / (LogScoreMax - LogScoreMin);

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

    /// <summary>
    /// One curve per backend of one named series (a loss, an accuracy, a norm, a running statistic), the legend beside
    /// the data. With <paramref name="evaluatedSteps"/> (eval curves) the x axis spans the training's steps
    /// <paramref name="lastStep"/> and ticks only the evaluated steps, so a single evaluation is a point at its step.
    /// </summary>
    public static string Lines(string title, string yLabel, IReadOnlyList<SeriesReport> series, IReadOnlyList<string> backendOrder,
        IReadOnlyList<int>? evaluatedSteps = null, int lastStep = 0) =>
        Render(LinesPlot(title, yLabel, series, backendOrder, evaluatedSteps, lastStep), CurveSize);

    /// <summary>The plot behind <see cref="Lines"/>, before rendering.</summary>
    internal static Plot LinesPlot(string title, string yLabel, IReadOnlyList<SeriesReport> series, IReadOnlyList<string> backendOrder,
        IReadOnlyList<int>? evaluatedSteps = null, int lastStep = 0)
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
            line.MarkerSize = s.Steps.Count <= 30 ? Math.Max(4f, 9f - 2f * i) : 0;
        }
        plot.Title(title, size: 13);
        plot.Axes.Bottom.Label.Text = "step";
        if (evaluatedSteps is { Count: > 0 }) EvaluatedStepAxis(plot, evaluatedSteps, lastStep);
        plot.Axes.Left.Label.Text = yLabel;
        plot.Axes.Left.Label.FontSize = 11;
        plot.Axes.Bottom.Label.FontSize = 11;
        plot.Legend.FontSize = 10;
        plot.ShowLegend(Edge.Right);
        return plot;
    }

    /// <summary>
    /// One tensor kind of one backend: its worst and median difference from the reference per step on a log10 axis, over
    /// the band of float32 noise (from the axis floor up to the envelope runs' worst) with the envelope's median as a
    /// thin line. Where the curves rise out of the band, the backend leaves the noise. Zero differences sit on the floor.
    /// </summary>
    public static string Difference(DifferenceReport difference, Color color, int lastStep) =>
        Render(DifferencePlot(difference, color, lastStep), DifferenceSize);

    /// <summary>The plot behind <see cref="Difference"/>, before rendering.</summary>
    internal static Plot DifferencePlot(DifferenceReport difference, Color color, int lastStep)
    {
        double[] xs = [.. difference.Steps.Select(x => (double)x)];
        bool evaluated = TensorKinds.TryParse(difference.Kind)?.IsEval() == true;
        var positive = difference.Worst.Concat(difference.Median).Concat(difference.EnvelopeWorst.Concat(difference.EnvelopeMedian).OfType<double>())
            .Where(v => v > 0 && double.IsFinite(v)).ToList();
        double floor = positive.Count > 0 ? Math.Floor(Math.Log10(positive.Min())) - 0.5 : -1;
        double top = positive.Count > 0 ? Math.Log10(positive.Max()) + 0.5 : 0;
        double Log(double? v) => v is double d && d > 0 && double.IsFinite(d) ? Math.Log10(d) : floor;
        var plot = new Plot();
        if (difference.EnvelopeWorst.Any(e => e is not null))
        {
            // A single evaluation still gets a band a little wider than its point, not a hairline.
            double[] bandXs = xs.Length == 1 ? [xs[0] - StepPad(lastStep), xs[0] + StepPad(lastStep)] : xs;
            double[] bandTops = [.. difference.EnvelopeWorst.Select(Log)];
            if (xs.Length == 1) bandTops = [bandTops[0], bandTops[0]];
            var band = plot.Add.FillY(bandXs, [.. bandXs.Select(_ => floor)], bandTops);
            band.FillColor = NoiseColor.WithAlpha(0.22);
            band.LineColor = NoiseColor.WithAlpha(0.5);
            var median = plot.Add.Scatter(xs, [.. difference.EnvelopeMedian.Select(Log)]);
            median.Color = NoiseColor;
            median.LineWidth = 1;
            median.MarkerSize = 0;
        }
        var medianLine = plot.Add.Scatter(xs, [.. difference.Median.Select(v => Log(v))]);
        medianLine.Color = color.WithAlpha(0.55);
        medianLine.LineWidth = 1.5f;
        medianLine.MarkerSize = xs.Length <= 30 ? 3 : 0;
        var worstLine = plot.Add.Scatter(xs, [.. difference.Worst.Select(v => Log(v))]);
        worstLine.Color = color;
        worstLine.LineWidth = 2.5f;
        worstLine.MarkerSize = xs.Length <= 30 ? 4 : 0;
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            IntegerTicksOnly = true,
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            LabelFormatter = y => "1e" + y.ToString("0", CultureInfo.InvariantCulture),
        };
        plot.Axes.SetLimitsY(floor, Math.Max(top, floor + 1));
        plot.Title(difference.Kind, size: 13);
        plot.Axes.Bottom.Label.Text = "step";
        if (evaluated) EvaluatedStepAxis(plot, difference.Steps, lastStep);
        plot.Axes.Left.Label.Text = "RMSE vs reference";
        plot.Axes.Left.Label.FontSize = 11;
        plot.Axes.Bottom.Label.FontSize = 11;
        return plot;
    }

    /// <summary>
    /// An x axis over evaluated steps: it spans the training (0 to <paramref name="lastStep"/>) so that evaluations sit
    /// where they happened, a single one included, and ticks only the evaluated steps when they are few.
    /// </summary>
    private static void EvaluatedStepAxis(Plot plot, IReadOnlyList<int> steps, int lastStep)
    {
        plot.Axes.Bottom.Label.Text = "evaluated step";
        if (steps.Count <= MaxEvaluatedTicks)
            plot.Axes.Bottom.SetTicks([.. steps.Select(x => (double)x)], [.. steps.Select(x => x.ToString(CultureInfo.InvariantCulture))]);
        double right = Math.Max(lastStep, steps[^1]), pad = StepPad(right);
        plot.Axes.SetLimitsX(Math.Min(0, steps[0]) - pad, right + pad);
    }

    private static double StepPad(double lastStep) => Math.Max(0.5, lastStep * 0.04);

    /// <summary>Pixel size of a curve plot (legend included) and of a difference plot.</summary>
    internal static readonly (int Width, int Height) CurveSize = (600, 280), DifferenceSize = (390, 235);

    /// <summary>The float32 noise band's colour in <see cref="Difference"/>.</summary>
    internal static readonly Color NoiseColor = new(96, 108, 124);

    /// <summary>The colour of a backend in plots, by its position among the run's backends.</summary>
    public static Color BackendColor(IReadOnlyList<string> backendOrder, string backend) =>
        new ScottPlot.Palettes.Category10().GetColor(IndexOf(backendOrder, backend));

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
    internal static string Render(Plot plot, (int Width, int Height) size)
    {
        plot.Font.Set("DejaVu Sans");
        string svg = plot.GetSvgXml(size.Width, size.Height);
        int start = svg.IndexOf("<svg", StringComparison.Ordinal);
        return start > 0 ? svg[start..] : svg;
    }

    /// <summary>A pale to a full shade of one hue over the same log-score scale as <see cref="PassFailColormap"/>.</summary>
    private sealed class ShadeColormap(string name, Color pale, Color full) : IColormap
    {
        public string Name => name;

        public Color GetColor(double position)
        {
            double t = double.IsNaN(position) ? 1 : Math.Clamp(position, 0, 1);
            return new Color((byte)(pale.R + (full.R - pale.R) * t), (byte)(pale.G + (full.G - pale.G) * t), (byte)(pale.B + (full.B - pale.B) * t));
        }
    }

    /// <summary>
    /// Calm where a run is healthy and loud where it is not: near white far inside tolerance, a pale blue up to 40% of
    /// the allowance (where a healthy float32 run sits), amber only near the tolerance edge (log score 0), then red and
    /// dark red beyond it. A reader sees the failures before reading the bar.
    /// </summary>
    private sealed class PassFailColormap : IColormap
    {
        private static readonly (double At, Color Color)[] Stops =
        [
            (Position(-3), new Color(252, 252, 252)),
            (Position(-1), new Color(238, 242, 247)),
            (Position(-0.4), new Color(216, 228, 240)),
            (Position(-0.15), new Color(253, 221, 150)),
            (Position(0), new Color(245, 160, 50)),
            (Position(0.02), new Color(222, 45, 38)),
            (Position(1), new Color(165, 15, 21)),
            (Position(2), new Color(90, 0, 12)),
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
