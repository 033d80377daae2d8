using System.Diagnostics;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;

namespace Parity.Backends.Native.Tests;

/// <summary>
/// The issue 4 item 4 figures: wall time of one native step (median after warm-up, each step followed by
/// <see cref="NativeSession.Synchronize"/>) and kernel launches per step. Explicit: timings do not belong in normal
/// runs. On a machine with CUDA the same test times the CUDA device.
/// Run: dotnet test tests/Parity.Backends.Native.Tests -c Release --filter "FullyQualifiedName~StepTiming"
/// </summary>
[Explicit("timing, run by hand in Release")]
public class StepTiming
{
    [Test]
    public void Median_native_step_on_the_tiny_shared_batchnorm_spec() =>
        Time(TinySpecs.Plan("synthetic-shared-bn.json", 13), "tiny synthetic-shared-bn (20-16-16-5, batch 16)");

    [Test]
    public void Median_native_step_on_the_seed000_shape() => Time(Planner.Build(SpecLoader.Parse("""
        {
          "name": "timing-784-100-100-10",
          "seed": 1,
          "dtype": "float32",
          "model": {
            "inputs": 784,
            "layers": [
              { "name": "l1", "type": "linear", "in": 784, "out": 100, "init": { "weight": "he_normal", "bias": "zeros" } },
              { "name": "bn1", "type": "batchnorm", "features": 100, "momentum": 0.1, "eps": 1e-3, "runningVariance": "unbiased" },
              { "name": "relu", "type": "relu" },
              { "name": "l2", "type": "linear", "in": 100, "out": 100, "init": { "weight": "he_normal", "bias": "zeros" } },
              { "name": "bn2", "type": "batchnorm", "features": 100, "momentum": 0.1, "eps": 1e-3, "runningVariance": "unbiased" },
              { "name": "l3", "type": "linear", "in": 100, "out": 10 }
            ],
            "calls": ["l1", "bn1", "relu", "l2", "bn2", "relu", "l3"]
          },
          "optimizer": { "type": "adam", "lr": 0.01, "eps": 1e-8 },
          "data": {
            "train": { "type": "synthetic", "generator": "teacher", "samples": 3000, "features": 784, "classes": 10, "seed": 1, "teacherSeed": 2 },
            "batchSize": 1000,
            "shuffleSeed": 3
          },
          "training": { "steps": 13 }
        }
        """)), "784-100-100-10, batch 1000");

    private static void Time(Plan plan, string what)
    {
        string? device = Environment.GetEnvironmentVariable("PARITY_NATIVE_DEVICE");
        using var session = NativeBackend.OpenNative(plan, new BackendOptions(DType.Float32, device));
        var times = new List<double>();
        long launchesBefore = 0, launchesPerStep = 0;
        for (int step = 1; step <= plan.TotalSteps; step++)
        {
            var batch = plan.BatchFor(step);
            launchesBefore = session.KernelLaunches;
            var clock = Stopwatch.StartNew();
            session.Step(step, batch, CaptureRequest.ScalarsOnly);
            session.Synchronize();
            double wall = clock.Elapsed.TotalMilliseconds;
            launchesPerStep = session.KernelLaunches - launchesBefore;
            if (step > 3) times.Add(wall);
        }
        times.Sort();
        TestContext.Out.WriteLine($"native step on {session.Device.Summary}, {what}: median {times[times.Count / 2]:F1} ms wall " +
            $"(min {times[0]:F1}, max {times[^1]:F1}) over {times.Count} steps; {launchesPerStep} kernel launches per step");
        Assert.That(launchesPerStep, Is.GreaterThan(0));
    }
}
