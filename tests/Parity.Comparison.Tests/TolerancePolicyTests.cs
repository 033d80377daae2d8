using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Comparison.Tests;

public class TolerancePolicyTests
{
    private static TensorMetrics Metrics(double rmse, double referenceRms) => new(rmse, 0, 0, 10, rmse, 1, referenceRms);

    [Test]
    public void Envelope_allowance_is_a_multiple_of_the_envelope_error_plus_a_floor_relative_to_the_reference()
    {
        var policy = TolerancePolicy.Create(cli: new ToleranceOverrides(new Dictionary<string, (double, double)>(), 2, 1e-3));
        Assert.That(policy.EnvelopeAllowance(1e-4, 0.5), Is.EqualTo(2 * 1e-4 + 1e-3 * 0.5 + TolerancePolicy.AbsoluteFloor).Within(1e-18));
    }

    [Test]
    public void Envelope_judgement_passes_within_the_multiple_and_fails_beyond()
    {
        var policy = TolerancePolicy.Default; // multiple 3, floor 1e-5
        var tol = new Tolerance(1, 1); // ignored by the envelope rule
        var within = policy.Judge(Metrics(3.9e-5, 1), tol, envelopeError: 1e-5);
        var beyond = policy.Judge(Metrics(4.1e-5, 1), tol, envelopeError: 1e-5);
        Assert.That(within.Rule, Is.EqualTo(JudgementRule.Envelope));
        Assert.That(within.Passed, Is.True);
        Assert.That(within.Score, Is.EqualTo(3.9e-5 / 4e-5).Within(1e-9));
        Assert.That(beyond.Passed, Is.False);
    }

    [Test]
    public void An_envelope_error_of_zero_still_allows_the_floor()
    {
        var policy = TolerancePolicy.Default;
        Assert.That(policy.Judge(Metrics(0.9e-5, 1), Tolerance.Exact, 0).Passed, Is.True);
        Assert.That(policy.Judge(Metrics(1.1e-5, 1), Tolerance.Exact, 0).Passed, Is.False);
    }

    [Test]
    public void Without_an_envelope_the_tolerance_grows_with_the_step()
    {
        var policy = TolerancePolicy.Create(new ToleranceOverrides(new Dictionary<string, (double, double)> { ["forward"] = (1e-6, 1e-4) }, null, null), growthExponent: 0.5);
        Assert.That(policy.Growth(0), Is.EqualTo(1));
        Assert.That(policy.Growth(3), Is.EqualTo(2).Within(1e-12));
        var t = policy.ToleranceAt(TensorKind.Forward, 3, DType.Float32, DType.Float64, referenceRms: 2);
        Assert.That(t.Atol, Is.EqualTo(2 * (1e-6 + 1e-4 * 2)).Within(1e-15));
        Assert.That(t.Rtol, Is.EqualTo(2e-4).Within(1e-15));
        var j = policy.Judge(Metrics(t.Atol * 1.01, 2), t, null);
        Assert.That((j.Rule, j.Passed), Is.EqualTo((JudgementRule.Tolerance, false)));
    }

    [Test]
    public void The_default_growth_is_linear_in_the_step()
    {
        Assert.That(TolerancePolicy.Default.Growth(9), Is.EqualTo(10).Within(1e-12));
    }

    [Test]
    public void Accuracies_do_not_grow_with_the_step()
    {
        var policy = TolerancePolicy.Default;
        Assert.That(policy.ToleranceAt(TensorKind.EvalAccuracy, 50, DType.Float32, DType.Float64, 0.8),
            Is.EqualTo(policy.BaseTolerance(TensorKind.EvalAccuracy, DType.Float32, DType.Float64)));
    }

    [Test]
    public void Float64_pairs_use_the_tight_table_and_any_float32_side_the_float32_table()
    {
        var policy = TolerancePolicy.Default;
        var f64 = policy.BaseTolerance(TensorKind.Forward, DType.Float64, DType.Float64);
        var mixed = policy.BaseTolerance(TensorKind.Forward, DType.Float32, DType.Float64);
        Assert.That(f64.Rtol, Is.LessThan(mixed.Rtol / 1000));
        Assert.That(policy.BaseTolerance(TensorKind.Forward, DType.Float32, DType.Float32), Is.EqualTo(mixed));
    }

    [Test]
    public void The_envelope_judges_float32_against_float64_except_accuracies()
    {
        Assert.That(TolerancePolicy.UsesEnvelope(TensorKind.Forward, DType.Float32, DType.Float64), Is.True);
        Assert.That(TolerancePolicy.UsesEnvelope(TensorKind.Forward, DType.Float64, DType.Float64), Is.False);
        Assert.That(TolerancePolicy.UsesEnvelope(TensorKind.Forward, DType.Float32, DType.Float32), Is.False);
        Assert.That(TolerancePolicy.UsesEnvelope(TensorKind.EvalAccuracy, DType.Float32, DType.Float64), Is.False);
    }

    [Test]
    public void Command_line_values_override_the_spec_which_overrides_the_defaults()
    {
        var spec = new ToleranceOverrides(new Dictionary<string, (double, double)> { ["loss"] = (1e-3, 1e-3), ["parameter"] = (2e-3, 0) }, 5, null);
        var cli = TolerancePolicy.ParseOverrides("loss=1e-6:1e-5, multiple=4");
        var policy = TolerancePolicy.Create(spec, cli);
        Assert.That(policy.BaseTolerance(TensorKind.Loss, DType.Float32, DType.Float64), Is.EqualTo(new Tolerance(1e-6, 1e-5)));
        Assert.That(policy.BaseTolerance(TensorKind.Parameter, DType.Float64, DType.Float64), Is.EqualTo(new Tolerance(2e-3, 0)));
        Assert.That(policy.EnvelopeMultiple, Is.EqualTo(4));
        Assert.That(policy.EnvelopeFloor, Is.EqualTo(TolerancePolicy.DefaultEnvelopeFloor));

        var described = policy.Describe();
        Assert.That(described.Kinds["loss"].Source, Is.EqualTo("cli"));
        Assert.That(described.Kinds["parameter"].Source, Is.EqualTo("spec"));
        Assert.That(described.Kinds["forward"].Source, Is.EqualTo("default"));
        Assert.That(described.Kinds["evalAccuracy"].Envelope, Is.False);
        Assert.That(described.EnvelopeMultiple, Is.EqualTo(4));
        Assert.That(described.Rule, Does.Contain("RMSE"));
    }

    [Test]
    public void All_sets_every_kind_from_the_command_line()
    {
        var policy = TolerancePolicy.Create(cli: TolerancePolicy.ParseOverrides("all=0:0.5"));
        Assert.That(Enum.GetValues<TensorKind>().Select(k => policy.BaseTolerance(k, DType.Float32, DType.Float64).Rtol), Is.All.EqualTo(0.5));
    }

    [TestCase("loss", "expected kind=atol:rtol")]
    [TestCase("loss=1e-5", "expected loss=atol:rtol")]
    [TestCase("gradient=1:1", "unknown tensor kind 'gradient'")]
    [TestCase("loss=x:1", "'x' is not a number")]
    [TestCase("multiple=-2", "'-2' is not a number >= 0")]
    public void Bad_command_line_values_are_rejected_with_the_item_named(string text, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => TolerancePolicy.ParseOverrides(text));
        Assert.That(e!.Message, Does.Contain(message));
    }

    [Test]
    public void An_envelope_multiple_below_one_is_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => TolerancePolicy.Create(cli: TolerancePolicy.ParseOverrides("multiple=0.5")));
        Assert.That(e!.Message, Does.Contain("envelopeMultiple must be at least 1"));
    }

    [Test]
    public void Non_finite_metrics_score_infinity_under_both_rules()
    {
        var nan = new TensorMetrics(double.PositiveInfinity, double.PositiveInfinity, 1, 1, double.PositiveInfinity, 0, 1) { NonFiniteMismatched = 1 };
        Assert.That(TolerancePolicy.Default.Judge(nan, new Tolerance(1e9, 1e9), null).Score, Is.EqualTo(double.PositiveInfinity));
        Assert.That(TolerancePolicy.Default.Judge(nan, new Tolerance(1e9, 1e9), 1e9).Passed, Is.False);
    }
}
