using Parity.Backends.PythonNet;
using Parity.Backends.Reference;
using Parity.Backends.Workers.Protocol;
using Parity.Comparison;
using Parity.Harness;
using Parity.Harness.StepChecks;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.Workers.Tests;

/// <summary>
/// One test body for every built-in worker: handshake, build, captures, eval, read_state, the optimizer state of
/// protocol 2, agreement with the float64 reference judged by the harness's own comparison as `parity run` judges it (step
/// checks: every step replayed by the float64 reference from the worker's own state under the default TolerancePolicy,
/// float32 replays as the noise; the optimizer slots are compared like every tensor), declared mismatches and their spec
/// values. The 20-step
/// run is shared by the tests of a worker (TF.js start-up takes seconds). The in-process torch-pythonnet backend runs the
/// torch-python worker's adapter without the protocol and is held to the same suite.
/// </summary>
[TestFixtureSource(nameof(Workers))]
public class WorkerConformanceTests(string workerName)
{
    private const int Steps = 20;

    // Expected declarations for synthetic-mlp-bn (unbiased running variance, sqrtVHat Adam, betas in float64):
    // TF.js always stores the biased variance and bias-corrects with float32 powers of beta; PyTorch matches the
    // canonical conventions.
    private static readonly Dictionary<string, string[]> ExpectedMismatches = new()
    {
        ["keras"] = ["model.layers[bn1].runningVariance", "model.layers[bn2].runningVariance", "optimizer.betaPrecision"],
        ["torch-python"] = [],
        [PythonAdapterBackend.TorchPythonNetName] = [],
    };

    private static readonly Dictionary<string, string[]> ExpectedFlippedMismatches = new()
    {
        ["keras"] = ["optimizer.epsilonForm"],
        ["torch-python"] = ["model.layers[bn1].runningVariance", "model.layers[bn2].runningVariance", "optimizer.epsilonForm", "optimizer.betaPrecision"],
        [PythonAdapterBackend.TorchPythonNetName] = ["model.layers[bn1].runningVariance", "model.layers[bn2].runningVariance", "optimizer.epsilonForm", "optimizer.betaPrecision"],
    };

    // What each framework computes instead, as the canonical spec value ("value" in the build answer).
    private static readonly Dictionary<string, string> ExpectedValues = new()
    {
        ["keras:runningVariance"] = "biased",
        ["keras:epsilonForm"] = "sqrtVHat",
        ["keras:betaPrecision"] = "float32",
        ["torch-python:betaPrecision"] = "float64",
        ["torch-python:runningVariance"] = "unbiased",
        ["torch-python:epsilonForm"] = "sqrtVHat",
        ["torch-pythonnet:betaPrecision"] = "float64",
        ["torch-pythonnet:runningVariance"] = "unbiased",
        ["torch-pythonnet:epsilonForm"] = "sqrtVHat",
    };

    private readonly Plan _plan = Planner.Build(SpecLoader.LoadFile(TestPaths.Fixture("synthetic-mlp-bn.json")), Steps);
    private IBackend _backend = null!;
    private BackendDescription _description = null!;
    private IReadOnlyList<ConventionMismatch> _mismatches = [];
    private List<StepRecord> _worker = [];
    private List<StepRecord> _reference64 = [];
    private List<StepRecord> _reference32 = [];
    private List<StepRecord> _permuted32 = [];
    private IReadOnlyList<(double StepMs, double ComputeMs)> _timings = [];

    public static IEnumerable<string> Workers => WorkerRegistry.BuiltIns().Select(b => b.Name).Append(PythonAdapterBackend.TorchPythonNetName);

    private bool InProcess => workerName == PythonAdapterBackend.TorchPythonNetName;

    private IBackend NewBackend() => InProcess ? PythonAdapterBackend.TorchPythonNet() : WorkerRegistry.BuiltIns().Single(b => b.Name == workerName).Factory();

    [OneTimeSetUp]
    public void RunTheWorkerAndTheReference()
    {
        _backend = NewBackend();
        _description = _backend.Describe();
        if (!_description.Available) Assert.Ignore($"{workerName} cannot run here: {_description.Reason}");
        using (var session = _backend.Open(_plan, new BackendOptions(DType.Float32)))
        {
            _mismatches = session.Mismatches;
            _worker = RunAll(session);
            _timings = session is WorkerSession worker
                ? [.. worker.Timings.Select(t => (t.RoundTripMs, t.ComputeMs))]
                : [.. ((PythonAdapterSession)session).Timings.Select(t => (t.StepMs, t.AdapterMs))];
        }
        using (var r64 = ReferenceBackend.Float64().Open(_plan, new BackendOptions(DType.Float64))) _reference64 = RunAll(r64);
        using (var r32 = ReferenceBackend.Float32().Open(_plan, new BackendOptions(DType.Float32))) _reference32 = RunAll(r32);
        using (var p32 = NoiseEnvelope.Create(NoiseEnvelope.PermutedFloat32Reference).Open(_plan, new BackendOptions(DType.Float32))) _permuted32 = RunAll(p32);
    }

    private List<StepRecord> RunAll(IBackendSession session) => RunAll(session, _plan);

    private static List<StepRecord> RunAll(IBackendSession session, Plan plan)
    {
        var records = new List<StepRecord> { session.ReadState(0) };
        for (int step = 1; step <= plan.TotalSteps; step++)
        {
            records.Add(session.Step(step, plan.BatchFor(step), CaptureRequest.Everything));
            if (plan.IsEvalStep(step)) records.Add(session.Evaluate(step, plan.EvalBatch(), CaptureRequest.Everything));
        }
        return records;
    }

    [Test]
    public void The_handshake_states_framework_versions_and_capabilities()
    {
        Assert.That(_description.Available, Is.True);
        Assert.That(_description.Versions, Is.Not.Empty);
        Assert.That(_description.Capabilities.DTypes, Does.Contain(DType.Float32));
        Assert.That(_description.Capabilities.Devices, Does.Contain("cpu"));
        Assert.That(_description.Capabilities.FrameworkInit, Is.True);
        Assert.That(_description.Capabilities.OptimizerState, Is.True, "every built-in worker speaks protocol 2");
        Assert.That(_description.Reason, Does.Contain(InProcess ? "in process" : "worker"));
    }

    [Test]
    public void Build_declares_exactly_the_conventions_the_framework_cannot_express()
    {
        Assert.That(_mismatches.Select(m => m.Setting), Is.EquivalentTo(ExpectedMismatches[workerName]));
        foreach (var m in _mismatches)
        {
            Assert.That(m.Affects, m.Setting.EndsWith("betaPrecision", StringComparison.Ordinal)
                ? Does.Contain("optimizerSlot").And.Contain("parameter")
                : Does.Contain("runningVariance").And.Contain("evalOutput"));
            AssertValue(m);
        }
    }

    private void AssertValue(ConventionMismatch m) =>
        Assert.That(m.Value?.GetValue<string>(), Is.EqualTo(ExpectedValues[$"{workerName}:{m.Setting[(m.Setting.LastIndexOf('.') + 1)..]}"]), m.Setting);

    [Test]
    public void A_spec_with_the_other_conventions_gets_the_other_declarations()
    {
        var spec = _plan.Spec with
        {
            Model = _plan.Spec.Model with
            {
                Layers = [.. _plan.Spec.Model.Layers.Select(l => l is BatchNormSpec bn ? bn with { RunningVariance = RunningVarianceEstimator.Biased } : l)],
            },
            Optimizer = ((AdamSpec)_plan.Spec.Optimizer) with { EpsilonForm = EpsilonForm.EpsilonHat, BetaPrecision = BetaPrecision.Float32 },
        };
        using var session = NewBackend().Open(Planner.Build(spec, 1), new BackendOptions(DType.Float32));
        Assert.That(session.Mismatches.Select(m => m.Setting), Is.EquivalentTo(ExpectedFlippedMismatches[workerName]));
        foreach (var m in session.Mismatches) AssertValue(m);
    }

    [Test]
    public void Read_state_returns_the_injected_initial_state_bit_for_bit_and_no_update_yet()
    {
        var initial = _worker[0];
        Assert.That(initial.Phase, Is.EqualTo(RecordPhase.Initial));
        Assert.That(initial.Entries.Select(e => e.Key), Is.EqualTo(TraceLayout.Of(_plan).StateKeys));
        foreach (var e in _plan.InitialState.Entries)
            Assert.That(initial.Find(e.Key.Kind, e.Key.Site)!.Data, Is.EqualTo(e.Value.Data), e.Key.ToString());
        var optimizer = initial.Entries.Where(e => e.Key.Kind.IsOptimizerState());
        Assert.That(optimizer.SelectMany(e => e.Value.Data), Is.All.EqualTo(0.0), "no update done: count 0, every slot zero");
    }

    [Test]
    public void Every_step_answer_holds_the_update_count_and_every_optimizer_slot()
    {
        var layout = TraceLayout.Of(_plan);
        var slots = layout.KeysOf(TensorKind.OptimizerSlot);
        Assert.That(slots, Has.Count.EqualTo(2 * _plan.Graph.Parameters.Count), "Adam: m and v of every parameter");
        foreach (var record in _worker.Where(r => r.Phase == RecordPhase.Train))
        {
            Assert.That(layout.HoldsState(record), Is.True, $"step {record.Step}");
            Assert.That(record.Find(TensorKind.OptimizerStep)!.Data, Is.EqualTo(new[] { (double)record.Step }), $"step {record.Step}");
        }
    }

    [Test]
    public void Every_record_holds_every_captured_tensor_in_the_reference_shapes()
    {
        Assert.That(_worker.Select(r => (r.Step, r.Phase)), Is.EqualTo(_reference64.Select(r => (r.Step, r.Phase))));
        foreach (var (mine, reference) in _worker.Zip(_reference64))
        {
            Assert.That(mine.Entries.Select(e => e.Key), Is.EquivalentTo(reference.Entries.Select(e => e.Key)), $"step {mine.Step} {mine.Phase}");
            foreach (var e in mine.Entries)
            {
                Assert.That(e.Value.Shape, Is.EqualTo(reference.Find(e.Key.Kind, e.Key.Site)!.Shape), $"{e.Key} at step {mine.Step}");
                Assert.That(e.Value.DType, Is.EqualTo(DType.Float32));
            }
        }
    }

    [Test]
    public void Every_step_agrees_with_the_float64_reference_replaying_it_within_float32_rounding()
    {
        var result = StepCheck(_plan, _worker, _mismatches);
        TestContext.Out.WriteLine($"{workerName}: {result.TensorsCompared} tensors compared, {result.TensorsFailed} failed");
        AssertAgrees(result);
        Assert.That(result.TensorsCompared, Is.GreaterThan(500));
        Assert.That(result.Checks.Count(c => c.Key.Kind == TensorKind.OptimizerSlot && c.Status == CheckStatus.Checked), Is.GreaterThanOrEqualTo(Steps),
            "the optimizer slots are judged like every tensor");
    }

    [Test]
    public void The_envelope_check_catches_a_one_step_lag()
    {
        // Negative control: the worker's parameters after step k presented as step k-1 must diverge from the reference's
        // step k-1, or the agreement test above could not fail.
        var lagged = _worker.Where(r => r.Phase == RecordPhase.Train && r.Step > 1).Select(r =>
        {
            var shifted = new StepRecord(r.Step - 1, RecordPhase.Train);
            foreach (var e in r.Entries.Where(e => e.Key.Kind == TensorKind.Parameter)) shifted.Add(e.Key.Kind, e.Key.Site, e.Value);
            return shifted;
        }).ToList();
        static List<StepRecord> Parameters(IEnumerable<StepRecord> records) => records.Where(r => r.Phase == RecordPhase.Train && r.Step < Steps).Select(r =>
        {
            var only = new StepRecord(r.Step, r.Phase);
            foreach (var e in r.Entries.Where(e => e.Key.Kind == TensorKind.Parameter)) only.Add(e.Key.Kind, e.Key.Site, e.Value);
            return only;
        }).ToList();
        var result = Compare(_plan, lagged, Parameters(_reference64), [Parameters(_reference32), Parameters(_permuted32)], []);
        var identifiable = result.Checks.Where(c => c.Status != CheckStatus.NotIdentifiable).ToList();
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Diverge));
        Assert.That(identifiable.Count(c => !c.Passed), Is.GreaterThan(identifiable.Count / 2), $"{identifiable.Count(c => !c.Passed)} of {identifiable.Count}");
    }

    [TestCase("synthetic-shared-bn.json", 10)]
    [TestCase("synthetic-layernorm-sgd.json", 10)]
    [TestCase("synthetic-activations.json", 10)]
    [TestCase("synthetic-adagrad.json", 5)]
    [TestCase("synthetic-weight-decay.json", 5)]
    [TestCase("synthetic-schedule-clip.json", 6)]
    [TestCase("synthetic-dropout.json", 6)]
    [TestCase("synthetic-mse.json", 6)]
    [TestCase("synthetic-bce.json", 6)]
    [TestCase("synthetic-label-smoothing.json", 6)]
    [TestCase("synthetic-everything.json", 6)]
    [TestCase("seed000-shared-bn.json", 20, Category = "FashionMnist", Explicit = true, Reason = "Fashion-MNIST 784-100-100-10 batch 1000: slow")]
    public void Agrees_with_the_reference_on_a_shared_batchnorm_on_layernorm_with_sgd_and_on_every_activation(string fixture, int steps)
    {
        var plan = Planner.Build(SpecLoader.LoadFile(TestPaths.Fixture(fixture)), steps);
        using var mine = NewBackend().Open(plan, new BackendOptions(DType.Float32));
        var result = StepCheck(plan, RunAll(mine, plan), mine.Mismatches);
        TestContext.Out.WriteLine($"{workerName} on {fixture}: {result.TensorsCompared} tensors compared, declared {string.Join("; ", mine.Mismatches.Select(m => m.Setting))}");
        AssertAgrees(result);
        Assert.That(result.TensorsCompared, Is.GreaterThan(steps * 10), "every step compares its forward outputs, gradients and state");
    }

    /// <summary>The forms the fixture (decoupled on every parameter) does not run: coupled and the L2 loss term, on the weights only.</summary>
    [TestCase(WeightDecayForm.Coupled)]
    [TestCase(WeightDecayForm.L2Loss)]
    public void Agrees_with_the_reference_under_coupled_and_l2_loss_weight_decay_on_the_weights(WeightDecayForm form)
    {
        var fixture = SpecLoader.LoadFile(TestPaths.Fixture("synthetic-weight-decay.json"));
        var spec = fixture with { Optimizer = fixture.Optimizer with { WeightDecay = new WeightDecaySpec(0.1, form, DecayedParameters.Weights) } };
        var plan = Planner.Build(spec, 4);
        using var mine = NewBackend().Open(plan, new BackendOptions(DType.Float32));
        AssertAgrees(StepCheck(plan, RunAll(mine, plan), mine.Mismatches));
    }

    /// <summary>The Keras momentum form under a rate that halves every 3 updates, with clipping per tensor without eps (torch ops, not clip_grad_norm_): each worker's own mapping, step-checked.</summary>
    [Test]
    public void The_keras_momentum_form_under_a_changing_rate_and_per_tensor_clipping_are_step_checked()
    {
        var fixture = SpecLoader.LoadFile(TestPaths.Fixture("synthetic-schedule-clip.json"));
        var sgd = (SgdSpec)fixture.Optimizer;
        var spec = fixture with
        {
            Optimizer = sgd with { MomentumForm = MomentumForm.Keras, Schedule = new StepSchedule(3, 0.5), Clipping = new GradientClipping(ClipScope.PerTensorNorm, 0.5, 0) },
        };
        var plan = Planner.Build(spec, 7);
        using var session = NewBackend().Open(plan, new BackendOptions(DType.Float32));
        Assert.That(session.Mismatches, Is.Empty);
        AssertAgrees(StepCheck(plan, RunAll(session, plan), session.Mismatches));
    }

    /// <summary>Adam under a cosine schedule and clipping by value: the rate each update runs at is the worker's own (TF.js's Adam reads its learningRate, torch's LambdaLR).</summary>
    [Test]
    public void Adam_under_a_schedule_and_clipping_is_step_checked()
    {
        var fixture = SpecLoader.LoadFile(TestPaths.Fixture("synthetic-schedule-clip.json"));
        var spec = fixture with
        {
            Optimizer = new AdamSpec(0.01, 0.9, 0.999, 1e-7, EpsilonForm.SqrtVHat, workerName == "keras" ? BetaPrecision.Float32 : BetaPrecision.Float64)
            {
                Schedule = new CosineSchedule(4, 0.001),
                Clipping = new GradientClipping(ClipScope.Value, 0.05, 0),
            },
        };
        var plan = Planner.Build(spec, 5);
        using var session = NewBackend().Open(plan, new BackendOptions(DType.Float32));
        Assert.That(session.Mismatches, Is.Empty);
        AssertAgrees(StepCheck(plan, RunAll(session, plan), session.Mismatches));
    }

    [Test]
    public void An_elu_alpha_other_than_1_is_declared_where_the_framework_lacks_it_and_step_checked_under_what_it_runs()
    {
        var fixture = SpecLoader.LoadFile(TestPaths.Fixture("synthetic-activations.json"));
        var spec = fixture with { Model = fixture.Model with { Layers = [.. fixture.Model.Layers.Select(l => l is EluSpec elu ? elu with { Alpha = 0.5 } : l)] } };
        var plan = Planner.Build(spec, 5);
        using var session = NewBackend().Open(plan, new BackendOptions(DType.Float32));
        var declared = session.Mismatches.Where(m => m.Setting.EndsWith(".alpha", StringComparison.Ordinal)).ToList();
        // The TF.js ELU layer implements only alpha = 1; PyTorch's nn.ELU takes any alpha.
        if (workerName == "keras")
        {
            Assert.That(declared.Select(m => m.Setting), Is.EqualTo(new[] { "model.layers[elu].alpha" }));
            Assert.That(declared[0].Value!.GetValue<double>(), Is.EqualTo(1.0));
        }
        else
        {
            Assert.That(declared, Is.Empty);
        }
        AssertAgrees(StepCheck(plan, RunAll(session, plan), session.Mismatches));
    }

    [Test]
    public void Framework_dropout_masks_are_the_frameworks_own_draw_declared_and_step_checked_with_the_recorded_mask()
    {
        var fixture = SpecLoader.LoadFile(TestPaths.Fixture("synthetic-dropout.json"));
        var spec = fixture with { Model = fixture.Model with { Layers = [.. fixture.Model.Layers.Select(l => l is DropoutSpec d ? d with { Masks = DropoutMasks.Framework } : l)] } };
        var plan = Planner.Build(spec, 3);
        using var session = NewBackend().Open(plan, new BackendOptions(DType.Float32));
        Assert.That(session.Mismatches.Where(m => m.Setting.EndsWith(".masks", StringComparison.Ordinal)).Select(m => (m.Setting, m.Value!.GetValue<string>())),
            Is.EqualTo(new[] { ("model.layers[drop].masks", "framework") }));
        var records = RunAll(session, plan);
        var mask = records.First(r => r.Step == 1 && r.Phase == RecordPhase.Train).Find(TensorKind.DropoutMask, "drop")!.Data;
        Assert.That(mask, Is.All.EqualTo(0.0).Or.EqualTo(1.0));
        Assert.That(mask, Is.Not.EqualTo(plan.BatchFor(1).DropoutMask("drop").Data).AsCollection, "the framework's own draw, not the harness's");
        // The step checks replay each step with the mask the worker recorded: the math after the mask is judged strictly.
        AssertAgrees(StepCheck(plan, records, session.Mismatches));
        // Against the reference's free-running trajectory (the harness's masks) it differs, and only as declared.
        List<StepRecord> reference64, reference32;
        using (var r64 = ReferenceBackend.Float64().Open(plan, new BackendOptions(DType.Float64))) reference64 = RunAll(r64, plan);
        using (var r32 = ReferenceBackend.Float32().Open(plan, new BackendOptions(DType.Float32))) reference32 = RunAll(r32, plan);
        var trajectory = Compare(plan, records, reference64, [reference32], session.Mismatches);
        Assert.That(trajectory.Checks.Count(c => c.Key.Kind == TensorKind.DropoutMask && c.Status == CheckStatus.ExplainedByMismatch), Is.EqualTo(3));
        AssertAgrees(trajectory);
    }

    /// <summary>
    /// TensorFlow's settings: TF1's RMSprop (eps inside the square root, mean square from ones; TF.js runs it through
    /// Parity's update in TF.js ops), Keras's RMSprop (eps 1e-7 inside, no momentum, not centered; tf.train.rmsprop) and TF.js's Adagrad (the backend eps 1e-7 inside; tf.train.adagrad). PyTorch declares what
    /// torch.optim cannot express. Each is step-checked under what it declares.
    /// </summary>
    [TestCase("tf1-rmsprop", new[] { "optimizer.epsilonPlacement", "optimizer.meanSquareInit" })]
    [TestCase("keras-rmsprop", new[] { "optimizer.epsilonPlacement" })]
    [TestCase("tfjs-adagrad", new[] { "optimizer.epsilonPlacement" })]
    public void Tensorflow_rmsprop_and_adagrad_settings_are_declared_where_the_framework_lacks_them_and_step_checked_under_what_it_runs(string variant, string[] torchDeclares)
    {
        var rmsprop = SpecLoader.LoadFile(TestPaths.Fixture("synthetic-rmsprop.json"));
        var adagrad = SpecLoader.LoadFile(TestPaths.Fixture("synthetic-adagrad.json"));
        var spec = variant switch
        {
            "tf1-rmsprop" => rmsprop with { Optimizer = (RmspropSpec)rmsprop.Optimizer with { Eps = 1e-3, EpsilonPlacement = EpsilonPlacement.Inside, MeanSquareInit = 1 } },
            "keras-rmsprop" => rmsprop with { Optimizer = (RmspropSpec)rmsprop.Optimizer with { Eps = 1e-7, EpsilonPlacement = EpsilonPlacement.Inside, Momentum = 0, Centered = false } },
            _ => adagrad with { Optimizer = (AdagradSpec)adagrad.Optimizer with { Eps = 1e-7, EpsilonPlacement = EpsilonPlacement.Inside } },
        };
        var plan = Planner.Build(spec, 5);
        using var session = NewBackend().Open(plan, new BackendOptions(DType.Float32));
        Assert.That(session.Mismatches.Select(m => m.Setting), Is.EquivalentTo(workerName == "keras" ? [] : torchDeclares));
        AssertAgrees(StepCheck(plan, RunAll(session, plan), session.Mismatches));
    }

    /// <summary>
    /// The worker's records step-checked as `parity run` checks them: every step replayed by the float64 reference from the
    /// worker's own state (under the conventions it declared with a value), with float32 replays as the noise.
    /// </summary>
    private static ComparisonResult StepCheck(Plan plan, IReadOnlyList<StepRecord> worker, IReadOnlyList<ConventionMismatch> mismatches)
    {
        using var replay = StepReplay.Open(plan, "worker", DType.Float32, mismatches);
        var result = TraceComparer.Judge(replay.Align(worker), new ComparedTraces("reference replay", "worker", null, "float32 replays"),
            TraceLayout.Of(plan), TolerancePolicy.Create(plan.Spec.Tolerances), [.. replay.NotReplayed.Select(n => n.Mismatch)], ComparisonMode.StepCheck);
        Assert.That(replay.StepsReplayed, Is.EqualTo(plan.TotalSteps), "every step is replayed from the worker's own state");
        Assert.That(replay.NotReplayed, Is.Empty, "every declared convention carries a value the replay takes on");
        return result;
    }

    /// <summary>The worker's records against the float64 reference's free-running trajectory.</summary>
    private static ComparisonResult Compare(Plan plan, IReadOnlyList<StepRecord> worker, IReadOnlyList<StepRecord> reference64,
        IReadOnlyList<IReadOnlyList<StepRecord>> envelopes, IReadOnlyList<ConventionMismatch> mismatches)
    {
        static ITrace Trace(string backend, string dtype, IReadOnlyList<StepRecord> records) => new RecordedTrace(
            new TraceHeader { Backend = backend, DType = dtype, Scenario = "conformance", SpecHash = "", Status = RunStatus.Completed }, records);
        return TraceComparer.Compare(Trace(ReferenceBackend.Float64Name, "float64", reference64), Trace("worker", "float32", worker), TraceLayout.Of(plan),
            TolerancePolicy.Create(plan.Spec.Tolerances), [.. envelopes.Select((e, i) => Trace(NoiseEnvelope.EnvelopesOf("worker")[i], "float32", e))], mismatches);
    }

    /// <summary>No failure but those the worker's declared convention mismatches explain (TF.js's biased running variance).</summary>
    private static void AssertAgrees(ComparisonResult result)
    {
        var unexplained = result.Checks.Where(c => c.CountsAsFailure && c.Status != CheckStatus.ExplainedByMismatch).ToList();
        Assert.That(result.Verdict, Is.Not.EqualTo(Verdict.Error), result.Message);
        Assert.That(unexplained, Is.Empty, () => $"{result.Message}; first divergence {result.FirstDivergence?.Origin.At}; failing: "
            + string.Join("\n", unexplained.Take(20).Select(c => $"{c.At} score {c.Score:G3} (allowed {c.Allowed:E2}) {c.Note}")));
    }

    [Test]
    public void Declared_running_variance_mismatches_are_the_biased_estimator()
    {
        var declared = _mismatches.Where(m => m.Setting.EndsWith(".runningVariance", StringComparison.Ordinal)).ToList();
        var bn = _plan.Graph.BatchNorms[0];
        var mine = _worker[1].Find(TensorKind.RunningVariance, bn.Name)!;
        var batchVariance = _reference64[1].Find(TensorKind.BatchVariance, "bn1")!;
        double n = _plan.Spec.Data.BatchSize, m = bn.Momentum;
        // Step 1 from running variance 1: run = (1 - m) + m * factor * batch variance, factor 1 (biased) or N/(N-1).
        double[] Predicted(double factor) => batchVariance.Data.Select(v => (1 - m) + m * factor * v).ToArray();
        double Distance(double[] predicted) => Math.Sqrt(mine.Data.Zip(predicted).Sum(p => (p.First - p.Second) * (p.First - p.Second)));
        double biased = Distance(Predicted(1.0)), unbiased = Distance(Predicted(n / (n - 1)));
        // The two estimators differ by m/(N-1) of the variance, far more than float32 rounding: the right one must fit
        // at least ten times better than the other, whatever the CPU's rounding.
        var (declaredFit, other) = declared.Count > 0 ? (biased, unbiased) : (unbiased, biased);
        Assert.That(declaredFit * 10, Is.LessThan(other), $"biased {biased:E2}, unbiased {unbiased:E2}");
    }

    [Test]
    public void Float64_is_trained_or_refused_as_the_capabilities_say()
    {
        var backend = NewBackend();
        if (!_description.Capabilities.DTypes.Contains(DType.Float64))
        {
            var ex = Assert.Throws<BackendException>(() => backend.Open(_plan, new BackendOptions(DType.Float64)));
            Assert.That(ex!.Message, Does.Contain("cannot train in float64"));
            return;
        }
        using var session = backend.Open(_plan, new BackendOptions(DType.Float64));
        var mine = new List<StepRecord> { session.ReadState(0) };
        for (int step = 1; step <= 3; step++) mine.Add(session.Step(step, _plan.BatchFor(step), CaptureRequest.Everything));
        var reference = _reference64.Where(r => r.Phase != RecordPhase.Eval && r.Step <= 3).ToList();
        var result = TraceComparer.Compare(
            new RecordedTrace(new TraceHeader { Backend = "reference", DType = "float64", Scenario = "conformance", SpecHash = "", Status = RunStatus.Completed }, reference),
            new RecordedTrace(new TraceHeader { Backend = workerName, DType = "float64", Scenario = "conformance", SpecHash = "", Status = RunStatus.Completed }, mine),
            TraceLayout.Of(_plan), TolerancePolicy.Create(_plan.Spec.Tolerances), [], []);
        AssertAgrees(result);
    }

    [Test]
    public void Framework_init_is_seeded_reproducible_and_of_the_named_distribution()
    {
        var spec = _plan.Spec with { Init = new InitSpec(InitMode.Framework, 123) };
        var plan = Planner.Build(spec, 1);
        StepRecord First()
        {
            using var session = NewBackend().Open(plan, new BackendOptions(DType.Float32));
            return session.ReadState(0);
        }
        var a = First();
        var b = First();
        var weight = a.Find(TensorKind.Parameter, "l1.weight")!;
        Assert.That(weight.Data, Is.EqualTo(b.Find(TensorKind.Parameter, "l1.weight")!.Data), "same seed, same weights");
        Assert.That(weight.Data, Is.Not.EqualTo(_plan.InitialState.Find(TensorKind.Parameter, "l1.weight")!.Data), "the framework's own draws");
        // he_normal: N(0, 2/fan_in), fan_in 20, over 640 values.
        double std = Math.Sqrt(weight.Data.Select(v => v * v).Average());
        Assert.That(std, Is.EqualTo(Math.Sqrt(2.0 / 20)).Within(10).Percent);
        Assert.That(a.Find(TensorKind.Parameter, "l1.bias")!.Data, Is.All.EqualTo(0.0));
    }

    [Test]
    public void Batches_sent_as_files_give_the_same_step()
    {
        if (NewBackend() is not WorkerBackend backend)
        {
            Assert.Ignore("in process, batches are lent as views of the harness's arrays, never sent as files");
            return;
        }
        var viaFiles = new WorkerBackend(backend.Name, backend.Command, backend.WorkingDirectory, backend.Environment) { FileThresholdBytes = 1024 };
        using var session = viaFiles.Open(_plan, new BackendOptions(DType.Float32));
        var step = session.Step(1, _plan.BatchFor(1), CaptureRequest.Everything);
        Assert.That(step.Find(TensorKind.Loss)!.Data[0], Is.EqualTo(_worker[1].Find(TensorKind.Loss)!.Data[0]));
        Assert.That(step.Find(TensorKind.Parameter, "l3.weight")!.Data, Is.EqualTo(_worker[1].Find(TensorKind.Parameter, "l3.weight")!.Data));
    }

    [Test]
    public void The_worker_reports_its_compute_time_for_every_step()
    {
        Assert.That(_timings, Has.Count.EqualTo(Steps));
        Assert.That(_timings.Select(t => t.ComputeMs), Is.All.GreaterThan(0));
        Assert.That(_timings.All(t => t.StepMs >= t.ComputeMs), Is.True);
        TestContext.Out.WriteLine($"{workerName}: median step {Median(_timings.Select(t => t.StepMs)):F2} ms, compute {Median(_timings.Select(t => t.ComputeMs)):F2} ms");
    }

    internal static double Median(IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        return sorted[sorted.Length / 2];
    }
}
