using Parity.Backends.Workers.Protocol;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;

namespace Parity.Backends.Workers.Tests;

/// <summary>
/// Protocol overhead (docs/worker-protocol.md section 8): the round trip the harness sees per step against the worker's own
/// compute time, on 784-100-100-10 with two batchnorms, batch 1000, Adam, every tensor captured.
/// Run with: dotnet test tests/Parity.Backends.Workers.Tests --filter "Category=Benchmark"
/// </summary>
[Explicit("benchmark: run on demand"), Category("Benchmark")]
public class ProtocolOverheadBenchmark
{
    private const string Spec = """
        {
          "name": "overhead-784-100-100-10", "seed": 1,
          "model": { "inputs": 784,
            "layers": [
              { "name": "l1", "type": "linear", "in": 784, "out": 100 },
              { "name": "bn1", "type": "batchnorm", "features": 100, "momentum": 0.1, "eps": 1e-5, "runningVariance": "biased" },
              { "name": "relu", "type": "relu" },
              { "name": "l2", "type": "linear", "in": 100, "out": 100 },
              { "name": "bn2", "type": "batchnorm", "features": 100, "momentum": 0.1, "eps": 1e-5, "runningVariance": "biased" },
              { "name": "l3", "type": "linear", "in": 100, "out": 10 } ],
            "calls": ["l1", "bn1", "relu", "l2", "bn2", "relu", "l3"] },
          "optimizer": { "type": "adam", "lr": 0.001, "eps": 1e-8 },
          "data": { "train": { "type": "synthetic", "generator": "gaussian", "samples": 3000, "features": 784, "classes": 10, "seed": 1, "teacherSeed": 2 },
                    "batchSize": 1000, "shuffleSeed": 3 },
          "training": { "steps": 12 }, "evaluation": { "every": 0 }
        }
        """;

    [TestCaseSource(typeof(WorkerConformanceTests), nameof(WorkerConformanceTests.Workers))]
    public void Round_trip_per_step_against_the_workers_compute_time(string worker)
    {
        var backend = WorkerRegistry.BuiltIns().Single(b => b.Name == worker).Factory();
        if (backend.Describe() is { Available: false } d) Assert.Ignore(d.Reason);
        var plan = Planner.Build(SpecLoader.Parse(Spec), 12);
        using var session = (WorkerSession)backend.Open(plan, new BackendOptions(DType.Float32));
        for (int step = 1; step <= plan.TotalSteps; step++) session.Step(step, plan.BatchFor(step), CaptureRequest.Everything);
        var warm = session.Timings.Skip(2).ToList();
        double roundTrip = WorkerConformanceTests.Median(warm.Select(t => t.RoundTripMs));
        double compute = WorkerConformanceTests.Median(warm.Select(t => t.ComputeMs));
        foreach (var t in warm) TestContext.Out.WriteLine($"  step {t.Step}: round trip {t.RoundTripMs:F1} = write {t.WriteMs:F1} + wait {t.WaitMs:F1} (compute {t.ComputeMs:F1}) + decode {t.RoundTripMs - t.WriteMs - t.WaitMs:F1}");
        TestContext.Out.WriteLine($"{worker}: median round trip {roundTrip:F1} ms, worker compute {compute:F1} ms, ratio {roundTrip / compute:F2} over {warm.Count} steps");
        Assert.That(roundTrip, Is.GreaterThanOrEqualTo(compute));
    }
}
