using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Harness;
using Parity.Specs;
using Parity.Tensors;

namespace Parity.Diagnostics.Tests;

public class MetamorphicTests
{
    private static ScenarioSpec Seed002 => Scenario.Fixture("seed002-no-identity");

    [Test]
    public void The_variant_has_an_identity_after_every_linear_call_and_keeps_every_original_call_id()
    {
        var spec = Scenario.Fixture("synthetic-shared-bn");
        var variant = Metamorphic.WithIdentities(spec);
        var ids = variant.Model.Calls.Select(c => c.Id).ToList();
        Assert.That(ids, Is.EqualTo(new[] { "l1", "l1_identity", "bn#1", "relu#1", "l2", "l2_identity", "bn#2", "relu#2", "l3", "l3_identity" }));
        Assert.That(variant.Model.Layers.OfType<IdentitySpec>().Count(), Is.EqualTo(3));
        Assert.That(SpecLoader.Parse(SpecWriter.Write(variant)), Is.Not.Null, "the variant is a valid spec");
    }

    [Test]
    public void Identities_change_nothing_in_the_reference_bit_for_bit()
    {
        string dir = Temp();
        var report = Metamorphic.Execute(Seed002, null, [ReferenceBackend.Float32Name], StandardBackends.Create(), dir, steps: 12);
        var b = report.Backends.Single();
        Assert.That((b.Status, b.Identical, b.IdentityMaxAbs, b.Verdict), Is.EqualTo((RunStatus.Completed, true, 0.0, Verdict.Agree)), b.Conclusion);
        Assert.That(b.Findings, Is.Empty);
        Assert.That(report.ExitCode, Is.EqualTo(ExitCodes.Agree));
        Assert.That(File.Exists(Path.Combine(dir, "metamorphic.json")));
    }

    [Test]
    public void An_initializer_seeded_by_the_layer_count_is_an_initial_weights_mismatch_at_step_zero()
    {
        // The seed 002 hypothesis: a graph-level seed whose per-op seeds derive from the op count, so one extra layer
        // shifts every initializer's draws.
        var registry = new BackendRegistry().Add("op-count-seeded",
            () => new SpecVariantBackend("op-count-seeded", s => s with { Init = s.Init with { Seed = s.Init.Seed + (ulong)s.Model.Calls.Count } }, ReferenceBackend.Float32()),
            DType.Float32);
        var spec = Seed002 with { Init = new InitSpec(InitMode.Framework, 3) };
        var report = Metamorphic.Execute(spec, null, ["op-count-seeded"], registry, Temp(), steps: 12);
        var b = report.Backends.Single();
        Assert.That(b.Identical, Is.False);
        Assert.That(b.FirstDifference, Does.EndWith("@initial0"));
        var f = b.Findings.Single(x => x.Cause == CauseIds.InitialWeightsMismatch);
        Assert.That(f.Location, Is.EqualTo("step 0 initial parameter:dense.weight"));
        Assert.That(b.Conclusion, Does.Contain("RNG-stream shift"));
        Assert.That(report.ExitCode, Is.EqualTo(ExitCodes.Diverge));
    }

    private static string Temp() => Path.Combine(Path.GetTempPath(), "parity-diagnostics-tests", Guid.NewGuid().ToString("N"));
}
