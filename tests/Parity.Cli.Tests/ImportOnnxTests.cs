using Parity.Onnx;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Cli.Tests;

[NonParallelizable]
public class ImportOnnxTests
{
    [Test]
    public void An_exported_model_imports_to_a_spec_whose_plan_starts_from_the_models_weights()
    {
        string dir = CliRunner.TempDir();
        var source = Planner.Build(SpecLoader.LoadFile(CliRunner.Fixture("synthetic-shared-bn.json")), 1);
        string model = Path.Combine(dir, "model.onnx");
        OnnxExporter.Export(source.Graph, source.Spec, source.InitialState, DType.Float32, model);

        var (exit, stdout, stderr) = CliRunner.Run("import-onnx", model, "--out", Path.Combine(dir, "imported"));

        Assert.That(exit, Is.EqualTo(0), stdout + stderr);
        Assert.That(stdout, Does.Contain("shared: bn"));
        var plan = Planner.Build(SpecLoader.LoadFile(Path.Combine(dir, "imported", "spec.json")), 1);
        Assert.That(plan.Spec.Init.From, Is.EqualTo("initial-state"));
        Assert.That(plan.InitialState.Entries, Has.Count.EqualTo(source.InitialState.Entries.Count));
        foreach (var e in source.InitialState.Entries)
        {
            bool arrived = plan.InitialState.Entries.Any(x => x.Key.Kind == e.Key.Kind && x.Value.SameShape(e.Value) && x.Value.Data.SequenceEqual(e.Value.Data));
            Assert.That(arrived, Is.True, $"{e.Key} arrives unchanged");
        }
    }

    [Test]
    public void A_state_that_does_not_fit_the_model_is_rejected_at_init_from()
    {
        string dir = CliRunner.TempDir();
        var source = Planner.Build(SpecLoader.LoadFile(CliRunner.Fixture("synthetic-mlp-bn.json")), 1);
        string state = Path.Combine(dir, "state");
        using (var writer = TraceWriter.Create(state, new TraceHeader { Backend = "test", DType = "float32", Scenario = "x", SpecHash = "x" }))
        {
            var wrong = new StepRecord(0, RecordPhase.Initial);
            foreach (var e in source.InitialState.Entries.Skip(1)) wrong.Add(e.Key.Kind, e.Key.Site, e.Value);
            writer.Write(wrong);
        }
        string spec = Path.Combine(dir, "spec.json");
        File.WriteAllText(spec, SpecWriter.Write(source.Spec with { Init = source.Spec.Init with { From = "state" } }));

        var (exit, _, stderr) = CliRunner.Run("run", spec, "--steps", "1", "--out", Path.Combine(dir, "out"));

        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("$.init.from").And.Contain("lacks parameter:l1.weight"));
    }

    [Test]
    public void A_file_that_is_not_onnx_exits_2_with_a_clear_message()
    {
        string dir = CliRunner.TempDir();
        string bogus = Path.Combine(dir, "bogus.onnx");
        File.WriteAllText(bogus, "this is not a protobuf");

        var (exit, _, stderr) = CliRunner.Run("import-onnx", bogus, "--out", Path.Combine(dir, "x"));

        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("bogus.onnx"));
    }
}
