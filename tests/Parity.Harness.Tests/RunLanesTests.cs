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

    private static (string, Verdict, int, int, string?) Judged(Reporting.ComparisonReport c) =>
        (c.Backend, c.Verdict, c.TensorsCompared, c.TensorsFailed, c.FirstDivergence is { } d ? $"{d.Step} {d.Kind}:{d.Site}" : null);
}
