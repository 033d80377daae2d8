using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Onnx.Tests;

/// <summary>Fixtures, plans and reference checkpoints shared by the tests.</summary>
internal static class TestScenarios
{
    /// <summary>The fixtures every export and import test runs on: separate BN, shared BN, layernorm + identity + bias-free linear.</summary>
    public static readonly string[] Fixtures = ["synthetic-mlp-bn", "synthetic-shared-bn", "synthetic-layernorm-sgd"];

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

/// <summary>Element-wise closeness as torch.testing.assert_close states it: |a - e| &lt;= atol + rtol * |e|.</summary>
internal static class TensorAssert
{
    public static void Close(Tensor expected, Tensor actual, double atol, double rtol, string what)
    {
        Assert.That(actual.Shape, Is.EqualTo(expected.Shape), $"{what}: shape");
        double worst = 0;
        int worstIndex = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double excess = Math.Abs(actual.Data[i] - expected.Data[i]) - (atol + rtol * Math.Abs(expected.Data[i]));
            if (double.IsNaN(excess) || excess > worst)
            {
                worst = double.IsNaN(excess) ? double.PositiveInfinity : excess;
                worstIndex = i;
            }
        }
        Assert.That(worstIndex, Is.EqualTo(-1),
            () => $"{what}: element {worstIndex} is {actual.Data[worstIndex]:R}, expected {expected.Data[worstIndex]:R} (atol {atol}, rtol {rtol})");
    }

    public static void Exact(Tensor expected, Tensor actual, string what)
    {
        Assert.That(actual.Shape, Is.EqualTo(expected.Shape), $"{what}: shape");
        Assert.That(actual.Data, Is.EqualTo(expected.Data), $"{what}: values");
    }

    /// <summary>Every EvalOutput, EvalLoss and EvalAccuracy of <paramref name="expected"/> is in <paramref name="actual"/> and close.</summary>
    public static void EvalRecordsClose(StepRecord expected, StepRecord actual, double atol, double rtol)
    {
        Assert.That(actual.Phase, Is.EqualTo(RecordPhase.Eval));
        int compared = 0;
        foreach (var entry in expected.Entries.Where(e => e.Key.Kind.IsEval()))
        {
            var other = actual.Find(entry.Key.Kind, entry.Key.Site);
            Assert.That(other, Is.Not.Null, $"{entry.Key} missing");
            Close(entry.Value, other!, atol, rtol, entry.Key.ToString());
            compared++;
        }
        Assert.That(compared, Is.GreaterThan(2), "the expected record holds eval outputs");
    }
}
