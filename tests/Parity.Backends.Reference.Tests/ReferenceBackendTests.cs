using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.Reference.Tests;

public class ReferenceBackendTests
{
    private string _temp = "";

    [SetUp]
    public void CreateTempDirectory() => _temp = Directory.CreateTempSubdirectory("parity-reference-").FullName;

    [TearDown]
    public void DeleteTempDirectory()
    {
        if (Directory.Exists(_temp)) Directory.Delete(_temp, recursive: true);
    }

    private static IBackendSession Open(Plan plan, ReferenceBackend backend) => backend.Open(plan, new BackendOptions(backend.DType));

    /// <summary>
    /// Step 1 of each weight decay form against the same step without decay, from the same state (SGD, lr 0.1: the first
    /// momentum buffer is the gradient the optimizer takes): the traced loss, gradient and parameters the spec describes.
    /// </summary>
    [TestCase(WeightDecayForm.Coupled, DecayedParameters.All, true)]
    [TestCase(WeightDecayForm.Decoupled, DecayedParameters.Weights, false)]
    [TestCase(WeightDecayForm.Decoupled, DecayedParameters.All, true)]
    [TestCase(WeightDecayForm.L2Loss, DecayedParameters.Weights, true)]
    public void EachWeightDecayFormTakesTheFirstStepItsSpecDescribes(WeightDecayForm form, DecayedParameters parameters, bool byLearningRate)
    {
        const double lr = 0.1, rate = 0.3;
        var plain = TestSpecs.Plan(TestSpecs.LayerNormNet());
        var decay = new WeightDecaySpec(rate, form, parameters, byLearningRate);
        var plan = Planner.Build(plain.Spec with { Optimizer = plain.Spec.Optimizer with { WeightDecay = decay } });
        StepRecord First(Plan p)
        {
            using var session = Open(p, ReferenceBackend.Float64());
            return session.Step(1, p.BatchFor(1), CaptureRequest.Everything);
        }
        var without = First(plain);
        var with = First(plan);
        double squares = 0;
        foreach (var p in plan.Graph.Parameters)
        {
            var p0 = plan.InitialState.Find(TensorKind.Parameter, p.Name)!.Data;
            var g = without.Find(TensorKind.ParameterGradient, p.Name)!.Data;
            bool decays = decay.Applies(p);
            Assert.That(decays, Is.EqualTo(parameters == DecayedParameters.All || p.Local == "weight"), p.Name);
            var expectedGradient = g.Select((x, i) => decays && form == WeightDecayForm.L2Loss ? x + 2 * rate * p0[i] : x).ToArray();
            var taken = expectedGradient.Select((x, i) => decays && form == WeightDecayForm.Coupled ? x + rate * p0[i] : x).ToArray();
            double shrink = decays && form == WeightDecayForm.Decoupled ? decay.DecoupledFactor(lr) : 0;
            var expectedParameter = p0.Select((x, i) => x - shrink * x - lr * taken[i]).ToArray();
            Assert.That(with.Find(TensorKind.ParameterGradient, p.Name)!.Data, Is.EqualTo(expectedGradient).Within(1e-12).AsCollection, p.Name + " gradient");
            Assert.That(with.Find(TensorKind.Parameter, p.Name)!.Data, Is.EqualTo(expectedParameter).Within(1e-12).AsCollection, p.Name);
            if (decays) squares += p0.Sum(x => x * x);
        }
        double term = form == WeightDecayForm.L2Loss ? rate * squares : 0;
        Assert.That(with.Find(TensorKind.Loss)!.Data[0], Is.EqualTo(without.Find(TensorKind.Loss)!.Data[0] + term).Within(1e-12));
    }

    [Test]
    public void TheTwoVariantsAreNamedAndTypedAsTheRegistryExpects()
    {
        Assert.That(ReferenceBackend.Float64().Name, Is.EqualTo("reference"));
        Assert.That(ReferenceBackend.Float32().Name, Is.EqualTo("reference-f32"));
        var description = ReferenceBackend.Float32().Describe();
        Assert.That(description.Available, Is.True);
        Assert.That(description.Capabilities.DTypes, Is.EquivalentTo(new[] { DType.Float32 }));
        Assert.That(description.Capabilities.FrameworkInit, Is.False);
        Assert.That(description.Capabilities.SharedInstances, Is.True);
    }

    [Test]
    public void OpeningWithAnotherDTypeIsABackendErrorThatNamesTheRightBackend()
    {
        var plan = TestSpecs.Plan(TestSpecs.LayerNormNet());
        var ex = Assert.Throws<BackendException>(() => ReferenceBackend.Float64().Open(plan, new BackendOptions(DType.Float32)));
        Assert.That(ex!.Message, Does.Contain("reference-f32"));
    }

    [Test]
    public void ReadStateReturnsTheInitialStateExactly()
    {
        var plan = TestSpecs.Plan(TestSpecs.BatchNormNet());
        using var session = Open(plan, ReferenceBackend.Float32());
        var state = session.ReadState(0);
        Assert.That(state.Phase, Is.EqualTo(RecordPhase.Initial));
        // The plan's state, plus the optimizer state before the first update: no update done, every slot zero.
        var optimizer = state.Entries.Where(e => e.Key.Kind.IsOptimizerState()).ToList();
        Assert.That(state.Entries.Select(e => e.Key).Except(optimizer.Select(e => e.Key)), Is.EquivalentTo(plan.InitialState.Entries.Select(e => e.Key)));
        Assert.That(optimizer.Select(e => e.Key), Is.EquivalentTo(TraceLayout.Of(plan).KeysOf(TensorKind.OptimizerStep).Concat(TraceLayout.Of(plan).KeysOf(TensorKind.OptimizerSlot))));
        Assert.That(optimizer.SelectMany(e => e.Value.Data), Is.All.EqualTo(0.0));
        foreach (var e in plan.InitialState.Entries)
        {
            var t = state.Find(e.Key.Kind, e.Key.Site)!;
            Assert.That(t.Data, Is.EqualTo(e.Value.Data).AsCollection, e.Key.ToString());
            Assert.That(t.Shape, Is.EqualTo(e.Value.Shape), e.Key.ToString());
            Assert.That(t.DType, Is.EqualTo(DType.Float32));
        }
    }

    [Test]
    public void AStepFromALoadedStateMatchesTheStepThatProducedItBitForBit()
    {
        // The replay oracle of the step checks: a session loaded with another run's state after step 2 computes step 3
        // exactly as that run did (same batch, same update count, same slots).
        var plan = TestSpecs.FixturePlan("synthetic-mlp-bn.json", steps: 3);
        using var run = Open(plan, ReferenceBackend.Float32());
        run.Step(1, plan.BatchFor(1), CaptureRequest.Everything);
        var afterTwo = run.Step(2, plan.BatchFor(2), CaptureRequest.Everything);
        var three = run.Step(3, plan.BatchFor(3), CaptureRequest.Everything);

        using var replay = (IStateLoadingSession)Open(plan, ReferenceBackend.Float32());
        replay.LoadState(afterTwo);
        var replayed = replay.Step(3, plan.BatchFor(3), CaptureRequest.Everything);
        Assert.That(replayed.Entries.Select(e => e.Key), Is.EqualTo(three.Entries.Select(e => e.Key)));
        foreach (var e in three.Entries) Assert.That(replayed.Find(e.Key.Kind, e.Key.Site)!.Data, Is.EqualTo(e.Value.Data).AsCollection, e.Key.ToString());
        Assert.That(replayed.Find(TensorKind.OptimizerStep)!.Data[0], Is.EqualTo(3));
    }

    [Test]
    public void AFullyCapturedStepFollowsTheTraceConventions()
    {
        var plan = TestSpecs.Plan(TestSpecs.BatchNormNet());
        using var session = Open(plan, ReferenceBackend.Float64());
        var record = session.Step(1, plan.BatchFor(1), CaptureRequest.Everything);
        Assert.That(record.Phase, Is.EqualTo(RecordPhase.Train));
        Assert.That(record.Find(TensorKind.Forward, "bn1")!.Shape, Is.EqualTo(new[] { 8, 10 }));
        Assert.That(record.Find(TensorKind.BatchVariance, "bn2")!.Shape, Is.EqualTo(new[] { 10 }));
        Assert.That(record.Find(TensorKind.OutputGradient, "l3")!.Shape, Is.EqualTo(new[] { 8, 3 }));
        Assert.That(record.Find(TensorKind.ParameterGradient, "l1.weight")!.Shape, Is.EqualTo(new[] { 10, 6 }));
        Assert.That(record.Find(TensorKind.Parameter, "l1.weight")!.Shape, Is.EqualTo(new[] { 10, 6 }));
        Assert.That(record.Find(TensorKind.RunningMean, "bn1")!.Shape, Is.EqualTo(new[] { 10 }));
        Assert.That(record.Find(TensorKind.Loss)!.Shape, Is.Empty);
        Assert.That(record.Find(TensorKind.Forward, "relu#1"), Is.Not.Null, "the shared relu's calls are named relu#1 and relu#2");
        // Entries appear in comparison order: kinds never go backwards.
        var kinds = record.Entries.Select(e => (int)e.Key.Kind).ToList();
        var forwardBlock = kinds.TakeWhile(k => k <= (int)TensorKind.BatchVariance).Count();
        Assert.That(kinds.Skip(forwardBlock), Is.Ordered);

        // The loss is the mean cross-entropy of the traced logits; the parameter is the initial one minus lr * gradient (SGD, v0 = 0).
        var logits = record.Find(TensorKind.Forward, "l3")!.Data;
        var labels = plan.BatchFor(1).Labels;
        double loss = ReferenceOps.SoftmaxCrossEntropy<double>(logits, labels, new double[logits.Length], 8, 3);
        Assert.That(record.Find(TensorKind.Loss)!.Data[0], Is.EqualTo(loss));
        var w0 = plan.InitialState.Find(TensorKind.Parameter, "l3.weight")!.Data;
        var g = record.Find(TensorKind.ParameterGradient, "l3.weight")!.Data;
        var w1 = record.Find(TensorKind.Parameter, "l3.weight")!.Data;
        for (int i = 0; i < w0.Length; i++) Assert.That(w1[i], Is.EqualTo(w0[i] - 0.1 * g[i]).Within(1e-15));
    }

    [Test]
    public void AScalarsOnlyStepCarriesLossAndAccuracyAndNothingElse()
    {
        var plan = TestSpecs.Plan(TestSpecs.BatchNormNet());
        using var session = Open(plan, ReferenceBackend.Float32());
        var record = session.Step(1, plan.BatchFor(1), CaptureRequest.ScalarsOnly);
        Assert.That(record.Entries.Select(e => e.Key.Kind), Is.EquivalentTo(new[] { TensorKind.Loss, TensorKind.TrainAccuracy }));
        Assert.That(record.Find(TensorKind.Loss)!.DType, Is.EqualTo(DType.Float32));
    }

    [TestCase("biased", false)]
    [TestCase("unbiased", true)]
    public void RunningVarianceReceivesTheEstimatorTheSpecNames(string estimator, bool unbiased)
    {
        var plan = TestSpecs.Plan(TestSpecs.BatchNormNet(variance: estimator));
        using var session = Open(plan, ReferenceBackend.Float64());
        var record = session.Step(1, plan.BatchFor(1), CaptureRequest.Everything);
        var batchVariance = record.Find(TensorKind.BatchVariance, "bn1")!.Data;
        var running = record.Find(TensorKind.RunningVariance, "bn1")!.Data;
        double n = 8;
        for (int j = 0; j < running.Length; j++)
        {
            double expected = 0.9 * 1 + 0.1 * batchVariance[j] * (unbiased ? n / (n - 1) : 1);
            Assert.That(running[j], Is.EqualTo(expected).Within(1e-15));
        }
    }

    [Test]
    public void ASharedBatchNormUpdatesItsRunningStatisticsOncePerCallInCallOrder()
    {
        var plan = TestSpecs.Plan(TestSpecs.SharedBatchNormNet());
        using var session = Open(plan, ReferenceBackend.Float64());
        var record = session.Step(1, plan.BatchFor(1), CaptureRequest.Everything);
        double[] mean = plan.InitialState.Find(TensorKind.RunningMean, "bn")!.Data.ToArray();
        double[] variance = plan.InitialState.Find(TensorKind.RunningVariance, "bn")!.Data.ToArray();
        foreach (var site in new[] { "bn_a", "bn_b" })
            ReferenceOps.UpdateRunningStatistics<double>(mean, variance, record.Find(TensorKind.BatchMean, site)!.Data,
                record.Find(TensorKind.BatchVariance, site)!.Data, 0.1, unbiased: true, 8);
        Assert.That(record.Find(TensorKind.RunningMean, "bn")!.Data, Is.EqualTo(mean).AsCollection);
        Assert.That(record.Find(TensorKind.RunningVariance, "bn")!.Data, Is.EqualTo(variance).AsCollection);
        Assert.That(record.Find(TensorKind.BatchMean, "bn_a")!.Data, Is.Not.EqualTo(record.Find(TensorKind.BatchMean, "bn_b")!.Data));
    }

    [Test]
    public void EvaluateUsesRunningStatisticsAndChangesNoState()
    {
        var plan = TestSpecs.Plan(TestSpecs.BatchNormNet());
        using var session = Open(plan, ReferenceBackend.Float64());
        session.Step(1, plan.BatchFor(1), CaptureRequest.Everything);
        var before = session.ReadState(1);
        var eval = session.Evaluate(1, plan.EvalBatch(), CaptureRequest.Everything);
        var after = session.ReadState(1);
        for (int i = 0; i < before.Entries.Count; i++)
            Assert.That(after.Entries[i].Value.Data, Is.EqualTo(before.Entries[i].Value.Data).AsCollection);

        Assert.That(eval.Phase, Is.EqualTo(RecordPhase.Eval));
        Assert.That(eval.Find(TensorKind.EvalOutput, "l3")!.Shape, Is.EqualTo(new[] { 24, 3 }), "the whole eval batch");
        Assert.That(eval.Find(TensorKind.EvalLoss), Is.Not.Null);
        Assert.That(eval.Find(TensorKind.EvalAccuracy), Is.Not.Null);
        // bn1 in eval mode: (x - running mean) / sqrt(running var + eps) with gamma and beta after step 1.
        var x = eval.Find(TensorKind.EvalOutput, "l1")!.Data;
        var y = new double[x.Length];
        ReferenceOps.BatchNormForwardEval<double>(x, before.Find(TensorKind.Parameter, "bn1.gamma")!.Data, before.Find(TensorKind.Parameter, "bn1.beta")!.Data,
            before.Find(TensorKind.RunningMean, "bn1")!.Data, before.Find(TensorKind.RunningVariance, "bn1")!.Data, 1e-5, y, 24, 10);
        Assert.That(eval.Find(TensorKind.EvalOutput, "bn1")!.Data, Is.EqualTo(y).AsCollection);
    }

    [TestCase("synthetic-mlp-bn.json")]
    [TestCase("synthetic-shared-bn.json")]
    [TestCase("synthetic-layernorm-sgd.json")]
    [TestCase("synthetic-activations.json")]
    [TestCase("synthetic-rmsprop.json")]
    [TestCase("synthetic-adagrad.json")]
    [TestCase("synthetic-weight-decay.json")]
    [TestCase("synthetic-schedule-clip.json")]
    [TestCase("synthetic-dropout.json")]
    [TestCase("synthetic-mse.json")]
    [TestCase("synthetic-bce.json")]
    [TestCase("synthetic-label-smoothing.json")]
    public void Float32RoundsDifferentlyFromFloat64(string fixture)
    {
        var plan = TestSpecs.FixturePlan(fixture, steps: 50);
        using var f64 = Open(plan, ReferenceBackend.Float64());
        using var f32 = Open(plan, ReferenceBackend.Float32());
        double worst = 0;
        for (int step = 1; step <= 50; step++)
        {
            var batch = plan.BatchFor(step);
            double a = f64.Step(step, batch, CaptureRequest.ScalarsOnly).Find(TensorKind.Loss)!.Data[0];
            double b = f32.Step(step, batch, CaptureRequest.ScalarsOnly).Find(TensorKind.Loss)!.Data[0];
            worst = Math.Max(worst, Math.Abs(a - b) / Math.Abs(a));
        }
        // Whether the two agree is judged by the comparison project's tests, under the tolerance policy; this test only
        // makes sure the float32 variant really computes in float32 (an envelope of exact zeros would judge nothing).
        TestContext.Out.WriteLine($"{fixture}: worst relative loss difference {worst:E2}");
        Assert.That(worst, Is.GreaterThan(0), "float32 must really round differently from float64");
    }

    [Test]
    public void TwoRunsGiveBitIdenticalTracesWhateverTheThreadCount()
    {
        var plan = TestSpecs.Plan(TestSpecs.WideSharedBatchNormNet());
        var first = ScenarioRunner.Run(plan, ReferenceBackend.Float32(), new BackendOptions(DType.Float32), Path.Combine(_temp, "a"));
        var second = ScenarioRunner.Run(plan, ReferenceBackend.Float32(), new BackendOptions(DType.Float32), Path.Combine(_temp, "b"));
        var single = ScenarioRunner.Run(plan, new ReferenceBackend(DType.Float32, maxDegreeOfParallelism: 1), new BackendOptions(DType.Float32), Path.Combine(_temp, "c"));
        Assert.That(new[] { first.Status, second.Status, single.Status }, Is.All.EqualTo(RunStatus.Completed));
        var expected = TraceReader.Open(first.TraceDirectory).Records().ToList();
        Assert.That(expected, Has.Count.EqualTo(1 + 6 + 2));
        foreach (var other in new[] { second, single })
        {
            var actual = TraceReader.Open(other.TraceDirectory).Records().ToList();
            Assert.That(actual, Has.Count.EqualTo(expected.Count));
            for (int r = 0; r < expected.Count; r++)
            {
                Assert.That(actual[r].Entries.Select(e => e.Key), Is.EqualTo(expected[r].Entries.Select(e => e.Key)));
                for (int e = 0; e < expected[r].Entries.Count; e++)
                {
                    // Bit patterns, so that NaN and -0 count too.
                    var want = expected[r].Entries[e].Value.Data.Select(BitConverter.DoubleToInt64Bits);
                    var got = actual[r].Entries[e].Value.Data.Select(BitConverter.DoubleToInt64Bits);
                    Assert.That(got, Is.EqualTo(want), $"record {r}, {expected[r].Entries[e].Key}");
                }
            }
        }
    }

    /// <summary>
    /// The runner releases each record once written, so that the next step's captures reuse its arrays: the traces it
    /// writes so are byte for byte those of records over arrays of their own (as before pooling), even when every array
    /// the pool lends at first is stale (NaN), over train, several evaluation chunks, dropout masks and a capture filter.
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public void RecordsOverPooledArraysWriteTheSameTraceAsRecordsOverTheirOwn(bool filtered)
    {
        var root = System.Text.Json.Nodes.JsonNode.Parse(TestSpecs.WideSharedBatchNormNet())!.AsObject();
        root["model"]!["layers"]!.AsArray().Add(System.Text.Json.Nodes.JsonNode.Parse("""{ "name": "drop", "type": "dropout", "p": 0.25 }"""));
        root["model"]!["calls"] = System.Text.Json.Nodes.JsonNode.Parse("""["l1", "bn", "relu", "l2", "bn", "relu", "drop", "l3"]""");
        root["evaluation"] = System.Text.Json.Nodes.JsonNode.Parse("""{ "every": 3, "batchSize": 128 }""");
        var plan = TestSpecs.Plan(root.ToJsonString());
        if (filtered) plan = plan.WithFilter(new CaptureFilter(null, new HashSet<string> { "l2", "bn" }, null, null));
        var own = ScenarioRunner.Run(plan, new OwnArrays(ReferenceBackend.Float32()), new BackendOptions(DType.Float32), Path.Combine(_temp, "own"));
        Assert.That(own.Status, Is.EqualTo(RunStatus.Completed), own.Message);
        var records = TraceReader.Open(own.TraceDirectory).Records().ToList();
        Assert.That(records.Count(r => r.Phase == RecordPhase.Eval), Is.EqualTo(2));
        Assert.That(plan.EvalBatches().Count(), Is.EqualTo(3));

        // One stale array of every length the run rents, lent before any other.
        var stale = records.SelectMany(r => r.Entries).Select(e => e.Value.Length).Where(n => n >= TensorPool.MinLength).Distinct()
            .Select(n => TensorPool.Shared.Rent(n)).ToList();
        foreach (var a in stale)
        {
            Array.Fill(a, double.NaN);
            TensorPool.Shared.Return(a);
        }
        var pooled = ScenarioRunner.Run(plan, ReferenceBackend.Float32(), new BackendOptions(DType.Float32), Path.Combine(_temp, "pooled"));
        Assert.That(pooled.Status, Is.EqualTo(RunStatus.Completed), pooled.Message);
        Assert.That(stale, Has.Count.GreaterThan(2));
        Assert.That(stale, Has.All.Matches<double[]>(a => a.Any(double.IsFinite)), "every stale array was lent to a capture and overwritten");
        foreach (string file in new[] { TraceFiles.Records, TraceFiles.Tensors })
            Assert.That(File.ReadAllBytes(Path.Combine(pooled.TraceDirectory, file)), Is.EqualTo(File.ReadAllBytes(Path.Combine(own.TraceDirectory, file))), file);
    }

    /// <summary>The reference backend with each record's tensors copied into arrays of their own, never given back to the pool.</summary>
    private sealed class OwnArrays(ReferenceBackend inner) : IBackend
    {
        public string Name => inner.Name;

        public BackendDescription Describe() => inner.Describe();

        public IBackendSession Open(Plan plan, BackendOptions options) => new Session(inner.Open(plan, options));

        private sealed class Session(IBackendSession inner) : IBackendSession
        {
            public IReadOnlyList<ConventionMismatch> Mismatches => inner.Mismatches;

            public IReadOnlyDictionary<string, string> RuntimeInfo => inner.RuntimeInfo;

            public StepRecord ReadState(int step) => Own(inner.ReadState(step));

            public StepRecord Step(int step, Parity.Data.Batch batch, CaptureRequest capture) => Own(inner.Step(step, batch, capture));

            public StepRecord Evaluate(int step, Parity.Data.Batch data, CaptureRequest capture) => Own(inner.Evaluate(step, data, capture));

            public void Dispose() => inner.Dispose();

            private static StepRecord Own(StepRecord record)
            {
                var own = new StepRecord(record.Step, record.Phase);
                foreach (var e in record.Entries)
                    own.Add(e.Key.Kind, e.Key.Site, new Tensor((int[])e.Value.Shape.Clone(), (double[])e.Value.Data.Clone(), e.Value.DType));
                return own;
            }
        }
    }

    [Test]
    public void TheSharedBatchNormFixtureRunsToCompletionThroughTheScenarioRunner()
    {
        var plan = TestSpecs.FixturePlan("synthetic-shared-bn.json");
        var run = ScenarioRunner.Run(plan, ReferenceBackend.Float64(), new BackendOptions(DType.Float64), Path.Combine(_temp, "shared"));
        Assert.That(run.Status, Is.EqualTo(RunStatus.Completed), run.Message);
        Assert.That(run.StepsCompleted, Is.EqualTo(50));
        var records = TraceReader.Open(run.TraceDirectory).Records().ToList();
        int evals = Enumerable.Range(1, plan.TotalSteps).Count(plan.IsEvalStep);
        Assert.That(evals, Is.EqualTo(5));
        Assert.That(records, Has.Count.EqualTo(1 + 50 + evals));
        Assert.That(records.Count(r => r.Phase == RecordPhase.Eval), Is.EqualTo(evals));
        Assert.That(records[^1].Find(TensorKind.EvalAccuracy)!.Data[0], Is.InRange(0.0, 1.0));
    }
}
