namespace Parity.Reporting.Tests;

public sealed class DivergenceTextTests
{
    [TestCase(37, new[] { 64, 10 }, 640, "(3, 7)")]
    [TestCase(5, new[] { 7 }, 7, "(5)")]
    [TestCase(5, new[] { 64, 10 }, 100, "5 (flat)")]
    [TestCase(-1, new[] { 2 }, 2, "(none)")]
    public void The_worst_index_becomes_a_position_when_the_shape_fits(int flat, int[] shape, int count, string expected)
    {
        var m = new MetricsReport(1, 1, 1, count, 1, 1, 2, flat, shape);
        Assert.That(DivergenceText.Index(m), Is.EqualTo(expected));
    }

    [Test]
    public void The_message_reads_like_assert_close_then_localizes_and_names_the_cause()
    {
        var report = SampleReports.Diverging();
        string text = DivergenceText.Describe(report.Comparisons[0], report.Findings);

        Assert.That(text, Does.Contain("Mismatched elements: 12 / 640 (1.9%) (atol=1e-07, rtol=2e-05)"));
        Assert.That(text, Does.Contain("Greatest absolute difference: 0.5 at index (3, 7)"));
        Assert.That(text, Does.Contain("Greatest relative difference: 0.25"));
        Assert.That(text, Does.Contain("First divergence: step 3, forward:l2 (origin; every input it was computed from agreed (forward:l1, parameter:l2.weight))"));
        Assert.That(text, Does.Contain("Explanation: cause: shared-stateful-instance\n  shared-stateful-instance at bn: one batchnorm instance"));
    }

    [Test]
    public void A_cause_beside_a_declared_divergence_is_still_listed_but_not_as_its_explanation()
    {
        var report = SampleReports.Diverging();
        var comparison = report.Comparisons[0];
        var declared = comparison with { FirstDivergence = comparison.FirstDivergence! with { ExplainedBy = ["layers[bn].runningVariance"] } };

        string text = DivergenceText.Describe(declared, report.Findings);

        Assert.That(text, Does.Contain("Explanation: explained by declared mismatch layers[bn].runningVariance\nAlso found: shared-stateful-instance at bn:"));
    }
}
