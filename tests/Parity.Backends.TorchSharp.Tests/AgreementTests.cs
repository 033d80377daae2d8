using System.Diagnostics;
using Parity.Backends.Reference;
using Parity.Comparison;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.TorchSharp.Tests;

/// <summary>
/// torchsharp against the float64 reference over 50 steps, every tensor of every step, judged by the
/// project's comparer: float32 within the noise envelope of the float32 reference, float64 by atol/rtol.
/// </summary>
[TestFixture]
public sealed class AgreementTests
{
    private string _work = "";

    [SetUp]
    public void SetUp()
    {
        TestScenarios.RequireLibTorch();
        _work = Directory.CreateTempSubdirectory("parity-torchsharp-").FullName;
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_work)) Directory.Delete(_work, recursive: true);
    }

    [TestCase("synthetic-mlp-bn")]
    [TestCase("synthetic-shared-bn")]
    [TestCase("synthetic-layernorm-sgd")]
    [TestCase("synthetic-activations")]
    [TestCase("synthetic-dropout")]
    [TestCase("synthetic-mse")]
    [TestCase("synthetic-bce")]
    [TestCase("synthetic-label-smoothing")]
    [TestCase("synthetic-rmsprop")]
    [TestCase("synthetic-adagrad")]
    [TestCase("synthetic-weight-decay")]
    [TestCase("synthetic-schedule-clip")]
    [TestCase("blobs-csv")]
    [TestCase("synthetic-everything")]
    public void Float32TorchSharpAgreesWithTheReferenceOnTheSmallFixtures(string fixture) =>
        AssertAgrees(TestScenarios.Fixture(fixture), DType.Float32);

    /// <summary>
    /// The weight decay forms the fixture (decoupled, SGD) does not run: torch.optim.Adam's own weight_decay= (coupled, every
    /// parameter), the same op around step() on the weights alone, and the L2 loss term on the weights.
    /// </summary>
    [TestCase("coupled", "all")]
    [TestCase("coupled", "weights")]
    [TestCase("l2Loss", "weights")]
    public void Float32TorchSharpAgreesWithTheReferenceUnderEveryWeightDecayForm(string form, string parameters)
    {
        var fixture = TestScenarios.Fixture("synthetic-weight-decay");
        var decay = new WeightDecaySpec(0.1, form == "coupled" ? WeightDecayForm.Coupled : WeightDecayForm.L2Loss,
            parameters == "all" ? DecayedParameters.All : DecayedParameters.Weights);
        AssertAgrees(fixture with { Optimizer = new AdamSpec(0.01, 0.9, 0.999, 1e-8, EpsilonForm.SqrtVHat) { WeightDecay = decay } }, DType.Float32);
    }

    [TestCase("seed000-separate-bn")]
    [TestCase("seed000-shared-bn")]
    public void Float32TorchSharpAgreesWithTheReferenceOnFashionMnist(string fixture) =>
        AssertAgrees(TestScenarios.FashionMnist(fixture), DType.Float32);

    /// <summary>The issue's acceptance run at full size (Fashion-MNIST, batch 1000, Adam eps 1e-8): minutes, so explicit.</summary>
    [Test]
    [Explicit("minutes: the whole seed 000 fixture; see docs/torchsharp.md on Adam eps 1e-8 in float32")]
    public void Float32TorchSharpOnTheFullSeed000SeparateBnFixture()
    {
        if (!File.Exists(Path.Combine(Planner.FashionMnistDirectory, "train-images-idx3-ubyte.gz"))) Assert.Ignore("Fashion-MNIST is not installed");
        AssertAgrees(TestScenarios.Fixture("seed000-separate-bn"), DType.Float32);
    }

    [TestCase("synthetic-mlp-bn")]
    [TestCase("synthetic-shared-bn")]
    [TestCase("synthetic-activations")]
    [TestCase("synthetic-rmsprop")]
    [TestCase("synthetic-weight-decay")]
    [TestCase("synthetic-schedule-clip")]
    [TestCase("synthetic-dropout")]
    [TestCase("synthetic-label-smoothing")]
    public void Float64TorchSharpAgreesWithTheReference(string fixture) =>
        AssertAgrees(TestScenarios.Fixture(fixture), DType.Float64);

    /// <summary>The Keras momentum form (buffers rescaled by lr_prev / lr at each rate change), clipping per tensor with eps 0 (torch ops, not clip_grad_norm_), and by value.</summary>
    [TestCase(ClipScope.PerTensorNorm, 0.0)]
    [TestCase(ClipScope.GlobalNorm, 0.0)]
    [TestCase(ClipScope.Value, 0.0)]
    public void Float64TorchSharpAgreesUnderTheKerasMomentumFormAndOtherClipping(ClipScope scope, double eps)
    {
        var spec = TestScenarios.Fixture("synthetic-schedule-clip");
        var sgd = (SgdSpec)spec.Optimizer;
        AssertAgrees(spec with
        {
            Optimizer = sgd with
            {
                Nesterov = false,
                MomentumForm = MomentumForm.Keras,
                Schedule = new StepSchedule(3, 0.5),
                Clipping = new GradientClipping(scope, scope == ClipScope.Value ? 0.05 : 0.5, eps),
            },
        }, DType.Float64);
    }

    /// <summary>
    /// TF1's RMSprop (eps inside the square root, mean square from ones) is declared by TorchSharp as two mismatches, and
    /// what libtorch computes for it is the spec with the declared values: the reference under that spec agrees.
    /// </summary>
    [Test]
    public void TorchSharpComputesTheRmspropSpecItDeclares()
    {
        var spec = TestScenarios.Fixture("synthetic-rmsprop");
        var tf1 = spec with { Optimizer = (RmspropSpec)spec.Optimizer with { Eps = 1e-3, EpsilonPlacement = EpsilonPlacement.Inside, MeanSquareInit = 1 } };
        var mismatches = TorchSharpConventions.Mismatches(tf1);
        Assert.That(mismatches.Select(m => (m.Setting, m.Value!.ToJsonString())), Is.EqualTo(new[]
        {
            ("$.optimizer.epsilonPlacement", "\"outside\""), ("$.optimizer.meanSquareInit", "0"),
        }));
        var declared = tf1 with { Optimizer = (RmspropSpec)tf1.Optimizer with { EpsilonPlacement = EpsilonPlacement.Outside, MeanSquareInit = 0 } };
        AssertAgrees(declared, DType.Float64, backendSpec: tf1);
    }

    /// <summary>TorchSharp runs <paramref name="backendSpec"/> (default <paramref name="spec"/>), the reference <paramref name="spec"/>.</summary>
    private void AssertAgrees(ScenarioSpec spec, DType dtype, ScenarioSpec? backendSpec = null)
    {
        var clock = Stopwatch.StartNew();
        var plan = Planner.Build(spec, stepsOverride: 50);
        var expected = RunTrace(plan, ReferenceBackend.Float64(), DType.Float64);
        var envelope = dtype == DType.Float32 ? RunTrace(plan, ReferenceBackend.Float32(), DType.Float32) : null;
        var actual = RunTrace(backendSpec is null ? plan : Planner.Build(backendSpec, stepsOverride: 50), new TorchSharpBackend(), dtype);

        var result = TraceComparer.Compare(expected, actual, TraceLayout.Of(plan), TolerancePolicy.Create(spec.Tolerances), envelope);
        var worst = result.Checks.Where(c => c.Status == CheckStatus.Checked)
            .GroupBy(c => c.Key.Kind).OrderBy(g => g.Key)
            .Select(g => $"{g.Key.Name()} {g.Max(c => c.Score):F3}");
        TestContext.Out.WriteLine($"{spec.Name} {dtype.Name()}: {result.TensorsCompared} tensors, worst score per kind: {string.Join(", ", worst)} ({clock.Elapsed.TotalSeconds:F1} s)");

        Assert.That(result.StepsCompared, Is.EqualTo(50));
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Agree),
            () => $"first divergence: {result.FirstDivergence?.Origin.At} score {result.FirstDivergence?.Origin.Score:F2}; failing: " +
                string.Join(", ", result.Checks.Where(c => c.CountsAsFailure).Take(12).Select(c => $"{c.At} {c.Score:F2}")));
        // The optimizer state is judged like every tensor: the count and each slot of an identifiable parameter, every step.
        Assert.That(result.Checks.Count(c => c.Key.Kind == TensorKind.OptimizerSlot && c.Status == CheckStatus.Checked), Is.GreaterThanOrEqualTo(50));
        Assert.That(result.Checks.Count(c => c.Key.Kind == TensorKind.OptimizerStep && c.Status == CheckStatus.Checked), Is.GreaterThanOrEqualTo(50));
    }

    private TraceReader RunTrace(Plan plan, IBackend backend, DType dtype)
    {
        string directory = Path.Combine(_work, $"{backend.Name}-{dtype.Name()}");
        var clock = Stopwatch.StartNew();
        var run = ScenarioRunner.Run(plan, backend, new BackendOptions(dtype, "cpu"), directory);
        TestContext.Out.WriteLine($"  {backend.Name} {dtype.Name()}: {clock.Elapsed.TotalSeconds:F1} s");
        Assert.That(run.Status, Is.EqualTo(RunStatus.Completed), $"{backend.Name}: {run.Message}");
        return TraceReader.Open(directory);
    }
}
