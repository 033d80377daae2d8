using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.TorchSharp.Tests;

[TestFixture]
public sealed class DropoutTests
{
    [SetUp]
    public void SetUp() => TestScenarios.RequireLibTorch();

    [Test]
    public void Framework_masks_are_libtorchs_own_draw_declared_traced_and_applied_as_x_times_m_over_1_minus_p()
    {
        string text = File.ReadAllText(Path.Combine(TestScenarios.RepositoryRoot, "fixtures", "synthetic-dropout.json"))
            .Replace("\"p\": 0.25 }", "\"p\": 0.25, \"masks\": \"framework\" }", StringComparison.Ordinal);
        var plan = Planner.Build(SpecLoader.Parse(text), stepsOverride: 2);
        var backend = new TorchSharpBackend();
        using (var session = backend.Open(plan, new BackendOptions(DType.Float64, "cpu")))
            Assert.That(session.Mismatches.Select(m => (m.Setting, m.Value?.ToString())), Does.Contain(("$.model.layers[2].masks", "framework")));
        var records = TestScenarios.Run(backend, plan, new BackendOptions(DType.Float64, "cpu"));
        var step1 = records.First(r => r.Step == 1 && r.Phase == RecordPhase.Train);
        var mask = step1.Find(TensorKind.DropoutMask, "drop")!.Data;
        Assert.That(mask, Is.All.EqualTo(0.0).Or.EqualTo(1.0));
        Assert.That(mask.Count(v => v == 0), Is.InRange(40, 88), "256 draws that drop with probability 0.25");
        Assert.That(mask, Is.Not.EqualTo(plan.BatchFor(1).DropoutMask("drop").Data).AsCollection, "libtorch's draw, not the harness's");
        var x = step1.Find(TensorKind.Forward, "relu")!.Data;
        Assert.That(step1.Find(TensorKind.Forward, "drop")!.Data, Is.EqualTo(x.Select((v, i) => v * (mask[i] * (1 / 0.75)))).AsCollection);
        var again = TestScenarios.Run(backend, plan, new BackendOptions(DType.Float64, "cpu"));
        Assert.That(again.First(r => r.Step == 1 && r.Phase == RecordPhase.Train).Find(TensorKind.DropoutMask, "drop")!.Data, Is.EqualTo(mask).AsCollection,
            "seeded from the scenario's seed: the same run draws the same masks");
    }
}
