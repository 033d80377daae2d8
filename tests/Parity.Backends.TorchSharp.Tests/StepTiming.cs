using System.Diagnostics;
using Parity.Backends.Reference;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;

namespace Parity.Backends.TorchSharp.Tests;

/// <summary>
/// Step time of torchsharp and the float32 reference on the seed 000 shape (784-100-100-10, batch 1000,
/// Adam): median of 20 steps after 3 warm-up steps, full capture and capture off. Explicit: it measures,
/// it does not test. Run: dotnet test tests/Parity.Backends.TorchSharp.Tests --filter Name~StepTime
/// </summary>
[TestFixture]
[Explicit("a measurement, not a test")]
public sealed class StepTiming
{
    [Test]
    public void StepTimeOfTorchSharpAndTheFloat32Reference()
    {
        TestScenarios.RequireLibTorch();
        string images = Path.Combine(Planner.FashionMnistDirectory, "train-images-idx3-ubyte.gz");
        if (!File.Exists(images)) Assert.Ignore("Fashion-MNIST is not installed");
        var spec = TestScenarios.Fixture("seed000-separate-bn");
        spec = spec with { Data = spec.Data with { Train = (IdxSourceSpec)spec.Data.Train with { Limit = 23_000 }, EvalLimit = 1000 } };
        var plan = Planner.Build(spec, stepsOverride: 23);
        foreach (var capture in new[] { CaptureRequest.Everything, CaptureRequest.ScalarsOnly })
        {
            double torch = Median(new TorchSharpBackend(), plan, capture);
            double reference = Median(ReferenceBackend.Float32(), plan, capture);
            TestContext.Out.WriteLine($"capture {(capture == CaptureRequest.Everything ? "full" : "off ")}: torchsharp {torch:F1} ms, reference-f32 {reference:F1} ms, reference/torchsharp {reference / torch:F2}");
        }
    }

    private static double Median(IBackend backend, Plan plan, CaptureRequest capture)
    {
        using var session = backend.Open(plan, new BackendOptions(DType.Float32, "cpu"));
        session.ReadState(0);
        var times = new List<double>();
        for (int step = 1; step <= 23; step++)
        {
            var batch = plan.BatchFor(step);
            var clock = Stopwatch.StartNew();
            session.Step(step, batch, capture);
            if (step > 3) times.Add(clock.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return (times[9] + times[10]) / 2;
    }
}
