using Parity.Backends.OnnxRuntime;
using Parity.Onnx.Protobuf;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Onnx.Tests;

public class OnnxExporterTests
{
    [TestCaseSource(typeof(TestScenarios), nameof(TestScenarios.ExportCases))]
    public void Every_call_output_of_an_exported_checkpoint_matches_the_reference_eval_outputs(string fixture, DType dtype, OnnxLinearForm form)
    {
        var plan = TestScenarios.Plan(fixture, steps: 6);
        var (state, referenceEval) = TestScenarios.ReferenceCheckpoint(plan, dtype, 6);
        string dir = TestScenarios.TempDirectory();
        try
        {
            string path = Path.Combine(dir, "model.onnx");
            OnnxExporter.Export(plan.Graph, plan.Spec, state, dtype, path, form);
            var onnx = OrtRunner.Run(File.ReadAllBytes(path), plan.EvalBatch(), dtype, plan.Graph.Calls.Select(c => c.Id).ToArray());
            foreach (var call in plan.Graph.Calls)
                TensorAssert.Agrees(referenceEval.Find(TensorKind.EvalOutput, call.Id)!, onnx[call.Id], TensorKind.EvalOutput, $"{fixture} {dtype} {form} evalOutput:{call.Id}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Dropout_exports_as_inference_mode_dropout_with_its_drop_ratio()
    {
        var plan = TestScenarios.Plan("synthetic-dropout", steps: 1);
        var model = ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(plan.Graph, plan.Spec, plan.InitialState, DType.Float32));
        Assert.That(model.Graph.Node.Select(n => n.OpType), Is.EqualTo(new[] { "Gemm", "Relu", "Dropout", "Gemm" }));
        Assert.That(model.Graph.Node.Single(n => n.OpType == "Dropout").Input, Is.EqualTo(new[] { "relu", "drop/ratio" }),
            "no training_mode input: inference mode, the identity");
        var ratio = model.Graph.Initializer.Single(t => t.Name == "drop/ratio");
        Assert.That((ratio.Dims.Count, BitConverter.ToSingle(ratio.RawData.ToByteArray())), Is.EqualTo((0, 0.25f)));
    }

    [Test]
    public void Activations_export_as_their_operators_with_every_setting_written_and_gelu_raises_the_opset_to_20()
    {
        var plan = TestScenarios.Plan("synthetic-activations", steps: 1);
        var model = ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(plan.Graph, plan.Spec, plan.InitialState, DType.Float32));

        Assert.That(model.OpsetImport.Single().Version, Is.EqualTo(OnnxExporter.GeluOpset));
        Assert.That(model.IrVersion, Is.EqualTo(OnnxExporter.GeluIrVersion));
        Assert.That(model.Graph.Node.Select(n => n.OpType), Is.EqualTo(new[]
        {
            "Gemm", "Gelu", "Gemm", "LeakyRelu", "Gemm", "Elu", "Gemm", "Sigmoid", "Mul", "Tanh", "Gemm", "Sigmoid", "Gelu", "Gemm",
        }));
        var nodes = model.Graph.Node.ToDictionary(n => n.Name);
        Assert.That(nodes["gelu"].Find("approximate")!.S.ToStringUtf8(), Is.EqualTo("none"));
        Assert.That(nodes["gelu_tanh"].Find("approximate")!.S.ToStringUtf8(), Is.EqualTo("tanh"));
        Assert.That(nodes["leaky"].Find("alpha")!.F, Is.EqualTo(0.1f), "written, not ONNX's default 0.01");
        Assert.That(nodes["elu"].Find("alpha")!.F, Is.EqualTo(1f));
        Assert.That(nodes["silu"].Input, Is.EqualTo(new[] { "l4", "silu/sigmoid" }), "SiLU is x * Sigmoid(x)");
    }

    [Test]
    public void Onnx_runtime_refuses_a_float64_elu_by_naming_the_operator()
    {
        var plan = TestScenarios.Plan("synthetic-activations", steps: 1);
        var error = Assert.Throws<Parity.Backends.BackendException>(() => OnnxArbiter.Check(plan.Graph, plan.Spec, plan.InitialState, plan.EvalBatch(), DType.Float64))!;
        Assert.That(error.Message, Does.Contain("float64").And.Contain("NotImplemented"));
    }

    [Test]
    public void The_exported_graph_has_one_dynamic_batch_input_and_every_call_id_as_an_output()
    {
        var plan = TestScenarios.Plan("synthetic-mlp-bn", steps: 1);
        var model = ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(plan.Graph, plan.Spec, plan.InitialState, DType.Float32));

        Assert.That(model.OpsetImport.Single().Version, Is.EqualTo(OnnxExporter.Opset));
        Assert.That(model.Graph.Input.Single().Name, Is.EqualTo("input"));
        Assert.That(model.Graph.Input.Single().Shape!.Select(d => d.Text), Is.EqualTo(new[] { "N", "20" }));
        Assert.That(model.Graph.Output.Select(o => o.Name), Is.EqualTo(plan.Graph.Calls.Select(c => c.Id)));
        Assert.That(model.Graph.Output.Last().Shape!.Select(d => d.Text), Is.EqualTo(new[] { "N", "5" }));
        Assert.That(model.Graph.Node.Select(n => n.OpType),
            Is.EqualTo(new[] { "Gemm", "BatchNormalization", "Relu", "Gemm", "BatchNormalization", "Relu", "Gemm" }));
        var bn = model.Graph.Node[1];
        Assert.That(bn.Find("epsilon")!.F, Is.EqualTo(1e-5f));
        Assert.That(bn.Find("momentum")!.F, Is.EqualTo(0.9f), "ONNX momentum weighs the old statistic: 1 - 0.1");
        Assert.That(model.Graph.Node[0].Find("transB")!.I, Is.EqualTo(1));
    }

    [Test]
    public void A_shared_batchnorm_is_one_set_of_initializers_read_by_both_calls_and_uses_its_blended_statistics()
    {
        var plan = TestScenarios.Plan("synthetic-shared-bn", steps: 8);
        var (state, referenceEval) = TestScenarios.ReferenceCheckpoint(plan, DType.Float64, 8);
        var model = ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(plan.Graph, plan.Spec, state, DType.Float64));

        var bnNodes = model.Graph.Node.Where(n => n.OpType == "BatchNormalization").ToList();
        Assert.That(bnNodes.Select(n => n.Name), Is.EqualTo(new[] { "bn#1", "bn#2" }));
        Assert.That(bnNodes[0].Input.Skip(1), Is.EqualTo(bnNodes[1].Input.Skip(1)));
        Assert.That(model.Graph.Initializer.Count(t => t.Name == "bn.running_mean"), Is.EqualTo(1));

        var onnx = OnnxArbiter.Check(plan.Graph, plan.Spec, state, plan.EvalBatch(), DType.Float64);
        TensorAssert.EvalRecordsAgree(plan.Graph, referenceEval, onnx);
    }

    [Test]
    public void A_non_affine_batchnorm_is_exported_with_constant_unit_scale_and_zero_bias()
    {
        string json = File.ReadAllText(Path.Combine(TestScenarios.RepositoryRoot, "fixtures", "synthetic-mlp-bn.json"))
            .Replace("\"runningVariance\": \"unbiased\" }", "\"runningVariance\": \"unbiased\", \"affine\": false }", StringComparison.Ordinal);
        var spec = SpecLoader.Parse(json, Path.Combine(TestScenarios.RepositoryRoot, "fixtures"));
        Assert.That(spec.Model.Layers.OfType<BatchNormSpec>().All(b => !b.Affine), "the test spec is non-affine");
        var plan = Planner.Build(spec, 5);
        var (state, referenceEval) = TestScenarios.ReferenceCheckpoint(plan, DType.Float64, 5);

        var model = ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(plan.Graph, plan.Spec, state, DType.Float64));
        Assert.That(model.Graph.Node[1].Input, Is.EqualTo(new[] { "l1", "bn1.constant_scale", "bn1.constant_bias", "bn1.running_mean", "bn1.running_var" }));
        TensorAssert.EvalRecordsAgree(plan.Graph, referenceEval, OnnxArbiter.Check(plan.Graph, plan.Spec, state, plan.EvalBatch(), DType.Float64));
    }

    [Test]
    public void A_state_without_a_running_statistic_is_refused_with_its_name()
    {
        var plan = TestScenarios.Plan("synthetic-mlp-bn", steps: 1);
        var partial = new StepRecord(0, RecordPhase.Initial);
        foreach (var e in plan.InitialState.Entries.Where(e => e.Key != new TensorKey(TensorKind.RunningVariance, "bn2")))
            partial.Add(e.Key.Kind, e.Key.Site, e.Value);

        var error = Assert.Throws<ArgumentException>(() => OnnxExporter.ToBytes(plan.Graph, plan.Spec, partial, DType.Float32));
        Assert.That(error!.Message, Does.Contain("runningVariance entry for 'bn2'"));
    }

    [Test]
    public void A_parameter_in_the_wrong_layout_is_refused()
    {
        var plan = TestScenarios.Plan("synthetic-mlp-bn", steps: 1);
        var transposed = new StepRecord(0, RecordPhase.Initial);
        foreach (var e in plan.InitialState.Entries)
            transposed.Add(e.Key.Kind, e.Key.Site, e.Key.Site == "l1.weight" ? e.Value.Transpose2D() : e.Value);

        var error = Assert.Throws<ArgumentException>(() => OnnxExporter.ToBytes(plan.Graph, plan.Spec, transposed, DType.Float32));
        Assert.That(error!.Message, Does.Contain("'l1.weight' has shape [20,32]"));
    }
}
