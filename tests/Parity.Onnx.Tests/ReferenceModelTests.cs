using System.Text.Json;
using System.Text.Json.Nodes;
using Parity.Backends;
using Parity.Backends.OnnxRuntime;
using Parity.Backends.Reference;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Onnx.Tests;

/// <summary>
/// reference-models/onnx/: the seed-like fixtures exported at their final step, trained by
/// reference-f32, with the reference's eval outputs (first rows of every call, loss, accuracy) beside
/// them. Re-evaluating the files in ONNX Runtime must reproduce those outputs. Seed 000 (6000 steps of
/// Fashion-MNIST) is left out: too long for a test run.
/// </summary>
public class ReferenceModelTests
{
    /// <summary>Fixtures with a stored ONNX model.</summary>
    public static readonly string[] Models = ["synthetic-mlp-bn", "synthetic-shared-bn"];

    private const int StoredRows = 8;

    private static string Directory_ => Path.Combine(TestScenarios.RepositoryRoot, "reference-models", "onnx");

    [TestCaseSource(nameof(Models))]
    public void A_stored_model_re_evaluated_in_onnx_runtime_reproduces_the_stored_reference_outputs(string fixture)
    {
        var stored = JsonNode.Parse(File.ReadAllText(Path.Combine(Directory_, fixture + ".json")))!;
        var spec = TestScenarios.Fixture(fixture);
        Assert.That((string)stored["specHash"]!, Is.EqualTo(SpecLoader.Hash(spec)),
            $"fixtures/{fixture}.json changed since the reference model was written; regenerate it (docs/onnx.md)");
        var plan = Planner.Build(spec);
        var graph = plan.Graph;

        var outputs = OrtRunner.Run(File.ReadAllBytes(Path.Combine(Directory_, fixture + ".onnx")), plan.EvalBatch(), DType.Float32,
            graph.Calls.Select(c => c.Id).ToArray());

        foreach (var call in graph.Calls)
        {
            var rows = stored["outputs"]![call.Id]!.AsArray();
            var expected = new Tensor([rows.Count, call.OutWidth], rows.SelectMany(r => r!.AsArray().Select(v => (double)v!)).ToArray(), DType.Float32);
            var actual = new Tensor([rows.Count, call.OutWidth], outputs[call.Id].Data[..(rows.Count * call.OutWidth)], DType.Float32);
            TensorAssert.Agrees(expected, actual, TensorKind.EvalOutput, $"{fixture} evalOutput:{call.Id}");
        }

        // The logits of every eval sample, the loss and the accuracy, judged as the harness judges an eval record: the
        // accuracy may differ only by samples whose margin lies within the logits' observed error.
        string last = graph.Calls[^1].Id;
        var logits = stored["logits"]!.AsArray();
        var storedRecord = new StepRecord((int)stored["step"]!, RecordPhase.Eval)
            .Add(TensorKind.EvalOutput, last, new Tensor([logits.Count, graph.OutputWidth], logits.SelectMany(r => r!.AsArray().Select(v => (double)v!)).ToArray(), DType.Float32))
            .AddScalar(TensorKind.EvalLoss, (double)stored["evalLoss"]!, DType.Float32)
            .AddScalar(TensorKind.EvalAccuracy, (double)stored["evalAccuracy"]!, DType.Float32);
        var (loss, accuracy) = OnnxArbiter.LossAndAccuracy(outputs[last], plan.EvalBatch().Labels);
        var ortRecord = new StepRecord(storedRecord.Step, RecordPhase.Eval)
            .Add(TensorKind.EvalOutput, last, outputs[last])
            .AddScalar(TensorKind.EvalLoss, loss, DType.Float32)
            .AddScalar(TensorKind.EvalAccuracy, accuracy, DType.Float32);
        TensorAssert.EvalRecordsAgree(graph, storedRecord, ortRecord);
    }

    /// <summary>Writes reference-models/onnx/ again; run by hand after a fixture or the exporter changes.</summary>
    [Test]
    [Explicit("writes reference-models/onnx/; run by hand: dotnet test tests/Parity.Onnx.Tests --filter Name=Regenerate_the_reference_models")]
    public void Regenerate_the_reference_models()
    {
        Directory.CreateDirectory(Directory_);
        foreach (string fixture in Models) Write(fixture);
    }

    private static void Write(string fixture)
    {
        var plan = TestScenarios.Plan(fixture);
        string trace = TestScenarios.TempDirectory();
        try
        {
            var run = ScenarioRunner.Run(plan, ReferenceBackend.Float32(), new BackendOptions(DType.Float32), trace);
            Assert.That(run.Status, Is.EqualTo(RunStatus.Completed), run.Message);
            var records = TraceReader.Open(trace).Records().ToList();
            var state = records.Last(r => r.Phase == RecordPhase.Train);
            var eval = records.Last(r => r.Phase == RecordPhase.Eval);
            Assert.That((state.Step, eval.Step), Is.EqualTo((plan.TotalSteps, plan.TotalSteps)));

            OnnxExporter.Export(plan.Graph, plan.Spec, state, DType.Float32, Path.Combine(Directory_, fixture + ".onnx"));
            var outputs = new JsonObject();
            foreach (var call in plan.Graph.Calls)
            {
                var value = eval.Find(TensorKind.EvalOutput, call.Id)!;
                var rows = new JsonArray();
                for (int r = 0; r < StoredRows; r++)
                    rows.Add(new JsonArray(value.Data.Skip(r * call.OutWidth).Take(call.OutWidth).Select(v => (JsonNode)JsonValue.Create(v)).ToArray()));
                outputs[call.Id] = rows;
            }
            var logits = eval.Find(TensorKind.EvalOutput, plan.Graph.Calls[^1].Id)!;
            var allRows = new JsonArray();
            for (int r = 0; r < logits.Shape[0]; r++)
                allRows.Add(new JsonArray(logits.Data.Skip(r * plan.Graph.OutputWidth).Take(plan.Graph.OutputWidth).Select(v => (JsonNode)JsonValue.Create(v)).ToArray()));
            var document = new JsonObject
            {
                ["format"] = "parity-onnx-reference",
                ["version"] = 1,
                ["fixture"] = $"fixtures/{fixture}.json",
                ["specHash"] = SpecLoader.Hash(plan.Spec),
                ["producer"] = ReferenceBackend.Float32Name,
                ["dtype"] = "float32",
                ["step"] = state.Step,
                ["evalSamples"] = plan.EvalBatch().Size,
                ["evalLoss"] = eval.Find(TensorKind.EvalLoss)!.Data[0],
                ["evalAccuracy"] = eval.Find(TensorKind.EvalAccuracy)!.Data[0],
                ["rowsStored"] = StoredRows,
                ["outputs"] = outputs,
                ["logits"] = allRows,
            };
            File.WriteAllText(Path.Combine(Directory_, fixture + ".json"), document.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        }
        finally
        {
            Directory.Delete(trace, recursive: true);
        }
    }
}
