using System.Diagnostics;
using Parity.Tensors;

namespace Parity.Backends.Reference.Tests;

/// <summary>
/// The issue 2 item 10 figure: one reference-f32 training step on 784-100-100-10, batch 1000, Adam, full
/// capture; median of 20 steps after 3 warm-up steps. Explicit: timings do not belong in normal runs.
/// Run: dotnet test tests/Parity.Backends.Reference.Tests -c Release --filter "FullyQualifiedName~StepTiming"
/// </summary>
[Explicit("timing, run by hand in Release")]
public class StepTiming
{
    [TestCase(-1)]
    [TestCase(1)]
    public void MedianReferenceFloat32StepOnTheSeed000Shape(int threads)
    {
        var plan = TestSpecs.Plan("""
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
              "training": { "steps": 23 },
              "capture": { "steps": "all" }
            }
            """);
        using var session = new ReferenceBackend(DType.Float32, threads).Open(plan, new(DType.Float32));
        var batches = Enumerable.Range(1, plan.TotalSteps).Select(plan.BatchFor).ToList();
        // Wall time is the figure; process CPU time is printed too because on a loaded machine (shared by
        // several builds) wall time mostly measures the wait for a core.
        var times = new List<double>();
        var cpu = new List<double>();
        var process = Process.GetCurrentProcess();
        for (int step = 1; step <= plan.TotalSteps; step++)
        {
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            session.Step(step, batches[step - 1], Backends.CaptureRequest.Everything);
            double wall = clock.Elapsed.TotalMilliseconds;
            process.Refresh();
            if (step <= 3) continue;
            times.Add(wall);
            cpu.Add((process.TotalProcessorTime - cpu0).TotalMilliseconds);
        }
        times.Sort();
        cpu.Sort();
        double median = (times[9] + times[10]) / 2;
        TestContext.Out.WriteLine($"reference-f32 step, threads {(threads == -1 ? Environment.ProcessorCount : threads)}, {Environment.ProcessorCount} cores: " +
            $"median {median:F2} ms wall (min {times[0]:F2}, max {times[^1]:F2}), median {(cpu[9] + cpu[10]) / 2:F2} ms process CPU, over {times.Count} steps");
        Assert.That(times, Has.Count.EqualTo(20));
    }
}
