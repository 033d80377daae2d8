using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Comparison;
using Parity.Models;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Onnx.Tests;

/// <summary>Fixtures, plans and reference checkpoints shared by the tests.</summary>
internal static class TestScenarios
{
    /// <summary>The fixtures every export and import test runs on: separate BN, shared BN, layernorm + identity + bias-free linear, every activation, dropout.</summary>
    public static readonly string[] Fixtures = ["synthetic-mlp-bn", "synthetic-shared-bn", "synthetic-layernorm-sgd", "synthetic-activations", "synthetic-dropout"];

    /// <summary>
    /// Every fixture in both element types and both linear forms, except synthetic-activations in float64: ONNX Runtime's
    /// CPU provider has no float64 kernels for Elu, for the Erf inside an exact Gelu, or for LeakyRelu at opset 20
    /// (<see cref="OnnxExporterTests"/> checks that refusal).
    /// </summary>
    public static IEnumerable<TestCaseData> ExportCases() =>
        from fixture in Fixtures
        from dtype in new[] { DType.Float32, DType.Float64 }
        where !(dtype == DType.Float64 && fixture == "synthetic-activations")
        from form in new[] { OnnxLinearForm.Gemm, OnnxLinearForm.MatMulAdd }
        select new TestCaseData(fixture, dtype, form);

    /// <summary>The repository root: the first directory above the test output that holds fixtures/.</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    public static ScenarioSpec Fixture(string name) => SpecLoader.LoadFile(Path.Combine(RepositoryRoot, "fixtures", name + ".json"));

    public static Plan Plan(string name, int? steps = null) => Planner.Build(Fixture(name), steps);

    /// <summary>
    /// Trains the reference backend in <paramref name="dtype"/> for <paramref name="steps"/> steps and returns
    /// its state and its own eval record at that step (running statistics away from 0 and 1, weights moved).
    /// </summary>
    public static (StepRecord State, StepRecord Eval) ReferenceCheckpoint(Plan plan, DType dtype, int steps)
    {
        var backend = new ReferenceBackend(dtype);
        using var session = backend.Open(plan, new BackendOptions(dtype));
        for (int step = 1; step <= steps; step++) session.Step(step, plan.BatchFor(step), CaptureRequest.ScalarsOnly);
        return (session.ReadState(steps), session.Evaluate(steps, plan.EvalBatch(), CaptureRequest.Everything));
    }

    /// <summary>A fresh temporary directory, deleted by the caller.</summary>
    public static string TempDirectory()
    {
        string dir = Path.Combine(Path.GetTempPath(), "parity-onnx-tests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(Path.Combine(dir.FullName, "fixtures")) && File.Exists(Path.Combine(dir.FullName, "Parity.sln")))
                return dir.FullName;
        throw new DirectoryNotFoundException("no directory above the test output holds fixtures/ and Parity.sln");
    }
}

/// <summary>Tensor assertions that judge agreement the way the harness does (TolerancePolicy at step 0, as the ONNX arbiter).</summary>
internal static class TensorAssert
{
    /// <summary>
    /// Passes when <paramref name="actual"/> agrees with <paramref name="expected"/> under the default tolerance policy for
    /// <paramref name="kind"/> and the two dtypes at step 0: the rule `parity run` applies to an arbiter's outputs.
    /// </summary>
    public static void Agrees(Tensor expected, Tensor actual, TensorKind kind, string what)
    {
        Assert.That(actual.Shape, Is.EqualTo(expected.Shape), $"{what}: shape");
        var policy = TolerancePolicy.Default;
        var tolerance = policy.ToleranceAt(kind, 0, actual.DType, expected.DType, Math.Sqrt(expected.Data.Average(v => v * v)));
        var metrics = TensorMetrics.Of(actual, expected, tolerance);
        var judgement = policy.Judge(metrics, tolerance, null);
        Assert.That(judgement.Passed, Is.True,
            () => $"{what}: RMSE {metrics.Rmse:E3} over the allowed {judgement.Allowed:E3} (score {judgement.Score:G3}); greatest difference {metrics.MaxAbs:E3} at element {metrics.WorstIndex}");
    }

    public static void Exact(Tensor expected, Tensor actual, string what)
    {
        Assert.That(actual.Shape, Is.EqualTo(expected.Shape), $"{what}: shape");
        Assert.That(actual.Data, Is.EqualTo(expected.Data), $"{what}: values");
    }

    /// <summary>Every EvalOutput, EvalLoss and EvalAccuracy of <paramref name="expected"/> is in <paramref name="actual"/> and close.</summary>
    /// <summary>Two eval records of the same model and state agree as the harness's comparison judges them (accuracies by their logits' margins).</summary>
    public static void EvalRecordsAgree(ModelGraph graph, StepRecord expected, StepRecord actual)
    {
        Assert.That(actual.Phase, Is.EqualTo(RecordPhase.Eval));
        static ITrace Trace(string backend, StepRecord record) => new RecordedTrace(
            new TraceHeader { Backend = backend, DType = record.Entries[0].Value.DType.Name(), Scenario = "onnx", SpecHash = "", Status = RunStatus.Completed }, [record]);
        // The same state evaluated twice: align the records whatever step each side labelled its state with.
        var aligned = new StepRecord(expected.Step, RecordPhase.Eval);
        foreach (var e in actual.Entries) aligned.Add(e.Key.Kind, e.Key.Site, e.Value);
        var result = TraceComparer.Compare(Trace("expected", expected), Trace("actual", aligned), new TraceLayout(graph, new SgdSpec(0.1, 0)), TolerancePolicy.Default, [], []);
        Assert.That(result.TensorsCompared, Is.GreaterThan(2), "the expected record holds eval outputs");
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Agree),
            () => string.Join("; ", result.Checks.Where(c => !c.Passed).Select(c => $"{c.Key}: score {c.Score:G3}, RMSE {c.Metrics.Rmse:E3} allowed {c.Allowed:E3}")));
    }
}
