using System.Diagnostics;
using System.Runtime.InteropServices;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;
using TorchSharp;

namespace Parity.Backends.TorchSharp.Tests;

[TestFixture]
public sealed class TorchSharpBackendTests
{
    [Test]
    public void LibTorchLoadsOnThisMachineKindAfterTheBuildFix()
    {
        var description = new TorchSharpBackend().Describe();
        if (!(OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64))
            Assert.Ignore("the Debian 12 fix is for linux-x64; elsewhere TorchSharp loads or not on its own: " + description.Reason);
        Assert.That(description.Available, Is.True, description.Reason);
        Assert.That(description.Reason, Does.Not.Contain("\n"));
        Assert.That(description.Versions["TorchSharp"], Is.EqualTo("0.107.0"));
        Assert.That(description.Versions["libtorch"], Does.StartWith("2.10"));
        Assert.That(description.Capabilities.DTypes, Is.EquivalentTo(new[] { DType.Float32, DType.Float64 }));
        Assert.That(description.Capabilities.FrameworkInit, Is.True);
        Assert.That(description.Capabilities.OptimizerState, Is.True);
    }

    [Test]
    public void TheSessionStartsFromTheInjectedInitialStateExactly()
    {
        TestScenarios.RequireLibTorch();
        var plan = Planner.Build(TestScenarios.Fixture("synthetic-mlp-bn"));
        using var session = new TorchSharpBackend().Open(plan, new BackendOptions(DType.Float32, "cpu"));
        var state = session.ReadState(0);
        Assert.That(state.Phase, Is.EqualTo(RecordPhase.Initial));
        Assert.That(state.Entries.Select(e => e.Key), Is.EqualTo(TraceLayout.Of(plan).StateKeys));
        foreach (var entry in plan.InitialState.Entries)
            Assert.That(state.Find(entry.Key.Kind, entry.Key.Site)!.Data, Is.EqualTo(entry.Value.Data), entry.Key.ToString());
        // Before the first update Adam's count is 0 and its moments are zero.
        var optimizer = state.Entries.Where(e => e.Key.Kind.IsOptimizerState()).ToList();
        Assert.That(optimizer, Has.Count.EqualTo(1 + 2 * plan.Graph.Parameters.Count));
        Assert.That(optimizer.SelectMany(e => e.Value.Data), Is.All.EqualTo(0.0));
    }

    [TestCase("synthetic-mlp-bn")]
    [TestCase("synthetic-layernorm-sgd")]
    public void EveryStepReportsTheUpdateCountAndEverySlotInTheTraceLayout(string fixture)
    {
        TestScenarios.RequireLibTorch();
        var plan = Planner.Build(TestScenarios.Fixture(fixture), stepsOverride: 2);
        var layout = TraceLayout.Of(plan);
        using var session = new TorchSharpBackend().Open(plan, new BackendOptions(DType.Float64, "cpu"));
        for (int step = 1; step <= 2; step++)
        {
            var batch = plan.BatchFor(step);
            var record = session.Step(step, batch, CaptureRequest.Everything);
            Assert.That(layout.Problem(record, CaptureRequest.Everything, batch.Size), Is.Null);
            Assert.That(record.Entries.Select(e => e.Key), Is.EqualTo(layout.Required(RecordPhase.Train, CaptureRequest.Everything)), "canonical order");
            Assert.That(record.Find(TensorKind.OptimizerStep)!.Data, Is.EqualTo(new[] { (double)step }));
            if (step == 1 && plan.Spec.Optimizer is SgdSpec)
            {
                // SGD.cs creates the buffer as a clone of the first gradient: v = mu 0 + g.
                foreach (var p in plan.Graph.Parameters)
                    Assert.That(record.Find(TensorKind.OptimizerSlot, TraceLayout.SlotSite(p.Name, "momentum"))!.Data,
                        Is.EqualTo(record.Find(TensorKind.ParameterGradient, p.Name)!.Data), p.Name);
            }
        }
    }

    [Test]
    public void ASharedBatchNormUpdatesItsRunningStatisticsOncePerCallInCallOrder()
    {
        TestScenarios.RequireLibTorch();
        var spec = TestScenarios.Fixture("synthetic-shared-bn");
        var plan = Planner.Build(spec, stepsOverride: 1);
        var bn = (BatchNormSpec)spec.Model.Layer("bn");
        var calls = plan.Graph.Calls.Where(c => c.Layer.Name == "bn").ToList();
        Assert.That(calls, Has.Count.EqualTo(2));
        using var session = new TorchSharpBackend().Open(plan, new BackendOptions(DType.Float64, "cpu"));
        var record = session.Step(1, plan.BatchFor(1), CaptureRequest.Everything);

        // By hand: run = (1 - m) run + m stat, first with call 1's statistics, then with call 2's; the running
        // variance takes the unbiased batch variance N/(N-1) var (docs/conventions.md section 1, Chainer semantics).
        double m = bn.Momentum, n = spec.Data.BatchSize;
        var mean = new double[bn.Features];
        var variance = Enumerable.Repeat(1.0, bn.Features).ToArray();
        var once = new double[bn.Features];
        foreach (var (call, index) in calls.Select((c, i) => (c, i)))
        {
            var batchMean = record.Find(TensorKind.BatchMean, call.Id)!.Data;
            var batchVariance = record.Find(TensorKind.BatchVariance, call.Id)!.Data;
            for (int f = 0; f < bn.Features; f++)
            {
                mean[f] = (1 - m) * mean[f] + m * batchMean[f];
                variance[f] = (1 - m) * variance[f] + m * batchVariance[f] * n / (n - 1);
                if (index == 0) once[f] = mean[f];
            }
        }
        var runningMean = record.Find(TensorKind.RunningMean, "bn")!.Data;
        var runningVariance = record.Find(TensorKind.RunningVariance, "bn")!.Data;
        Assert.Multiple(() =>
        {
            Assert.That(runningMean, Is.EqualTo(mean).Within(1e-12));
            Assert.That(runningVariance, Is.EqualTo(variance).Within(1e-12));
            Assert.That(runningMean, Is.Not.EqualTo(once).Within(1e-6), "a single update would leave call 1's statistics only");
        });
    }

    [Test]
    public void ABiasedRunningVarianceSpecIsDeclaredAsAConventionMismatch()
    {
        TestScenarios.RequireLibTorch();
        var spec = TestScenarios.Fixture("synthetic-mlp-bn");
        var layers = spec.Model.Layers.Select(l => l is BatchNormSpec { Name: "bn2" } b ? b with { RunningVariance = RunningVarianceEstimator.Biased } : l).ToList();
        var biased = spec with { Model = spec.Model with { Layers = layers } };
        using var session = new TorchSharpBackend().Open(Planner.Build(biased, stepsOverride: 1), new BackendOptions(DType.Float32, "cpu"));

        var mismatch = session.Mismatches.Single();
        int index = layers.FindIndex(l => l.Name == "bn2");
        Assert.That(mismatch.Setting, Is.EqualTo($"$.model.layers[{index}].runningVariance"));
        Assert.That(mismatch.Affects, Is.EquivalentTo(new[] { "runningVariance", "evalOutput", "evalLoss", "evalAccuracy" }));
        Assert.That(mismatch.Backend, Does.Contain("unbiased"));
        Assert.That(mismatch.Value!.GetValue<string>(), Is.EqualTo("unbiased"), "the spec value libtorch computes instead");
    }

    [Test]
    public void TheEpsilonHatAdamFormIsDeclaredAndTheCanonicalSpecsHaveNoMismatch()
    {
        var spec = TestScenarios.Fixture("synthetic-mlp-bn");
        Assert.That(TorchSharpConventions.Mismatches(spec), Is.Empty);
        var hat = spec with { Optimizer = (AdamSpec)spec.Optimizer with { EpsilonForm = EpsilonForm.EpsilonHat } };
        var mismatch = TorchSharpConventions.Mismatches(hat).Single();
        Assert.That(mismatch.Setting, Is.EqualTo("$.optimizer.epsilonForm"));
        Assert.That(mismatch.Affects, Does.Contain("parameter").And.Contain("loss").And.Contain("optimizerSlot").And.Contain("evalAccuracy"));
        Assert.That(mismatch.Value!.GetValue<string>(), Is.EqualTo("sqrtVHat"), "the spec value libtorch computes instead");
    }

    [Test]
    public void Float64ModeComputesInFloat64()
    {
        TestScenarios.RequireLibTorch();
        var plan = Planner.Build(TestScenarios.Fixture("synthetic-mlp-bn"), stepsOverride: 1);
        using var session = new TorchSharpBackend().Open(plan, new BackendOptions(DType.Float64, "cpu"));
        var record = session.Step(1, plan.BatchFor(1), CaptureRequest.Everything);
        Assert.That(record.Entries.Select(e => e.Value.DType), Is.All.EqualTo(DType.Float64));
        var forward = record.Find(TensorKind.Forward, "l1")!.Data;
        Assert.That(forward.Count(v => v != (float)v), Is.GreaterThan(forward.Length / 2), "values carry more than float32 precision");
        Assert.That(session.RuntimeInfo["dtype"], Is.EqualTo("float64"));
    }

    [Test]
    public void FrameworkInitUsesTorchSharpsOwnSeededInitializers()
    {
        TestScenarios.RequireLibTorch();
        var spec = TestScenarios.Fixture("synthetic-mlp-bn");
        var framework = spec with { Init = new InitSpec(InitMode.Framework, 5) };
        var plan = Planner.Build(framework, stepsOverride: 1);
        StepRecord Initial()
        {
            using var session = new TorchSharpBackend().Open(plan, new BackendOptions(DType.Float32, "cpu"));
            Assert.That(session.RuntimeInfo["init"], Does.Contain("torch.manual_seed(5)"));
            return session.ReadState(0);
        }
        var first = Initial();
        var second = Initial();
        var weight = first.Find(TensorKind.Parameter, "l1.weight")!.Data;
        Assert.That(second.Find(TensorKind.Parameter, "l1.weight")!.Data, Is.EqualTo(weight), "same seed, same draws");
        Assert.That(weight, Is.Not.EqualTo(plan.InitialState.Find(TensorKind.Parameter, "l1.weight")!.Data), "not the injected values");
        // PyTorch's default Linear init: U(-1/sqrt(in), 1/sqrt(in)) [P3, P4].
        Assert.That(weight.Max(Math.Abs), Is.LessThanOrEqualTo(1 / Math.Sqrt(20)));
    }

    [Test]
    public void RepeatedSessionsOnOnePlanGiveIdenticalSteps()
    {
        TestScenarios.RequireLibTorch();
        var plan = Planner.Build(TestScenarios.Fixture("synthetic-shared-bn"), stepsOverride: 3);
        var backend = new TorchSharpBackend();
        var first = TestScenarios.Run(backend, plan, new BackendOptions(DType.Float32, "cpu"));
        var second = TestScenarios.Run(backend, plan, new BackendOptions(DType.Float32, "cpu"));
        Assert.That(second, Has.Count.EqualTo(first.Count));
        for (int r = 0; r < first.Count; r++)
            foreach (var entry in first[r].Entries)
                Assert.That(second[r].Find(entry.Key.Kind, entry.Key.Site)!.Data, Is.EqualTo(entry.Value.Data), $"{entry.Key} record {r}");
    }

    [TestCase("tpu", "unknown device 'tpu'")]
    [TestCase("cuda", "no CUDA build")]
    public void AnUnusableDeviceIsABackendErrorNamingIt(string device, string message)
    {
        TestScenarios.RequireLibTorch();
        if (device == "cuda" && torch.cuda.is_available()) Assert.Ignore("this machine has CUDA");
        var plan = Planner.Build(TestScenarios.Fixture("synthetic-mlp-bn"), stepsOverride: 1);
        var error = Assert.Throws<BackendException>(() => new TorchSharpBackend().Open(plan, new BackendOptions(DType.Float32, device)));
        Assert.That(error!.Message, Does.Contain(message));
    }

    [Test]
    public void AnInvalidThreadCountIsABackendErrorNamingTheVariable()
    {
        TestScenarios.RequireLibTorch();
        var plan = Planner.Build(TestScenarios.Fixture("synthetic-mlp-bn"), stepsOverride: 1);
        Environment.SetEnvironmentVariable("PARITY_TORCH_THREADS", "two");
        try
        {
            var error = Assert.Throws<BackendException>(() => new TorchSharpBackend().Open(plan, new BackendOptions(DType.Float32, "cpu")));
            Assert.That(error!.Message, Does.Contain("PARITY_TORCH_THREADS='two'"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("PARITY_TORCH_THREADS", null);
        }
    }

    [Test]
    public void MemoryStaysFlatOverAThousandSteps()
    {
        TestScenarios.RequireLibTorch();
        var spec = TestScenarios.Fixture("synthetic-mlp-bn");
        var plan = Planner.Build(spec, stepsOverride: 1100);
        using var session = new TorchSharpBackend().Open(plan, new BackendOptions(DType.Float32, "cpu"));
        session.ReadState(0);
        // Each record is released as the runner's trace writer releases it, so its pooled arrays serve the next steps and
        // the managed heap does not grow with garbage the collector may keep resident.
        for (int step = 1; step <= 100; step++) session.Step(step, plan.BatchFor(step), CaptureRequest.Everything).Release();
        long liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        long rssBefore = Rss(), rssMiddle = 0;
        for (int step = 101; step <= 1100; step++)
        {
            session.Step(step, plan.BatchFor(step), CaptureRequest.Everything).Release();
            if (step % 100 == 0) session.Evaluate(step, plan.EvalBatch(), CaptureRequest.Everything).Release();
            if (step == 600) rssMiddle = Rss();
        }
        long liveAfter = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        long rssAfter = Rss();
        TestContext.Out.WriteLine($"live tensors {liveBefore} -> {liveAfter}; RSS {rssBefore >> 20} MiB -> {rssMiddle >> 20} MiB (step 600) -> {rssAfter >> 20} MiB");
        Assert.That(liveAfter, Is.LessThanOrEqualTo(liveBefore), "tensors created in a step must not outlive it");
        // Flat means no growth that goes on: the allocator's arenas may settle once (measured up to ~70 MiB over the first
        // 500 steps when other test processes share the machine), a leak keeps growing. A leak of one captured step per
        // step would add ~500 x 60 KB over the last 500 steps, a leaked tensor per step far more.
        Assert.That(rssAfter - rssMiddle, Is.LessThan(40L << 20), "resident memory grew by more than 40 MiB over the last 500 of 1000 steps");
    }

    private static long Rss()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        return process.WorkingSet64;
    }
}
