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
    public void Float32TorchSharpAgreesWithTheReferenceOnTheSyntheticFixtures(string fixture) =>
        AssertAgrees(TestScenarios.Fixture(fixture), DType.Float32);

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
    [TestCase("synthetic-dropout")]
    [TestCase("synthetic-label-smoothing")]
    public void Float64TorchSharpAgreesWithTheReference(string fixture) =>
        AssertAgrees(TestScenarios.Fixture(fixture), DType.Float64);

    private void AssertAgrees(ScenarioSpec spec, DType dtype)
    {
        var clock = Stopwatch.StartNew();
        var plan = Planner.Build(spec, stepsOverride: 50);
        var expected = RunTrace(plan, ReferenceBackend.Float64(), DType.Float64);
        var envelope = dtype == DType.Float32 ? RunTrace(plan, ReferenceBackend.Float32(), DType.Float32) : null;
        var actual = RunTrace(plan, new TorchSharpBackend(), dtype);

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
