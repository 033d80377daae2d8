using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Tensors;
using Parity.Specs;

namespace Parity.Harness.Tests;

/// <summary>A run's lanes (<see cref="RunRequest.Jobs"/>) change when things run, never what comes out.</summary>
[NonParallelizable]
public sealed class RunLanesTests
{
    [Test]
    public void A_run_on_three_lanes_writes_the_traces_and_judgements_of_a_run_one_after_another()
    {
        NumpyWorker.Require();
        string dir = Path.Combine(Path.GetTempPath(), "parity-lanes", Guid.NewGuid().ToString("N"));
        try
        {
            // A worker (which trains beside the others), the reference and its float32 twin with its envelopes, step-checked.
            string path = RepoPaths.Fixture("synthetic-mlp-bn.json");
            var spec = SpecLoader.LoadFile(path);
            Reporting.RunReport Run(int jobs) => RunSession.Execute(
                new RunRequest(spec, path, [NumpyWorker.Name, "reference-f32"], "reference", Path.Combine(dir, $"jobs{jobs}"), Steps: 4) { Jobs = jobs },
                NumpyWorker.Registry());
            var alone = Run(1);
            var lanes = Run(3);

            Assert.Multiple(() =>
            {
                Assert.That(lanes.Backends.Select(b => (b.Name, b.Status, b.StepsCompleted)), Is.EqualTo(alone.Backends.Select(b => (b.Name, b.Status, b.StepsCompleted))));
                Assert.That(lanes.Comparisons.Select(Judged), Is.EqualTo(alone.Comparisons.Select(Judged)));
                Assert.That(lanes.Comparisons.Select(c => c.StepChecks?.TensorsChecked), Is.EqualTo(alone.Comparisons.Select(c => c.StepChecks?.TensorsChecked)));
                Assert.That(lanes.Matrix, Is.EqualTo(alone.Matrix));
                Assert.That(lanes.Findings.Select(f => (f.Cause, f.Backend, f.Location)), Is.EqualTo(alone.Findings.Select(f => (f.Cause, f.Backend, f.Location))));
                foreach (var b in alone.Backends)
                {
                    Assert.That(File.ReadAllBytes(Path.Combine(dir, "jobs3", b.Trace, "tensors.bin")),
                        Is.EqualTo(File.ReadAllBytes(Path.Combine(dir, "jobs1", b.Trace, "tensors.bin"))), $"{b.Name}'s trace");
                }
                Assert.That(alone.Comparisons.Any(c => c.StepChecks is { TensorsChecked: > 0 }), "something was step-checked");
            });
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Judging_each_backend_as_soon_as_it_trained_gives_the_judgements_of_judging_after_every_backend_trained()
    {
        NumpyWorker.Require();
        string dir = Path.Combine(Path.GetTempPath(), "parity-lanes", Guid.NewGuid().ToString("N"));
        try
        {
            string path = RepoPaths.Fixture("synthetic-mlp-bn.json");
            var spec = SpecLoader.LoadFile(path);
            RunSession Start(string name) => RunSession.Start(
                new RunRequest(spec, path, [NumpyWorker.Name, "reference-f32"], "reference", Path.Combine(dir, name), Steps: 4) { Jobs = 2 });
            var streamed = Start("streamed");
            var together = streamed.RunAndJudge(NumpyWorker.Registry());
            var staged = Start("staged");
            staged.RunBackends(NumpyWorker.Registry());
            var after = staged.Judge();

            // Every check's key, score and verdict, so a comparison made against other traces or envelopes shows.
            static object Figures(Comparison.ComparisonResult? r) => r is null ? "none"
                : (r.Verdict, r.StepsCompared, r.TensorsFailed, r.Envelope, string.Join(";", r.Checks.Select(c => $"{c.Step} {c.Key} {c.Score:R} {c.Passed}")));
            Assert.Multiple(() =>
            {
                Assert.That(streamed.Runs.Select(r => (r.Display, r.Auxiliary, r.Run.Status)), Is.EqualTo(staged.Runs.Select(r => (r.Display, r.Auxiliary, r.Run.Status))));
                Assert.That(together.Select(j => j.Backend), Is.EqualTo(after.Select(j => j.Backend)));
                Assert.That(together.Select(j => Figures(j.Trajectory)), Is.EqualTo(after.Select(j => Figures(j.Trajectory))));
                Assert.That(together.Select(j => Figures(j.StepChecks)), Is.EqualTo(after.Select(j => Figures(j.StepChecks))));
                Assert.That(together.Select(j => j.StepCheckGap), Is.EqualTo(after.Select(j => j.StepCheckGap)));
                Assert.That(together.Count(j => j.StepChecks is not null), Is.EqualTo(2), "both backends were step-checked");
            });
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void A_backend_that_trains_before_the_reference_is_step_checked_before_the_reference_is_done()
    {
        // The reference takes a second longer to open, so reference-f32 trains first and its step checks (which read only
        // its own trace) start while the reference still trains; its trajectory waits for the reference.
        string dir = Path.Combine(Path.GetTempPath(), "parity-lanes", Guid.NewGuid().ToString("N"));
        try
        {
            string path = RepoPaths.Fixture("synthetic-mlp-bn.json");
            var registry = StandardBackends.Create().Add(ReferenceBackend.Float64Name, () => new SlowToOpen(ReferenceBackend.Float64()), DType.Float64);
            var session = RunSession.Start(new RunRequest(SpecLoader.LoadFile(path), path, ["reference-f32"], "reference", dir, Steps: 3) { Jobs = 2 });
            var judged = session.RunAndJudge(registry).Single();
            Assert.Multiple(() =>
            {
                Assert.That(session.Runs.Select(r => r.Run.Status), Is.All.EqualTo(Running.RunStatus.Completed));
                Assert.That(judged.StepChecks?.Verdict, Is.EqualTo(Verdict.Agree), judged.StepCheckGap);
                Assert.That(judged.Trajectory.Verdict, Is.EqualTo(Verdict.Agree));
                Assert.That(judged.StepChecks?.StepsCompared, Is.EqualTo(3));
            });
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void A_run_takes_no_more_lanes_than_its_memory_estimate_fits_in_the_budget()
    {
        string path = RepoPaths.Fixture("synthetic-mlp-bn.json");
        var request = new RunRequest(SpecLoader.LoadFile(path), path, ["reference-f32"], "reference", Path.GetTempPath(), Steps: 3) { Jobs = 4 };
        var memory = Planning.Planner.Build(request.Spec, request.Steps, long.MaxValue).Memory!;
        long lane = memory.TotalBytes - memory.SharedBytes;
        Assert.Multiple(() =>
        {
            Assert.That(RunSession.Start(request, long.MaxValue).Request.Jobs, Is.EqualTo(4), "as asked when the memory is there");
            Assert.That(RunSession.Start(request, memory.SharedBytes + 2 * lane).Request.Jobs, Is.EqualTo(2));
            Assert.That(RunSession.Start(request, memory.TotalBytes).Request.Jobs, Is.EqualTo(1));
        });
    }

    private sealed class SlowToOpen(IBackend inner) : IBackend
    {
        public string Name => inner.Name;

        public BackendDescription Describe() => inner.Describe();

        public IBackendSession Open(Planning.Plan plan, BackendOptions options)
        {
            Thread.Sleep(1000);
            return inner.Open(plan, options);
        }
    }

    private static (string, Verdict, int, int, string?) Judged(Reporting.ComparisonReport c) =>
        (c.Backend, c.Verdict, c.TensorsCompared, c.TensorsFailed, c.FirstDivergence is { } d ? $"{d.Step} {d.Kind}:{d.Site}" : null);
}
