using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Comparison.Tests;

/// <summary>End to end: reference-f32 against the float64 reference, the agreement the default tolerances are tuned to.</summary>
public class ReferenceAgreementTests
{
    /// <summary>
    /// The seed 000 model (one batchnorm after both hidden layers, biases before it, Adam lr 0.01) on synthetic
    /// data, at a quarter of the input width (14x14 instead of 28x28) to keep the test fast.
    /// </summary>
    private const string SharedBatchNormLikeSeed000 = """
        {
          "name": "seed000-like-synthetic", "seed": 0,
          "model": {
            "inputs": 196,
            "layers": [
              { "name": "l1", "type": "linear", "in": 196, "out": 100, "init": { "weight": "lecun_normal", "bias": "zeros" } },
              { "name": "bn", "type": "batchnorm", "features": 100, "momentum": 0.1, "eps": 1e-3, "runningVariance": "unbiased" },
              { "name": "relu", "type": "relu" },
              { "name": "l2", "type": "linear", "in": 100, "out": 100, "init": { "weight": "lecun_normal", "bias": "zeros" } },
              { "name": "l3", "type": "linear", "in": 100, "out": 10, "init": { "weight": "lecun_normal", "bias": "zeros" } }
            ],
            "calls": ["l1", "bn", "relu", "l2", "bn", "relu", "l3"]
          },
          "optimizer": { "type": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "epsilonForm": "sqrtVHat" },
          "data": {
            "train": { "type": "synthetic", "generator": "teacher", "samples": 2000, "features": 196, "classes": 10, "seed": 1, "teacherSeed": 2 },
            "eval": { "type": "synthetic", "generator": "teacher", "samples": 200, "features": 196, "classes": 10, "seed": 3, "teacherSeed": 2 },
            "batchSize": 200, "shuffleSeed": 0
          },
          "training": { "steps": 20 },
          "evaluation": { "every": 5 }
        }
        """;

    private readonly Dictionary<string, (Plan Plan, TraceReader Float64, TraceReader Float32)> _runs = [];
    private string _root = "";

    [OneTimeSetUp]
    public void OneTimeSetUp() => _root = Path.Combine(Path.GetTempPath(), "parity-agreement-" + Guid.NewGuid().ToString("N"));

    [OneTimeTearDown]
    public void OneTimeTearDown()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    /// <summary>50 steps of a fixture in both precisions, run once per fixture for all tests of this class.</summary>
    private (Plan Plan, TraceReader Float64, TraceReader Float32) Fixture(string fixture)
    {
        if (!_runs.TryGetValue(fixture, out var run))
        {
            var plan = ReferenceRuns.Fixture(fixture, 50);
            var (f64, f32) = ReferenceRuns.Run(plan, Path.Combine(_root, fixture));
            _runs[fixture] = run = (plan, f64, f32);
        }
        return run;
    }

    private string Scratch(string name) => Path.Combine(_root, name + "-" + Guid.NewGuid().ToString("N"));

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
    [TestCase("synthetic-everything.json")]
    public void Float32_agrees_with_float64_over_50_steps_of_each_synthetic_fixture(string fixture)
    {
        var (plan, f64, f32) = Fixture(fixture);
        var result = TraceComparer.Compare(f64, f32, TraceLayout.Of(plan), TolerancePolicy.Create(plan.Spec.Tolerances), envelope: f32);
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Agree), () => Failures(result));
        Assert.That(result.Envelope, Is.Null, "a trace is not its own envelope");
        Assert.That(result.StepsCompared, Is.EqualTo(50));
        var worst = result.Checks.Where(c => c.Status == CheckStatus.Checked && !c.ThroughNotIdentifiable).MaxBy(c => c.Score)!;
        TestContext.Out.WriteLine($"margin left for other float32 implementations: the worst check, {worst.At}, scores {worst.Score:G3}");
    }

    [Test]
    public void The_seed000_shape_with_a_bias_before_shared_batchnorm_agrees_over_20_steps()
    {
        var plan = Planner.Build(SpecLoader.Parse(SharedBatchNormLikeSeed000));
        var (f64, f32) = ReferenceRuns.Run(plan, Scratch("seed000"));
        var result = TraceComparer.Compare(f64, f32, TraceLayout.Of(plan), TolerancePolicy.Default, envelope: f32);
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Agree), () => Failures(result));
        Assert.That(result.NotIdentifiable, Is.SupersetOf(new[] { "parameterGradient:l1.bias", "parameter:l2.bias", "batchMean:bn#2", "runningMean:bn" }));
        // The bias really drifts between float32 and float64 (Adam turns its noise gradient into full steps).
        var bias = result.Checks.Last(c => c.Key == new TensorKey(TensorKind.Parameter, "l1.bias"));
        Assert.That(bias.Metrics.MaxAbs, Is.GreaterThan(1e-4));
        Assert.That(result.Checks.Where(c => c.Key.Kind == TensorKind.Forward && c.Key.Site == "l1"), Has.All.Matches<TensorCheck>(c => c.Centered && c.Passed));
    }

    [TestCase("synthetic-mlp-bn.json", "bn2", 50, -1)]
    [TestCase("synthetic-shared-bn.json", "bn", 50, -1)]
    [TestCase("synthetic-mlp-bn.json", "bn1", 10, 7)]
    public void A_relative_change_of_1e_3_in_one_running_variance_is_caught_as_the_origin(string fixture, string instance, int step, int element)
    {
        var (plan, f64, f32) = Fixture(fixture);
        var key = new TensorKey(TensorKind.RunningVariance, instance);
        var perturbed = Copy(f32, Scratch("perturbed"), (at, t) =>
        {
            if (at.Step != step || at.Phase != RecordPhase.Train || at.Key != key) return t;
            var data = (double[])t.Data.Clone();
            for (int i = 0; i < data.Length; i++)
                if (element < 0 || i == element) data[i] = (float)(data[i] * 1.001);
            return new Tensor(t.Shape, data, t.DType);
        });
        foreach (var envelope in new[] { null, f32 })
        {
            var result = TraceComparer.Compare(f64, perturbed, TraceLayout.Of(plan), TolerancePolicy.Default, envelope);
            Assert.That(result.Verdict, Is.EqualTo(Verdict.Diverge));
            var first = result.FirstDivergence!;
            Assert.That((first.Step, first.Key, first.IsOrigin), Is.EqualTo((step, key, true)), () => Failures(result));
            Assert.That(first.Origin.Rule, Is.EqualTo(envelope is null ? JudgementRule.Tolerance : JudgementRule.Envelope));
            TestContext.Out.WriteLine($"{fixture} {key}@{step} element {element}, {first.Origin.Rule}: score {first.Origin.Score:F2}");
        }
    }

    [Test]
    public void Pairwise_matrix_of_float64_float32_and_a_perturbed_float32_trace()
    {
        var (plan, f64, f32) = Fixture("synthetic-shared-bn.json");
        var broken = Copy(f32, Scratch("broken"), (at, t) =>
            at.Step >= 4 && at.Key == new TensorKey(TensorKind.Parameter, "l3.weight") ? new Tensor(t.Shape, t.Data.Select(v => (double)(float)(v * 1.01)).ToArray(), t.DType) : t,
            backend: "broken-f32");
        var matrix = PairwiseMatrix.Compare([f32, f64, broken], TraceLayout.Of(plan), TolerancePolicy.Default, envelope: f32);
        Assert.That(matrix.Backends, Is.EqualTo(new[] { "reference-f32", "reference", "broken-f32" }));
        Assert.That(matrix.Cells, Has.Count.EqualTo(3));
        var good = matrix.Cell("reference-f32", "reference")!;
        Assert.That((good.Expected, good.Verdict), Is.EqualTo(("reference", Verdict.Agree)));
        var bad = matrix.Cell("reference", "broken-f32")!;
        Assert.That((bad.Expected, bad.Verdict, bad.Step, bad.Key), Is.EqualTo(("reference", Verdict.Diverge, (int?)4, (TensorKey?)new TensorKey(TensorKind.Parameter, "l3.weight"))));
        Assert.That(bad.FirstDivergence!.IsOrigin, Is.True);
        var both32 = matrix.Cell("broken-f32", "reference-f32")!;
        Assert.That((both32.Expected, both32.Verdict, both32.Step), Is.EqualTo(("reference-f32", Verdict.Diverge, (int?)4)));
        Assert.That(matrix.Cell("reference", "reference"), Is.Null);
    }

    private static string Failures(ComparisonResult result) =>
        string.Join("\n", result.Checks.Where(c => c.CountsAsFailure).Take(20).Select(c => $"{c.At} score {c.Score:G3} {c.Metrics}"));

    private static TraceReader Copy(TraceReader source, string directory, Func<TensorAt, Tensor, Tensor> change, string? backend = null)
    {
        using (var writer = TraceWriter.Create(directory, source.Header with { Backend = backend ?? source.Header.Backend }))
        {
            foreach (var record in source.Records())
            {
                var copy = new StepRecord(record.Step, record.Phase);
                foreach (var e in record.Entries) copy.Add(e.Key.Kind, e.Key.Site, change(new TensorAt(record.Step, record.Phase, e.Key), e.Value));
                writer.Write(copy);
            }
            writer.UpdateHeader(h => h); // seals what was written, as a finished run's writer does
        }
        return TraceReader.Open(directory);
    }
}
