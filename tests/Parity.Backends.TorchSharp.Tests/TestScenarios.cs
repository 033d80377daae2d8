using Parity.Planning;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Backends.TorchSharp.Tests;

/// <summary>Fixture specs and in-memory runs shared by the tests.</summary>
internal static class TestScenarios
{
    /// <summary>The repository root: the first directory above the test output that holds fixtures/.</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    public static ScenarioSpec Fixture(string name) => SpecLoader.LoadFile(Path.Combine(RepositoryRoot, "fixtures", name + ".json"));

    /// <summary>
    /// A seed 000 fixture cut down for a test: the first <paramref name="trainSamples"/> Fashion-MNIST training
    /// images, 200 test images, batch 100, <paramref name="steps"/> steps, every step captured, and Adam's eps
    /// raised from 1e-8 to 1e-4. At eps 1e-8 float32 agreement is ill-conditioned, not a convention test: a
    /// weight whose gradient is near eps moves by lr g / (|g| + eps), so a gradient rounding error dg becomes a
    /// weight error of about lr eps dg / (|g| + eps)^2, up to lr/eps = 1e6 times dg (measured: one element of
    /// l1.weight with g = 2.2e-8 off by 4e-9 in libtorch's float32 moved 4.6e-4 away at step 1; docs/torchsharp.md).
    /// Ignores the test when the dataset is not installed.
    /// </summary>
    public static ScenarioSpec FashionMnist(string fixture, int steps = 50, int trainSamples = 2000)
    {
        string images = Path.Combine(Planner.FashionMnistDirectory, "train-images-idx3-ubyte.gz");
        if (!File.Exists(images)) Assert.Ignore($"Fashion-MNIST is not installed ({images} is missing; scripts/setup installs dataset-fashion-mnist)");
        var spec = Fixture(fixture);
        var train = (IdxSourceSpec)spec.Data.Train;
        return spec with
        {
            Optimizer = (AdamSpec)spec.Optimizer with { Eps = 1e-4 },
            Data = spec.Data with { Train = train with { Limit = trainSamples }, EvalLimit = 200, BatchSize = 100 },
            Schedule = new ScheduleSpec(steps, null, 10),
            Capture = new CaptureSpec(CaptureSteps.Everything, TensorKinds.All),
        };
    }

    /// <summary>Runs <paramref name="plan"/> in memory: the initial state, every step, and the evaluations.</summary>
    public static List<StepRecord> Run(IBackend backend, Plan plan, BackendOptions options, int? steps = null)
    {
        using var session = backend.Open(plan, options);
        var records = new List<StepRecord> { session.ReadState(0) };
        int last = steps ?? plan.TotalSteps;
        for (int step = 1; step <= last; step++)
        {
            records.Add(session.Step(step, plan.BatchFor(step), plan.CaptureFor(step)));
            if (plan.IsEvalStep(step) || step == last) records.Add(session.Evaluate(step, plan.EvalBatch(), plan.CaptureFor(step)));
        }
        return records;
    }

    /// <summary>Ignores the test, with the backend's own one-line reason, only where libtorch truly cannot load.</summary>
    public static void RequireLibTorch()
    {
        var (loaded, reason) = TorchSharpBackend.NativeStatus;
        if (!loaded) Assert.Ignore(reason);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(Path.Combine(dir.FullName, "fixtures")) && Directory.Exists(Path.Combine(dir.FullName, "scripts")))
                return dir.FullName;
        throw new DirectoryNotFoundException("no repository root (a directory with fixtures/ and scripts/) above " + TestContext.CurrentContext.TestDirectory);
    }
}
