using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Harness;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Diagnostics.Tests;

/// <summary>For every cause: a backend with that defect, and the finding it must produce (cause id and location).</summary>
public class DetectorTests
{
    private const int Steps = 6;

    private static ScenarioSpec MlpBn => Scenario.Fixture("synthetic-mlp-bn");

    private static (IBackend, DType) F64(IBackend backend) => (backend, DType.Float64);

    private static Finding Single(Diagnosis d, string cause, string backend)
    {
        Assert.That(d.Notes, Is.Empty, "a detector threw");
        var found = d.Findings.Where(f => f.Cause == cause && f.Backend == backend).ToList();
        Assert.That(found, Is.Not.Empty, $"no {cause} for {backend}; findings: {string.Join(" | ", d.Findings)}");
        return found[0];
    }

    private static void AssertAt(Finding f, int step, RecordPhase phase, TensorKind kind, string site)
    {
        Assert.That(f.Location, Is.Not.Null);
        Assert.That((f.Location!.Step, f.Location.Phase, f.Location.Key), Is.EqualTo((step, phase, new TensorKey(kind, site))), f.ToString());
    }

    [Test]
    public void A_clean_float32_run_of_the_reference_has_no_finding()
    {
        var d = Scenario.Diagnose(MlpBn, Steps, (ReferenceBackend.Float32(), DType.Float32), F64(new SpecVariantBackend("reference-copy", s => s)));
        Assert.That(d.Notes, Is.Empty);
        Assert.That(d.Findings, Is.Empty, string.Join(" | ", d.Findings));
    }

    [Test]
    public void Momentum_read_as_one_minus_m_is_a_bn_momentum_convention_at_the_first_running_mean()
    {
        var d = Scenario.Diagnose(MlpBn, Steps, F64(new SpecVariantBackend("keras-like", s => SpecVariantBackend.MapBatchNorms(s, bn => bn with { Momentum = 1 - bn.Momentum }))));
        var f = Single(d, CauseIds.BnMomentumConvention, "keras-like");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.RunningMean, "bn1");
        Assert.That(f.Evidence["fittedMomentum"], Is.EqualTo(0.9));
        Assert.That(d.Findings.Where(x => x.Cause == CauseIds.UnexplainedDivergence), Is.Empty);
    }

    [Test]
    public void A_biased_running_variance_is_a_bn_variance_estimator_with_ratio_one()
    {
        var d = Scenario.Diagnose(MlpBn, Steps, F64(new SpecVariantBackend("biased", s => SpecVariantBackend.MapBatchNorms(s, bn => bn with { RunningVariance = RunningVarianceEstimator.Biased }))));
        var f = Single(d, CauseIds.BnVarianceEstimator, "biased");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.RunningVariance, "bn1");
        Assert.That((double)f.Evidence["impliedRatio"]!, Is.EqualTo(1.0).Within(1e-6));
        Assert.That((double)f.Evidence["nOverNMinus1"]!, Is.EqualTo(64 / 63.0).Within(1e-3));
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.BnMomentumConvention));
    }

    [Test]
    public void Ten_times_the_eps_is_a_bn_epsilon_with_the_eps_estimated()
    {
        var d = Scenario.Diagnose(MlpBn, Steps, F64(new SpecVariantBackend("eps10", s => SpecVariantBackend.MapBatchNorms(s, bn => bn with { Eps = bn.Eps * 10 }))));
        var f = Single(d, CauseIds.BnEpsilon, "eps10");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.Forward, "bn1");
        Assert.That(f.Evidence["form"], Is.EqualTo("inside"));
        Assert.That((double)f.Evidence["fittedEps"]!, Is.EqualTo(1e-4).Within(1e-6));
    }

    [Test]
    public void Eps_outside_the_square_root_is_a_bn_epsilon_of_the_old_cntk_form()
    {
        var spec = SpecVariantBackend.MapBatchNorms(MlpBn, bn => bn with { Eps = 1e-3, Affine = false });
        var cntk = new RewritingBackend("cntk-like", (plan, r) => r.Phase != RecordPhase.Train ? r
            : RewritingBackend.RenormalizeBatchNorm(plan, r, TensorKind.Forward, (x, bn) => RewritingBackend.Normalize(x, bn.Eps, epsOutside: true)));
        var d = Scenario.Diagnose(spec, Steps, F64(cntk));
        var f = Single(d, CauseIds.BnEpsilon, "cntk-like");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.Forward, "bn1");
        Assert.That(f.Evidence["form"], Is.EqualTo("outside"));
        Assert.That((double)f.Evidence["fittedEps"]!, Is.EqualTo(1e-3).Within(1e-6));
    }

    [Test]
    public void The_epsilon_hat_form_is_an_adam_epsilon_form_at_step_one()
    {
        var spec = MlpBn with { Optimizer = new AdamSpec(0.01, 0.9, 0.999, 1e-3, EpsilonForm.SqrtVHat) };
        var d = Scenario.Diagnose(spec, Steps, F64(new SpecVariantBackend("tf-like", s => s with { Optimizer = ((AdamSpec)s.Optimizer) with { EpsilonForm = EpsilonForm.EpsilonHat } })));
        var f = Single(d, CauseIds.AdamEpsilonForm, "tf-like");
        Assert.That(f.Location!.Step, Is.EqualTo(1));
        Assert.That(f.Location.Key.Kind, Is.EqualTo(TensorKind.Parameter));
        // Located on a parameter the verdict judges (a bias feeding a batchnorm is not identifiable).
        Assert.That(Planning.Planner.Build(spec, 1).Graph.Parameter(f.Location.Key.Site).Identifiable, Is.True, f.Location.Key.Site);
        Assert.That(f.Evidence["fittedForm"], Is.EqualTo("epsilonHat"));
    }

    private static ScenarioSpec Rmsprop => Scenario.Fixture("synthetic-rmsprop");

    private static ScenarioSpec WithRmsprop(ScenarioSpec s, Func<RmspropSpec, RmspropSpec> change) => s with { Optimizer = change((RmspropSpec)s.Optimizer) };

    [Test]
    public void Eps_inside_the_square_root_is_an_rmsprop_epsilon_placement_at_step_one()
    {
        // eps 1e-3 is comparable to sqrt(v) after one update, so the placements differ visibly.
        var spec = WithRmsprop(Rmsprop, r => r with { Eps = 1e-3 });
        var d = Scenario.Diagnose(spec, Steps, F64(new SpecVariantBackend("keras-like", s => WithRmsprop(s, r => r with { EpsilonPlacement = EpsilonPlacement.Inside }))));
        var f = Single(d, CauseIds.RmspropEpsilonPlacement, "keras-like");
        Assert.That((f.Location!.Step, f.Location.Phase, f.Location.Key.Kind), Is.EqualTo((1, RecordPhase.Train, TensorKind.Parameter)));
        Assert.That(f.Evidence["fittedPlacement"], Is.EqualTo("inside"));
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.RmspropMeanSquareInit));
    }

    [Test]
    public void An_rmsprop_eps_placement_that_changes_at_step_four_is_named_at_step_four()
    {
        var spec = WithRmsprop(Rmsprop, r => r with { Eps = 1e-3 });
        var changed = new ChangedMidRunBackend("placement-changes", ReferenceBackend.Float64(), s => WithRmsprop(s, r => r with { EpsilonPlacement = EpsilonPlacement.Inside }), 4);
        var d = Scenario.Diagnose(spec, Steps, F64(changed));
        Assert.That(Single(d, CauseIds.RmspropEpsilonPlacement, "placement-changes").Location!.Step, Is.EqualTo(4));
    }

    [Test]
    public void A_mean_square_starting_at_one_is_an_rmsprop_mean_square_init_fitted_at_step_one()
    {
        var d = Scenario.Diagnose(Rmsprop, Steps, F64(new SpecVariantBackend("tf1-like", s => WithRmsprop(s, r => r with { MeanSquareInit = 1 }))));
        var f = Single(d, CauseIds.RmspropMeanSquareInit, "tf1-like");
        Assert.That((f.Location!.Step, f.Location.Phase, f.Location.Key.Kind), Is.EqualTo((1, RecordPhase.Train, TensorKind.Parameter)));
        Assert.That((double)f.Evidence["fittedMeanSquareInit"]!, Is.EqualTo(1).Within(1e-6));
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.RmspropEpsilonPlacement));
    }

    [TestCase(0.0, 1e-10, 0.1, Description = "PyTorch's spec, a TF-like backend")]
    [TestCase(0.1, 1e-7, 0.0, Description = "TF's spec with an eps, a PyTorch-like backend")]
    public void Another_starting_accumulator_is_an_adagrad_initial_accumulator_fitted_at_step_one(double specStart, double eps, double backendStart)
    {
        var adagrad = Scenario.Fixture("synthetic-adagrad");
        var spec = adagrad with { Optimizer = (AdagradSpec)adagrad.Optimizer with { InitialAccumulator = specStart, Eps = eps } };
        var d = Scenario.Diagnose(spec, Steps, F64(new SpecVariantBackend("other-start",
            s => s with { Optimizer = (AdagradSpec)s.Optimizer with { InitialAccumulator = backendStart } })));
        var f = Single(d, CauseIds.AdagradInitialAccumulator, "other-start");
        Assert.That((f.Location!.Step, f.Location.Phase, f.Location.Key.Kind), Is.EqualTo((1, RecordPhase.Train, TensorKind.Parameter)));
        Assert.That((double)f.Evidence["fittedInitialAccumulator"]!, Is.EqualTo(backendStart).Within(1e-6));
    }

    private static ScenarioSpec ScheduleClip => Scenario.Fixture("synthetic-schedule-clip");

    private static ScenarioSpec WithSgd(ScenarioSpec spec, Func<SgdSpec, SgdSpec> change) => spec with { Optimizer = change((SgdSpec)spec.Optimizer) };

    [Test]
    public void The_keras_momentum_form_is_a_momentum_form_at_the_first_update_whose_rate_changed()
    {
        // The staircase halves the rate after updates 0-3: update 4 (step 5) is the first at another rate.
        var d = Scenario.Diagnose(ScheduleClip, 8, F64(new SpecVariantBackend("keras-momentum", s => WithSgd(s, o => o with { MomentumForm = MomentumForm.Keras }))));
        var f = Single(d, CauseIds.SgdMomentumForm, "keras-momentum");
        Assert.That((f.Location!.Step, f.Location.Key.Kind), Is.EqualTo((5, TensorKind.Parameter)), f.ToString());
        Assert.That(f.Evidence["fittedForm"], Is.EqualTo("keras"));
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.LrScheduleCount).And.None.EqualTo(CauseIds.GradientClippingScope));
    }

    [Test]
    public void Per_tensor_clipping_is_a_clipping_scope_at_the_first_step_whose_norm_exceeds_the_threshold()
    {
        // Step 1's global gradient norm (1.16) is under maxNorm 1.2, step 2's (1.25) over it; no single tensor's norm is.
        var d = Scenario.Diagnose(ScheduleClip, 6, F64(new SpecVariantBackend("clipnorm",
            s => WithSgd(s, o => o with { Clipping = o.Clipping! with { Scope = ClipScope.PerTensorNorm } }))));
        var f = Single(d, CauseIds.GradientClippingScope, "clipnorm");
        Assert.That((f.Location!.Step, f.Location.Key.Kind), Is.EqualTo((2, TensorKind.Parameter)), f.ToString());
        Assert.That(f.Evidence["fittedScope"], Is.EqualTo("per-tensor norm"));
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.SgdMomentumForm).And.None.EqualTo(CauseIds.LrScheduleCount));
    }

    [Test]
    public void A_schedule_stepped_per_epoch_is_a_schedule_count_where_the_rates_first_differ()
    {
        // 12 updates an epoch: a per-epoch count keeps lr(0) through step 12, while the spec halves it at update 4 (step 5).
        var d = Scenario.Diagnose(ScheduleClip, 8, F64(new SpecVariantBackend("per-epoch", s => WithSgd(s, o => o with { Schedule = ConstantSchedule.Instance }))));
        var f = Single(d, CauseIds.LrScheduleCount, "per-epoch");
        Assert.That((f.Location!.Step, f.Location.Key.Kind), Is.EqualTo((5, TensorKind.Parameter)), f.ToString());
        Assert.That((string)f.Evidence["fittedCounting"]!, Does.StartWith("per epoch"), f.Summary);
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.SgdMomentumForm));
    }

    private static ScenarioSpec Activations => Scenario.Fixture("synthetic-activations");

    private static ScenarioSpec MapLayers(ScenarioSpec spec, Func<LayerSpec, LayerSpec> change) =>
        spec with { Model = spec.Model with { Layers = [.. spec.Model.Layers.Select(change)] } };

    [TestCase(0.3, Description = "the Keras LeakyReLU layer's default")]
    [TestCase(0.2, Description = "tf.nn.leaky_relu's default")]
    [TestCase(0.01, Description = "PyTorch's default")]
    public void A_framework_default_slope_is_a_leaky_relu_slope_fitted_at_step_one(double slope)
    {
        var d = Scenario.Diagnose(Activations, Steps, F64(new SpecVariantBackend("default-slope",
            s => MapLayers(s, l => l is LeakyReluSpec leaky ? leaky with { Slope = slope } : l))));
        var f = Single(d, CauseIds.LeakyReluSlope, "default-slope");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.Forward, "leaky");
        Assert.That(f.Evidence["specSlope"], Is.EqualTo(0.1));
        Assert.That((double)f.Evidence["fittedSlope"]!, Is.EqualTo(slope).Within(1e-6));
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.GeluApproximation));
    }

    [TestCase("gelu", GeluApproximation.Tanh, "tanh")]
    [TestCase("gelu_tanh", GeluApproximation.Exact, "exact")]
    public void The_other_gelu_form_is_a_gelu_approximation_at_step_one(string instance, GeluApproximation runs, string fitted)
    {
        var d = Scenario.Diagnose(Activations, Steps, F64(new SpecVariantBackend("other-gelu",
            s => MapLayers(s, l => l is GeluSpec g && g.Name == instance ? g with { Approximation = runs } : l))));
        var f = Single(d, CauseIds.GeluApproximation, "other-gelu");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.Forward, instance);
        Assert.That(f.Evidence["fittedApproximation"], Is.EqualTo(fitted));
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.LeakyReluSlope));
    }

    private static ScenarioSpec DropoutNet => Scenario.Fixture("synthetic-dropout");

    // p read as the keep probability (TF1 keep_prob): the same harness mask, kept elements scaled by 1/p instead of 1/(1-p).
    private static ScenarioSpec KeepProbability(ScenarioSpec s) => MapLayers(s, l => l is DropoutSpec d ? d with { P = 1 - d.P } : l);

    [Test]
    public void P_read_as_the_keep_probability_is_named_at_step_ones_dropout_forward_output()
    {
        var d = Scenario.Diagnose(DropoutNet, Steps, F64(new SpecVariantBackend("keep-prob", KeepProbability)));
        var f = Single(d, CauseIds.DropoutKeepProbability, "keep-prob");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.Forward, "drop");
        Assert.That((f.Evidence["specP"], f.Evidence["specScale"], f.Evidence["keepProbabilityScale"]), Is.EqualTo((0.25, Fit.Round(1 / 0.75), 4.0)));
        Assert.That((double)f.Evidence["keptFraction"]!, Is.InRange(0.6, 0.9), "the harness's mask, which drops a quarter");
        Assert.That(d.Findings.Where(x => x.Cause == CauseIds.UnexplainedDivergence), Is.Empty, string.Join(" | ", d.Findings));
    }

    [Test]
    public void A_dropout_read_as_keep_probability_from_step_six_is_named_at_step_six()
    {
        var d = Scenario.Diagnose(DropoutNet, 10, F64(new ChangedMidRunBackend("keep-prob-later", ReferenceBackend.Float64(), KeepProbability, 6)));
        AssertAt(Single(d, CauseIds.DropoutKeepProbability, "keep-prob-later"), 6, RecordPhase.Train, TensorKind.Forward, "drop");
    }

    [TestCase(0.0, null, "none", Description = "the smoothing argument dropped")]
    [TestCase(0.2, 2, "binary", Description = "the sigmoid form y(1 - e) + e/2 on one-hot targets")]
    public void Another_label_smoothing_is_a_label_smoothing_form_at_step_one(double smoothing, int? spreadOver, string fitted)
    {
        var spec = Scenario.Fixture("synthetic-label-smoothing");
        var d = Scenario.Diagnose(spec, Steps, F64(new SpecVariantBackend("other-smoothing",
            s => s with { Loss = s.Loss with { LabelSmoothing = smoothing, SmoothingClasses = spreadOver } })));
        var f = Single(d, CauseIds.LabelSmoothingForm, "other-smoothing");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.OutputGradient, "l2");
        Assert.That(f.Evidence["fittedForm"], Is.EqualTo(fitted));
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.LossReduction));
    }

    [TestCase(LossReduction.Sum, "sum", 32)]
    [TestCase(LossReduction.SumOverOutputs, "sumOverOutputs", 4)]
    public void A_summed_mean_squared_error_is_a_loss_reduction_at_step_one(LossReduction reduction, string fitted, int factor)
    {
        var spec = Scenario.Fixture("synthetic-mse");
        var d = Scenario.Diagnose(spec, Steps, F64(new SpecVariantBackend("summed", s => s with { Loss = s.Loss with { Reduction = reduction } })));
        var f = Single(d, CauseIds.LossReduction, "summed");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.OutputGradient, "l2");
        Assert.That(f.Evidence["fittedReduction"], Is.EqualTo(fitted));
        Assert.That(f.Evidence["factor"], Is.EqualTo(factor), "8 samples x 4 outputs");
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.LabelSmoothingForm));
    }

    [Test]
    public void A_leaky_relu_slope_that_changes_at_step_six_is_named_at_step_six()
    {
        var changed = new ChangedMidRunBackend("slope-changes", ReferenceBackend.Float64(),
            s => MapLayers(s, l => l is LeakyReluSpec leaky ? leaky with { Slope = 0.3 } : l), 6);
        var d = Scenario.Diagnose(Activations, 10, F64(changed));
        AssertAt(Single(d, CauseIds.LeakyReluSlope, "slope-changes"), 6, RecordPhase.Train, TensorKind.Forward, "leaky");
        Assert.That(d.Findings.Where(x => x.Cause == CauseIds.UnexplainedDivergence), Is.Empty, string.Join(" | ", d.Findings));
    }

    [Test]
    public void A_clean_float32_run_of_the_activation_fixture_has_no_finding()
    {
        var d = Scenario.Diagnose(Activations, Steps, (ReferenceBackend.Float32(), DType.Float32));
        Assert.That(d.Notes, Is.Empty);
        Assert.That(d.Findings, Is.Empty, string.Join(" | ", d.Findings));
    }

    // Conventions that change mid-run, each with the cause it must be named as and where.
    private static readonly Dictionary<string, (Func<ScenarioSpec, ScenarioSpec> Change, string Cause, TensorKind Kind, string Site)> MidRun = new()
    {
        ["adam-epsilon-hat"] = (s => s with { Optimizer = ((AdamSpec)s.Optimizer) with { EpsilonForm = EpsilonForm.EpsilonHat, Eps = 1e-3 } },
            CauseIds.AdamEpsilonForm, TensorKind.Parameter, ""),
        ["momentum-one-minus-m"] = (s => SpecVariantBackend.MapBatchNorms(s, bn => bn with { Momentum = 1 - bn.Momentum }),
            CauseIds.BnMomentumConvention, TensorKind.RunningMean, "bn1"),
        ["biased-variance"] = (s => SpecVariantBackend.MapBatchNorms(s, bn => bn with { RunningVariance = RunningVarianceEstimator.Biased }),
            CauseIds.BnVarianceEstimator, TensorKind.RunningVariance, "bn1"),
        ["eps-times-ten"] = (s => SpecVariantBackend.MapBatchNorms(s, bn => bn with { Eps = bn.Eps * 10 }),
            CauseIds.BnEpsilon, TensorKind.Forward, "bn1"),
        ["stats-frozen"] = (s => SpecVariantBackend.MapBatchNorms(s, bn => bn with { Momentum = 0 }),
            CauseIds.RunningStatsNotUpdated, TensorKind.RunningMean, "bn1"),
    };

    [Test]
    public void A_convention_that_changes_at_step_six_is_named_at_step_six([Values("adam-epsilon-hat", "momentum-one-minus-m", "biased-variance", "eps-times-ten", "stats-frozen")] string bug)
    {
        const int from = 6;
        var (change, cause, kind, site) = MidRun[bug];
        // The spec's Adam eps is the variant's too where only the form changes, so the form alone differs.
        var spec = bug == "adam-epsilon-hat" ? MlpBn with { Optimizer = ((AdamSpec)MlpBn.Optimizer) with { Eps = 1e-3 } } : MlpBn;
        var d = Scenario.Diagnose(spec, 10, F64(new ChangedMidRunBackend(bug, ReferenceBackend.Float64(), change, from)));
        var f = Single(d, cause, bug);
        Assert.That(f.Location, Is.Not.Null);
        Assert.That((f.Location!.Step, f.Location.Phase, f.Location.Key.Kind), Is.EqualTo((from, RecordPhase.Train, kind)), f.ToString());
        if (site.Length > 0) Assert.That(f.Location.Key.Site, Is.EqualTo(site));
        Assert.That(d.Findings.Where(x => x.Cause == CauseIds.UnexplainedDivergence), Is.Empty, string.Join(" | ", d.Findings));
    }

    private static ScenarioSpec WeightDecayFixture => Scenario.Fixture("synthetic-weight-decay");

    private static ScenarioSpec WithDecay(ScenarioSpec spec, WeightDecaySpec? decay, OptimizerSpec? optimizer = null) =>
        spec with { Optimizer = (optimizer ?? spec.Optimizer) with { WeightDecay = decay } };

    private static readonly WeightDecaySpec CoupledAll = new(0.2, WeightDecayForm.Coupled, DecayedParameters.All);

    private static readonly WeightDecaySpec AdamWAll = new(0.2, WeightDecayForm.Decoupled, DecayedParameters.All, MultiplyByLearningRate: true);

    [Test]
    public void A_clean_float32_run_of_the_weight_decay_fixture_has_no_finding()
    {
        var d = Scenario.Diagnose(WeightDecayFixture, Steps, (ReferenceBackend.Float32(), DType.Float32));
        Assert.That(d.Notes, Is.Empty);
        Assert.That(d.Findings, Is.Empty, string.Join(" | ", d.Findings));
    }

    [TestCase("sgd", "momentum", true, Description = "PyTorch SGD weight_decay= written, Keras SGD weight_decay= run")]
    [TestCase("adam", "m", true, Description = "PyTorch Adam weight_decay= written, AdamW run")]
    [TestCase("sgd", "momentum", false, Description = "Keras SGD weight_decay= written, PyTorch SGD weight_decay= run")]
    [TestCase("adam", "m", false, Description = "AdamW written, PyTorch Adam weight_decay= run")]
    public void The_other_coupling_is_a_weight_decay_coupling_in_the_first_slot_after_step_one(string optimizer, string slot, bool specCoupled)
    {
        OptimizerSpec opt = optimizer == "sgd" ? new SgdSpec(0.05, 0.9) : new AdamSpec(0.01, 0.9, 0.999, 1e-8, EpsilonForm.SqrtVHat);
        var (written, run) = specCoupled ? (CoupledAll, AdamWAll) : (AdamWAll, CoupledAll);
        var d = Scenario.Diagnose(WithDecay(WeightDecayFixture, written, opt), Steps, F64(new SpecVariantBackend("other-coupling", s => WithDecay(s, run))));
        var f = Single(d, CauseIds.WeightDecayCoupling, "other-coupling");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.OptimizerSlot, "l1.weight/" + slot);
        Assert.That(f.Evidence["fittedForm"], Is.EqualTo(specCoupled ? "decoupled" : "coupled"));
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.DecoupledDecayLearningRate).And.None.EqualTo(CauseIds.L2FactorOfTwo));
    }

    [TestCase(true, Description = "AdamW or Keras written, TF1 contrib AdamW run")]
    [TestCase(false, Description = "TF1 contrib AdamW written, AdamW run")]
    public void A_decoupled_decay_taken_with_or_without_the_learning_rate_is_a_decoupled_decay_lr_after_step_one(bool written)
    {
        var adam = new AdamSpec(0.01, 0.9, 0.999, 1e-8, EpsilonForm.SqrtVHat);
        var spec = WithDecay(WeightDecayFixture, AdamWAll with { Rate = written ? 0.2 : 0.002, MultiplyByLearningRate = written }, adam);
        var d = Scenario.Diagnose(spec, Steps, F64(new SpecVariantBackend("other-lr",
            s => WithDecay(s, s.Optimizer.WeightDecay! with { MultiplyByLearningRate = !written }))));
        var f = Single(d, CauseIds.DecoupledDecayLearningRate, "other-lr");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.Parameter, "l1.weight");
        Assert.That((double)f.Evidence["fittedShrink"]!, Is.EqualTo(written ? 0.2 : 0.01 * 0.002).Within(1e-6));
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.WeightDecayCoupling));
    }

    [Test]
    public void A_keras_l2_coefficient_run_as_a_pytorch_weight_decay_is_an_l2_factor_of_two_in_the_loss_of_step_one()
    {
        var spec = WithDecay(WeightDecayFixture, new WeightDecaySpec(0.1, WeightDecayForm.L2Loss, DecayedParameters.Weights));
        var d = Scenario.Diagnose(spec, Steps, F64(new SpecVariantBackend("torch-port",
            s => WithDecay(s, new WeightDecaySpec(0.1, WeightDecayForm.Coupled, DecayedParameters.Weights)))));
        var f = Single(d, CauseIds.L2FactorOfTwo, "torch-port");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.Loss, "");
        Assert.That((double)f.Evidence["fittedLossCoefficient"]!, Is.EqualTo(0).Within(1e-9));
    }

    [Test]
    public void A_pytorch_weight_decay_run_as_a_keras_l2_coefficient_is_an_l2_factor_of_two_in_the_loss_of_step_one()
    {
        var spec = WithDecay(WeightDecayFixture, CoupledAll);
        var d = Scenario.Diagnose(spec, Steps, F64(new SpecVariantBackend("keras-port",
            s => WithDecay(s, new WeightDecaySpec(0.2, WeightDecayForm.L2Loss, DecayedParameters.All)))));
        var f = Single(d, CauseIds.L2FactorOfTwo, "keras-port");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.Loss, "");
        Assert.That((double)f.Evidence["fittedLossCoefficient"]!, Is.EqualTo(0.2).Within(1e-9));
        Assert.That((double)f.Evidence["fittedGradientRate"]!, Is.EqualTo(0.4).Within(1e-9));
    }

    [Test]
    public void Running_statistics_that_never_move_are_running_stats_not_updated()
    {
        var d = Scenario.Diagnose(MlpBn, Steps, F64(new SpecVariantBackend("no-update-ops", s => SpecVariantBackend.MapBatchNorms(s, bn => bn with { Momentum = 0 }))));
        var f = Single(d, CauseIds.RunningStatsNotUpdated, "no-update-ops");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.RunningMean, "bn1");
        Assert.That(f.Evidence["stepsChecked"], Is.EqualTo(Steps));
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.BnMomentumConvention));
    }

    [Test]
    public void Momentum_0_001_over_a_short_run_is_a_slow_running_stats_warmup_on_the_reference()
    {
        var spec = SpecVariantBackend.MapBatchNorms(MlpBn, bn => bn with { Momentum = 0.001 }) with { Schedule = new ScheduleSpec(30, null, 10) };
        var d = Scenario.Diagnose(spec, 30, (ReferenceBackend.Float32(), DType.Float32));
        var f = Single(d, CauseIds.SlowRunningStatsWarmup, ReferenceBackend.Float64Name);
        Assert.That(f.Location!.Phase, Is.EqualTo(RecordPhase.Eval));
        Assert.That(f.Location.Key.Kind, Is.EqualTo(TensorKind.EvalAccuracy));
        Assert.That((double)f.Evidence["trainAccuracy"]! - (double)f.Evidence["evalAccuracy"]!, Is.GreaterThan(0.1));
        Assert.That(d.Findings.Where(x => x.Cause == CauseIds.UnexplainedDivergence), Is.Empty);
    }

    [Test]
    public void Eval_outputs_normalized_with_batch_statistics_are_a_train_eval_mode()
    {
        var spec = SpecVariantBackend.MapBatchNorms(MlpBn, bn => bn with { Affine = false });
        var leaky = new RewritingBackend("forgot-eval", (plan, r) => r.Phase != RecordPhase.Eval ? r
            : RewritingBackend.RenormalizeBatchNorm(plan, r, TensorKind.EvalOutput, (x, bn) => RewritingBackend.Normalize(x, bn.Eps, epsOutside: false)));
        var d = Scenario.Diagnose(spec, Steps, F64(leaky));
        var f = Single(d, CauseIds.TrainEvalMode, "forgot-eval");
        AssertAt(f, Steps, RecordPhase.Eval, TensorKind.EvalOutput, "bn1");
        Assert.That(f.Evidence["statisticsUsed"], Is.EqualTo("batch"));
    }

    [Test]
    public void One_batchnorm_at_two_call_sites_is_a_shared_stateful_layer_on_every_backend_even_when_they_agree()
    {
        var d = Scenario.Diagnose(Scenario.Fixture("synthetic-shared-bn"), 10, (ReferenceBackend.Float32(), DType.Float32));
        foreach (string backend in new[] { ReferenceBackend.Float64Name, ReferenceBackend.Float32Name })
        {
            var f = Single(d, CauseIds.SharedStatefulLayer, backend);
            AssertAt(f, 1, RecordPhase.Train, TensorKind.RunningMean, "bn");
            Assert.That(f.Evidence["updatesPerStep"], Is.EqualTo("2 per step"));
            Assert.That(f.Evidence, Contains.Key("accuracyGapTrainMinusEval"));
        }
        Assert.That(d.Findings.Select(f => f.Cause), Is.All.EqualTo(CauseIds.SharedStatefulLayer));
    }

    [Test]
    public void Another_init_seed_is_an_initial_weights_mismatch_at_step_zero()
    {
        var d = Scenario.Diagnose(MlpBn, Steps, F64(new SpecVariantBackend("other-stream", s => s with { Init = s.Init with { Seed = s.Init.Seed + 1 } })));
        var f = Single(d, CauseIds.InitialWeightsMismatch, "other-stream");
        AssertAt(f, 0, RecordPhase.Initial, TensorKind.Parameter, "l1.weight");
        Assert.That(d.Findings.Where(x => x.Cause == CauseIds.UnexplainedDivergence), Is.Empty);
    }

    [Test]
    public void A_square_weight_traced_transposed_is_a_weight_layout_and_not_an_initial_weights_mismatch()
    {
        // A square kernel keeps its shape when laid out [in, out], so only its values tell (a non-square one is refused
        // when recorded, with its shape named as the transpose).
        var keras = new RewritingBackend("kernel-layout", (plan, r) => RewritingBackend.Map(r, e =>
            e.Key == new TensorKey(TensorKind.Parameter, "l2.weight") ? e.Value.Transpose2D() : e.Value));
        var d = Scenario.Diagnose(MlpBn, Steps, F64(keras));
        var f = Single(d, CauseIds.WeightLayout, "kernel-layout");
        AssertAt(f, 0, RecordPhase.Initial, TensorKind.Parameter, "l2.weight");
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.InitialWeightsMismatch));
    }

    [Test]
    public void A_square_weight_multiplied_transposed_but_traced_right_is_a_weight_layout_at_its_forward_output()
    {
        var d = Scenario.Diagnose(MlpBn, Steps, F64(new TransposedKernelBackend("kernel-read-as-weight", "l2.weight")));
        var f = Single(d, CauseIds.WeightLayout, "kernel-read-as-weight");
        AssertAt(f, 1, RecordPhase.Train, TensorKind.Forward, "l2");
        Assert.That(f.Summary, Does.Contain("x W"));
        Assert.That(d.Findings.Select(x => x.Cause), Has.None.EqualTo(CauseIds.UnexplainedDivergence));
    }

    [Test]
    public void A_non_square_weight_traced_transposed_fails_the_run_with_its_shape_named_as_the_transpose()
    {
        var keras = new RewritingBackend("kernel-layout", (plan, r) => RewritingBackend.Map(r, e =>
            e.Key == new TensorKey(TensorKind.Parameter, "l1.weight") ? e.Value.Transpose2D() : e.Value));
        var plan = Planning.Planner.Build(MlpBn, Steps);
        string traces = Directory.CreateTempSubdirectory("parity-layout-").FullName;
        try
        {
            var run = Running.ScenarioRunner.Run(plan, keras, new BackendOptions(DType.Float64), traces);
            Assert.That(run.Status, Is.EqualTo(RunStatus.Failed));
            Assert.That(run.Message, Does.Contain("parameter:l1.weight has shape [20,32]; expected [32,20] (its transpose: a weight laid out [in, out]"));
        }
        finally
        {
            Directory.Delete(traces, recursive: true);
        }
    }

    [Test]
    public void A_shared_batchnorm_updated_once_per_step_where_the_reference_updates_per_call_explains_the_divergence()
    {
        var d = Scenario.Diagnose(Scenario.Fixture("synthetic-shared-bn"), Steps, F64(new OncePerStepBackend("once-per-step", "bn")));
        var f = Single(d, CauseIds.SharedStatefulLayer, "once-per-step");
        Assert.That(f.IsModelProperty, Is.False, "the backend's own difference, not the model's");
        Assert.That(f.Summary, Does.Contain("the reference updates it 2 per step"));
        AssertAt(f, 1, RecordPhase.Train, TensorKind.RunningMean, "bn");
        Assert.That(Single(d, CauseIds.SharedStatefulLayer, ReferenceBackend.Float64Name).IsModelProperty, Is.True);
        Assert.That(d.Findings.Where(x => x.Cause == CauseIds.UnexplainedDivergence), Is.Empty, string.Join(" | ", d.Findings));
    }

    [Test]
    public void A_nan_produced_at_step_three_is_a_nan_inf_there()
    {
        var nan = new RewritingBackend("nan-maker", (plan, r) => RewritingBackend.Map(r, e =>
        {
            if (r.Step != 3 || r.Phase != RecordPhase.Train || e.Key != new TensorKey(TensorKind.Forward, "l2")) return e.Value;
            var data = (double[])e.Value.Data.Clone();
            data[5] = double.NaN;
            return new Tensor(e.Value.Shape, data, e.Value.DType);
        }));
        var d = Scenario.Diagnose(MlpBn, Steps, F64(nan));
        var f = Single(d, CauseIds.NanInf, "nan-maker");
        AssertAt(f, 3, RecordPhase.Train, TensorKind.Forward, "l2");
        Assert.That(f.Evidence["firstIndex"], Is.EqualTo(5));
        Assert.That(d.Findings.Where(x => x.Cause == CauseIds.UnexplainedDivergence), Is.Empty);
    }

    [Test]
    public void A_difference_no_detector_explains_is_an_unexplained_divergence_at_the_origin()
    {
        var nudged = new RewritingBackend("nudged", (plan, r) => RewritingBackend.Map(r, e =>
        {
            if (r.Step != 3 || r.Phase != RecordPhase.Train || e.Key != new TensorKey(TensorKind.Parameter, "l2.weight")) return e.Value;
            var data = (double[])e.Value.Data.Clone();
            data[0] += 1e-2;
            return new Tensor(e.Value.Shape, data, e.Value.DType);
        }));
        var d = Scenario.Diagnose(MlpBn, Steps, F64(nudged));
        var f = Single(d, CauseIds.UnexplainedDivergence, "nudged");
        AssertAt(f, 3, RecordPhase.Train, TensorKind.Parameter, "l2.weight");
        Assert.That(d.Findings, Has.Count.EqualTo(1), string.Join(" | ", d.Findings));
    }

    [Test]
    public void A_detector_that_throws_becomes_a_note_and_the_others_still_run()
    {
        var spec = SpecVariantBackend.MapBatchNorms(MlpBn, bn => bn with { Momentum = 0 });
        var context = new DiagnosisContext(spec, new Models.ModelGraph(spec.Model), "reference", [], []);
        var d = Diagnoser.Run(context, [new ThrowingDetector(), new Detectors.NanInfDetector()]);
        Assert.That(d.Notes.Single().Cause, Is.EqualTo("throws"));
        Assert.That(d.Notes.Single().Message, Does.Contain("broken on purpose"));
        Assert.That(d.Findings, Is.Empty);
    }

    [Test]
    public void Every_cause_id_has_one_detector_and_a_section_in_docs_causes()
    {
        Assert.That(Diagnoser.Detectors.Select(d => d.Cause), Is.EqualTo(CauseIds.All));
        string doc = File.ReadAllText(Path.Combine(Harness.RepoPaths.Root, "docs", "causes.md"));
        foreach (string cause in CauseIds.All) Assert.That(doc, Does.Contain($"## `{cause}`"), cause);
    }

    private sealed class ThrowingDetector : IDetector
    {
        public string Cause => "throws";

        public IEnumerable<Finding> Detect(DiagnosisContext context) => throw new InvalidOperationException("broken on purpose");
    }
}
