using Parity.Diagnostics;

namespace Parity.Reporting.Tests;

public sealed class ExplanationTests
{
    private const string RunningVariance = "model.layers[bn].runningVariance";

    internal static DivergenceReport Divergence(params string[] explainedBy) =>
        new(1, "train", "runningVariance", "bn", "origin", new MetricsReport(1e-4, 1e-4, 100, 100, 4e-5, 1, 4.8), [], [], explainedBy);

    internal static FindingReport Finding(string cause, string backend, FindingKind kind = FindingKind.Cause, string? declaredBy = null, string summary = "it fits") =>
        new(cause, backend, "step 1 train runningMean:bn", summary, new Dictionary<string, object?> { ["evalAccuracy"] = 0.71 }, "fix it")
        {
            Kind = kind,
            DeclaredBy = declaredBy,
        };

    [Test]
    public void A_finding_about_the_spec_never_explains_a_divergence_declared_by_the_backend()
    {
        var findings = new[] { "reference", "torchsharp", "keras" }.Select(b => Finding(CauseIds.SharedStatefulLayer, b, FindingKind.Spec)).ToList();

        var explanation = Explanations.Choose("keras", Divergence(RunningVariance), findings);

        Assert.That(explanation.Kind, Is.EqualTo(ExplanationKind.DeclaredMismatch));
        Assert.That(explanation.Text, Is.EqualTo($"explained by declared mismatch {RunningVariance}"));
    }

    [Test]
    public void A_finding_about_the_spec_alone_leaves_a_divergence_unexplained()
    {
        var explanation = Explanations.Choose("keras", Divergence(), [Finding(CauseIds.SharedStatefulLayer, "keras", FindingKind.Spec)]);

        Assert.That(explanation.Text, Is.EqualTo("unexplained: no known cause fits"));
    }

    [Test]
    public void An_undeclared_cause_of_this_backend_is_named_and_another_backends_is_not()
    {
        var findings = new[] { Finding(CauseIds.BnMomentumConvention, "torchsharp"), Finding(CauseIds.WeightLayout, "keras") };

        var explanation = Explanations.Choose("torchsharp", Divergence(), findings);

        Assert.That(explanation.Kind, Is.EqualTo(ExplanationKind.Cause));
        Assert.That(explanation.Text, Is.EqualTo("cause: bn-momentum-convention"));
    }

    [Test]
    public void A_cause_the_backend_declared_explains_as_its_declared_mismatch()
    {
        var explanation = Explanations.Choose("keras", Divergence(), [Finding(CauseIds.BnVarianceEstimator, "keras", declaredBy: RunningVariance)]);

        Assert.That(explanation.Text, Is.EqualTo($"explained by declared mismatch {RunningVariance}"));
    }

    [Test]
    public void An_undeclared_cause_wins_over_a_declared_one()
    {
        var findings = new[] { Finding(CauseIds.BnVarianceEstimator, "keras", declaredBy: RunningVariance), Finding(CauseIds.AdamEpsilonForm, "keras") };

        Assert.That(Explanations.Choose("keras", Divergence(), findings).Text, Is.EqualTo("cause: adam-epsilon-form"));
    }

    [Test]
    public void The_unexplained_divergence_finding_is_not_a_cause()
    {
        var explanation = Explanations.Choose("keras", Divergence(), [Finding(CauseIds.UnexplainedDivergence, "keras")]);

        Assert.That(explanation.Kind, Is.EqualTo(ExplanationKind.Unexplained));
    }

    [Test]
    public void Attaching_stores_the_chosen_explanation_on_the_first_divergence_and_the_trajectorys()
    {
        var trajectory = new TrajectoryReport(Verdict.Diverge, null, Divergence(RunningVariance), 10, 586, 289, [], new HeatmapReport([], [], []));
        var comparison = new ComparisonReport("keras", "reference", Verdict.Diverge, null, Divergence(), 10, 586, 1, [], new HeatmapReport([], [], []))
        {
            Trajectory = trajectory,
        };

        var attached = Explanations.Attach(comparison, [Finding(CauseIds.WeightLayout, "keras")]);

        Assert.That(attached.FirstDivergence!.Explanation!.Text, Is.EqualTo("cause: weight-layout"));
        Assert.That(attached.Trajectory!.FirstDivergence!.Explanation!.Text, Is.EqualTo($"explained by declared mismatch {RunningVariance}"));
    }

    [Test]
    public void The_same_finding_of_several_backends_is_merged_into_one_listing_them()
    {
        var findings = new[]
        {
            Finding(CauseIds.SharedStatefulLayer, "reference", FindingKind.Spec, summary: "eval accuracy 0.7124"),
            Finding(CauseIds.BnMomentumConvention, "torchsharp"),
            Finding(CauseIds.SharedStatefulLayer, "torchsharp", FindingKind.Spec, summary: "eval accuracy 0.7111"),
            Finding(CauseIds.SharedStatefulLayer, "keras", FindingKind.Spec, summary: "eval accuracy 0.7123"),
            // The same cause id as a cause of keras's own divergence is a different finding.
            Finding(CauseIds.SharedStatefulLayer, "keras"),
        };

        var groups = FindingGroup.Of(findings);

        Assert.That(groups.Select(g => (g.Label, g.Cause, string.Join(",", g.Backends))), Is.EqualTo(new[]
        {
            ("cause", CauseIds.BnMomentumConvention, "torchsharp"),
            ("cause", CauseIds.SharedStatefulLayer, "keras"),
            ("about the spec", CauseIds.SharedStatefulLayer, "reference,torchsharp,keras"),
        }));
        Assert.That(groups[2].Summary, Is.EqualTo("eval accuracy 0.7124 (figures from reference; each backend's are in its evidence)"));
        Assert.That(groups[0].Summary, Is.EqualTo("it fits"), "one backend's sentence as it is");
    }
}
