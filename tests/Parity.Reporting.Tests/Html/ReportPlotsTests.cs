using System.Text.RegularExpressions;
using Parity.Comparison;
using Parity.Reporting.Html;
using Parity.Tracing;
using ScottPlot;

namespace Parity.Reporting.Tests.Html;

/// <summary>
/// The plots a person reads: legends beside the data, eval curves over the evaluated steps, each backend's difference
/// from the reference on a log axis over the float32 noise band, a calm colour for healthy cells, one legend entry per
/// kind of cell, and the tolerance policy as a table.
/// </summary>
public sealed class ReportPlotsTests
{
    private static readonly string[] Order = ["reference", "torchsharp", "keras"];

    [Test]
    public void A_curve_plot_draws_its_legend_beside_the_data_not_over_it()
    {
        var plot = ReportPlots.LinesPlot("train loss", "mean cross-entropy",
            [new SeriesReport("reference", "loss", [0, 1, 2], [1.0, 0.9, 0.8]), new SeriesReport("torchsharp", "loss", [0, 1, 2], [1.0, 0.9, 0.8])], Order);
        ReportPlots.Render(plot, ReportPlots.CurveSize);

        var data = plot.RenderManager.LastRender.DataRect;
        var figure = plot.RenderManager.LastRender.FigureRect;
        Assert.That(plot.Legend.IsVisible, Is.False, "no legend box drawn inside the data area");
        Assert.That(plot.Axes.GetPanels().OfType<ScottPlot.Panels.LegendPanel>().Select(p => p.Edge), Is.EqualTo(new[] { Edge.Right }));
        Assert.That(figure.Right - data.Right, Is.GreaterThan(60), "room right of the data for the legend");
    }

    [Test]
    public void An_eval_curve_puts_its_points_at_the_evaluated_steps_and_ticks_only_those()
    {
        var series = new[] { new SeriesReport("reference", "evalLoss", [20], [0.7]), new SeriesReport("torchsharp", "evalLoss", [20], [0.71]) };
        var plot = ReportPlots.LinesPlot("eval loss", "mean cross-entropy", series, Order, [20], lastStep: 20);
        ReportPlots.Render(plot, ReportPlots.CurveSize);

        var xs = plot.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().SelectMany(s => s.Data.GetScatterPoints().Select(p => p.X)).Distinct();
        Assert.That(xs, Is.EqualTo(new[] { 20.0 }), "x values are the evaluated steps");
        var ticks = plot.Axes.Bottom.TickGenerator.Ticks.Where(t => t.IsMajor).Select(t => t.Position);
        Assert.That(ticks, Is.EqualTo(new[] { 20.0 }), "one tick per evaluated step");
        var limits = plot.Axes.GetLimits();
        Assert.That(limits.Left, Is.LessThanOrEqualTo(0), "a single evaluation is placed on the training's span, not on a 19-21 axis");
        Assert.That(limits.Right, Is.GreaterThan(20));
        Assert.That(plot.Axes.Bottom.Label.Text, Is.EqualTo("evaluated step"));
    }

    [Test]
    public void A_difference_plot_is_log_scaled_with_the_envelope_as_a_band_under_the_worst_and_median_curves()
    {
        var d = new DifferenceReport("parameter", [0, 1, 2, 3], [0, 1e-7, 1e-5, 1e-3], [0, 5e-8, 1e-6, 1e-4], [null, 2e-7, 3e-7, 4e-7], [null, 1e-7, 1e-7, 2e-7]);
        var plot = ReportPlots.DifferencePlot(d, Colors.Blue, lastStep: 3);
        ReportPlots.Render(plot, ReportPlots.DifferenceSize);

        var band = plot.GetPlottables().OfType<ScottPlot.Plottables.FillY>().Single();
        Assert.That(band.GetAxisLimits().Top, Is.EqualTo(Math.Log10(4e-7)).Within(1e-9), "the band reaches the envelope's worst");
        Assert.That(band.GetAxisLimits().Bottom, Is.EqualTo(-8.5).Within(1e-9), "from the axis floor, half a decade under the smallest value");
        var worst = plot.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().MaxBy(s => s.LineWidth)!;
        Assert.That(worst.Data.GetScatterPoints().Select(p => p.Y), Is.EqualTo(new[] { -8.5, -7, -5, -3 }).Within(1e-9),
            "the worst curve is log10 of its RMSE, a zero on the floor");
        var labels = plot.Axes.Left.TickGenerator.Ticks.Where(t => t.IsMajor).Select(t => t.Label).ToList();
        Assert.That(labels, Has.Some.EqualTo("1e-5"), "decade labels on the y axis");
    }

    [Test]
    public void A_single_evaluation_in_a_difference_plot_sits_on_the_training_span_with_a_band_wider_than_a_hairline()
    {
        var d = new DifferenceReport("evalLoss", [20], [2e-3], [2e-3], [1e-3], [1e-3]);
        var plot = ReportPlots.DifferencePlot(d, Colors.Blue, lastStep: 20);
        ReportPlots.Render(plot, ReportPlots.DifferenceSize);

        var band = plot.GetPlottables().OfType<ScottPlot.Plottables.FillY>().Single().GetAxisLimits();
        Assert.That(band.Right - band.Left, Is.GreaterThan(0.5));
        Assert.That(plot.Axes.GetLimits().Left, Is.LessThanOrEqualTo(0), "not a 19-21 axis");
        Assert.That(plot.Axes.Bottom.TickGenerator.Ticks.Where(t => t.IsMajor).Select(t => t.Position), Is.EqualTo(new[] { 20.0 }));
    }

    [Test]
    public void A_report_with_trajectories_shows_one_difference_plot_per_backend_and_kind()
    {
        string html = HtmlReportExporter.Render(WithPlots());
        string section = Regex.Match(html, "<section id=\"differences\">.*?</section>", RegexOptions.Singleline).Value;

        Assert.That(section, Does.Contain("torchsharp vs reference, free-running"));
        Assert.That(Regex.Matches(section, "<figure class=\"plot difference\"><svg").Count, Is.EqualTo(2), "a kind equal at every step has no plot");
        Assert.That(section, Does.Contain("Equal to the reference at every step: optimizerStep."));
        Assert.That(Regex.Matches(html, "<svg").Count, Is.EqualTo(1 + 2 + 4), "the heatmap, two difference plots and four curves");
    }

    /// <summary>
    /// The diverging sample with a heatmap holding every kind of cell, torchsharp's free-running difference for three
    /// kinds (one equal to the reference throughout) and an eval loss evaluated once, at the last step.
    /// </summary>
    internal static RunReport WithPlots()
    {
        var sample = SampleReports.Diverging();
        var comparison = sample.Comparisons[0];
        var d = new DifferenceReport("forward", [0, 1, 2, 3, 4], [0, 1e-7, 1e-6, 1e-4, 1e-2], [0, 5e-8, 3e-7, 2e-5, 1e-3],
            [null, 1e-7, 2e-7, 4e-7, 8e-7], [null, 5e-8, 1e-7, 2e-7, 4e-7]);
        return sample with
        {
            Comparisons =
            [
                comparison with
                {
                    Heatmap = comparison.Heatmap with
                    {
                        Excluded = [[1, 2], [], [0]],
                        KinkExcused = [[2], [], []],
                        Explained = [[], [2], []],
                    },
                    Trajectory = new TrajectoryReport(Verdict.Diverge, null, null, 4, 10, 1, [], comparison.Heatmap)
                    {
                        Differences = [d, d with { Kind = "parameter" }, d with { Kind = "optimizerStep", Worst = [0, 0, 0, 0, 0], Median = [0, 0, 0, 0, 0] }],
                    },
                },
                sample.Comparisons[1],
            ],
            Series = [.. sample.Series, new SeriesReport("reference", "evalLoss", [4], [0.9]), new SeriesReport("torchsharp", "evalLoss", [4], [0.95])],
        };
    }

    [Test]
    public void Healthy_cells_are_pale_and_only_the_tolerance_edge_and_beyond_are_coloured()
    {
        var colormap = ReportPlots.CellKinds.Single(k => k.Kind == ReportPlots.CellKind.Counted).Colormap;
        Color At(double score) => colormap.GetColor(ReportPlots.Position(ReportPlots.LogScore(score)));
        static double Saturation(Color c) => (Math.Max(c.R, Math.Max(c.G, c.B)) - Math.Min(c.R, Math.Min(c.G, c.B))) / 255.0;

        Assert.That(Saturation(At(1e-3)), Is.LessThan(0.05), "far inside tolerance: near white");
        Assert.That(Saturation(At(0.05)), Is.LessThan(0.1), "well within tolerance: pale");
        Assert.That(Saturation(At(0.3)), Is.LessThan(0.15), "a healthy float32 step check: still pale");
        Assert.That(Saturation(At(1.0)), Is.GreaterThan(0.5), "the tolerance edge stands out");
        var fail = At(3);
        Assert.That(fail.R, Is.GreaterThan(150));
        Assert.That(fail.G, Is.LessThan(60), "a failure is red");
    }

    [Test]
    public void Each_kind_of_excused_cell_has_its_own_colour_and_legend_entry()
    {
        var heatmap = new HeatmapReport(["forward:l1", "parameterGradient:l1.bias", "runningVariance:bn"], [1, 2],
            [[0.01, 5.0], [0.2, 0.3], [4.0, 8.0]])
        {
            Excluded = [[1], [0, 1], []],
            KinkExcused = [[1], [], []],
            Explained = [[], [], [0, 1]],
        };
        string svg = ReportPlots.Heatmap(heatmap, "torchsharp vs reference");

        Assert.That(svg, Does.Contain("not identifiable (not counted)"));
        Assert.That(svg, Does.Contain("ReLU kink flip downstream (excused, not counted)"));
        Assert.That(svg, Does.Contain("explained by a declared mismatch (counted)"));
        var swatches = ReportPlots.CellKinds.Select(k => k.Colormap.GetColor(ReportPlots.Position(0))).ToList();
        Assert.That(swatches.Distinct().Count(), Is.EqualTo(swatches.Count), "one colour per kind of cell");
    }

    [Test]
    public void The_heatmap_tells_kink_excused_from_not_identifiable_and_explained_from_unexplained_cells()
    {
        static TensorCheck Check(int step, TensorKind kind, string site, double score, CheckStatus status) =>
            new(step, RecordPhase.Train, new TensorKey(kind, site), new TensorMetrics(0, 0, 0, 1, score * 1e-6, 1, 1), score <= 1, score, status);
        var checks = new List<TensorCheck>
        {
            Check(1, TensorKind.Forward, "l1", 0.1, CheckStatus.Checked),
            Check(2, TensorKind.Forward, "l1", 3.0, CheckStatus.KinkInherited),
            Check(1, TensorKind.ParameterGradient, "l1.bias", 2.0, CheckStatus.NotIdentifiable),
            Check(2, TensorKind.ParameterGradient, "l1.bias", 0.5, CheckStatus.NotIdentifiable),
            Check(1, TensorKind.RunningVariance, "bn", 6.0, CheckStatus.ExplainedByMismatch),
            Check(2, TensorKind.RunningVariance, "bn", 7.0, CheckStatus.Checked),
        };
        var result = new ComparisonResult("reference", "keras", Verdict.Diverge, null, null, 2, checks.Count, 2, checks, ["l1.bias"]);
        var heatmap = ReportBuilder.ToReport(result).Heatmap;

        int Row(string name) => heatmap.Rows.ToList().IndexOf(name);
        Assert.That(heatmap.Excluded[Row("forward:l1")], Is.EqualTo(new[] { 1 }));
        Assert.That(heatmap.KinkExcused[Row("forward:l1")], Is.EqualTo(new[] { 1 }));
        Assert.That(heatmap.Excluded[Row("parameterGradient:l1.bias")], Is.EqualTo(new[] { 0, 1 }));
        Assert.That(heatmap.KinkExcused[Row("parameterGradient:l1.bias")], Is.Empty, "not identifiable, not kink-excused");
        Assert.That(heatmap.Explained[Row("runningVariance:bn")], Is.EqualTo(new[] { 0 }), "step 2 fails unexplained");
    }

    [Test]
    public void A_trajectory_reports_each_kinds_worst_and_median_difference_beside_the_envelope()
    {
        static TensorCheck Check(int step, string site, double rmse, double? envelope, CheckStatus status = CheckStatus.Checked) =>
            new(step, RecordPhase.Train, new TensorKey(TensorKind.Parameter, site), new TensorMetrics(0, 0, 0, 1, rmse, 1, 1), true, 0.1, status)
            {
                EnvelopeError = envelope,
            };
        var checks = new List<TensorCheck>
        {
            Check(1, "a", 1e-7, 2e-7), Check(1, "b", 3e-7, 1e-7), Check(1, "c", 2e-7, 4e-7), Check(1, "bias", 9.0, 1e-7, CheckStatus.NotIdentifiable),
            Check(2, "a", 1e-6, null), Check(2, "b", 5e-6, null),
        };
        var trajectory = new ComparisonResult("reference", "keras", Verdict.Agree, null, null, 2, checks.Count, 0, checks, ["bias"]);
        var differences = ReportBuilder.ToReport(new BackendJudgement("keras", null, trajectory, null)).Trajectory!.Differences;

        var d = differences.Single();
        Assert.That(d.Kind, Is.EqualTo("parameter"));
        Assert.That(d.Steps, Is.EqualTo(new[] { 1, 2 }));
        Assert.That(d.Worst, Is.EqualTo(new[] { 3e-7, 5e-6 }), "the not-identifiable bias is left out");
        Assert.That(d.Median, Is.EqualTo(new[] { 2e-7, 3e-6 }));
        Assert.That(d.EnvelopeWorst, Is.EqualTo(new double?[] { 4e-7, null }));
        Assert.That(d.EnvelopeMedian, Is.EqualTo(new double?[] { 2e-7, null }));
    }

    [Test]
    public void The_tolerance_policy_is_a_table_not_raw_json()
    {
        var report = SampleReports.Diverging();
        string html = HtmlReportExporter.Render(report);
        string section = Regex.Match(html, "<section id=\"policy\">.*?</section>", RegexOptions.Singleline).Value;

        Assert.That(section, Does.Contain("<table id=\"tolerances\""));
        Assert.That(Regex.Matches(section, "<tr><td><code>").Count, Is.EqualTo(report.TolerancePolicy.Kinds.Count), "one row per tensor kind");
        Assert.That(section, Does.Contain("<code>forward</code>"));
        Assert.That(section, Does.Not.Contain("<pre").And.Not.Contain("\"envelopeMultiple\""));
    }
}
