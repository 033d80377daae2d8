using Parity.Harness;

namespace Parity.Diagnostics.Tests;

public class RunSessionFindingsTests
{
    [Test]
    public void Parity_run_puts_shared_stateful_layer_into_the_report_for_each_backend_with_the_eval_train_gap()
    {
        string dir = Path.Combine(Path.GetTempPath(), "parity-diagnostics-tests", Guid.NewGuid().ToString("N"));
        var spec = Scenario.Fixture("synthetic-shared-bn");
        var report = RunSession.Execute(new RunRequest(spec, null, ["reference-f32"], "reference", dir, Steps: 10), StandardBackends.Create());
        var shared = report.Findings.Where(f => f.Cause == CauseIds.SharedStatefulLayer).ToList();
        Assert.That(shared.Select(f => f.Backend), Is.EquivalentTo(new[] { "reference", "reference-f32" }));
        Assert.That(shared[0].Evidence, Contains.Key("accuracyGapTrainMinusEval"));
        Assert.That(shared[0].Location, Is.EqualTo("step 1 train runningMean:bn"));
        Assert.That(File.ReadAllText(Path.Combine(dir, "report.json")), Does.Contain("\"shared-stateful-layer\""));
        // Both backends update the shared instance alike: a finding about the spec, shown once for both.
        Assert.That(shared.Select(f => f.Kind), Is.All.EqualTo(FindingKind.Spec));
        Assert.That(Reporting.FindingGroup.Of(report.Findings).Where(g => g.Cause == CauseIds.SharedStatefulLayer).Select(g => g.Backends),
            Is.EqualTo(new[] { new[] { "reference", "reference-f32" } }));
        Assert.That(File.ReadAllText(Path.Combine(dir, "summary.md")), Does.Contain("about the spec: **shared-stateful-layer** (reference, reference-f32 at"));
    }
}
