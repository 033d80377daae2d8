using System.Buffers.Binary;
using Google.Protobuf;
using Parity.Backends.OnnxRuntime;
using Parity.Models;
using Parity.Onnx.Protobuf;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;
using OnnxDataType = Parity.Onnx.Protobuf.TensorProto.Types.DataType;
using TensorDim = Parity.Onnx.Protobuf.TensorShapeProto.Types.Dimension;

namespace Parity.Onnx.Tests;

public class OnnxImporterTests
{
    [TestCaseSource(typeof(TestScenarios), nameof(TestScenarios.ExportCases))]
    public void Export_then_import_gives_the_same_model_weights_and_eval_outputs(string fixture, DType dtype, OnnxLinearForm form)
    {
        var plan = TestScenarios.Plan(fixture, steps: 4);
        var (state, _) = TestScenarios.ReferenceCheckpoint(plan, dtype, 4);
        byte[] bytes = OnnxExporter.ToBytes(plan.Graph, plan.Spec, state, dtype, form);

        var (json, imported) = OnnxImporter.Import(bytes, fixture + ".onnx");
        var spec = SpecLoader.Parse(json);

        Assert.That(spec.DType, Is.EqualTo(dtype));
        Assert.That(spec.Model.Inputs, Is.EqualTo(plan.Spec.Model.Inputs));
        Assert.That(spec.Model.Layers.Select(WithoutInitializers), Is.EqualTo(plan.Spec.Model.Layers.Select(WithoutInitializers)));
        Assert.That(spec.Model.Calls, Is.EqualTo(plan.Spec.Model.Calls));
        Assert.That(imported.Phase, Is.EqualTo(RecordPhase.Initial));
        // A model holds its weights and running statistics; the optimizer's state is the trainer's, not the model's.
        var modelState = state.Entries.Where(e => !e.Key.Kind.IsOptimizerState()).ToList();
        Assert.That(imported.Entries.Select(e => e.Key), Is.EquivalentTo(modelState.Select(e => e.Key)));
        foreach (var entry in modelState)
            TensorAssert.Exact(entry.Value.As(dtype), imported.Find(entry.Key.Kind, entry.Key.Site)!, entry.Key.ToString());

        var graph = new ModelGraph(spec.Model);
        var original = OnnxArbiter.Check(plan.Graph, plan.Spec, state, plan.EvalBatch(), dtype);
        var roundTrip = OnnxArbiter.Check(graph, spec, imported, plan.EvalBatch(), dtype);
        TensorAssert.EvalRecordsAgree(plan.Graph, original, roundTrip);
    }

    [Test]
    public void The_imported_spec_runs_a_plan_whose_shapes_match_the_imported_weights()
    {
        var plan = TestScenarios.Plan("synthetic-shared-bn", steps: 1);
        var (json, imported) = OnnxImporter.Import(OnnxExporter.ToBytes(plan.Graph, plan.Spec, plan.InitialState, DType.Float32), "shared.onnx");

        var importedPlan = Planning.Planner.Build(SpecLoader.Parse(json), 2);
        Assert.That(importedPlan.Spec.Name, Is.EqualTo("shared"));
        Assert.That(importedPlan.Spec.Data.Train, Is.TypeOf<SyntheticSourceSpec>(), "data is a synthetic placeholder");
        Assert.That(importedPlan.Graph.Shared, Is.EquivalentTo(new[] { "bn", "relu" }));
        foreach (var entry in importedPlan.InitialState.Entries)
            Assert.That(imported.Find(entry.Key.Kind, entry.Key.Site)!.Shape, Is.EqualTo(entry.Value.Shape), entry.Key.ToString());
    }

    [Test]
    public void A_gemm_without_transB_is_read_as_the_transposed_canonical_weight()
    {
        // A hand-written model as other exporters write it: B stored [in, out], transB = 0, no biases on the last layer.
        double[] w1 = [1, 2, 3, 4, 5, 6]; // [in 2, out 3]
        double[] b1 = [0.5, -0.5, 0.25];
        double[] w2 = [1, -1, 0.5, 2, -2, 1]; // [in 3, out 2]
        var graph = new GraphProto { Name = "foreign" };
        graph.Input.Add(ValueInfoProto.Tensor("x", OnnxDataType.Float, TensorDim.Symbolic("batch"), TensorDim.Fixed(2)));
        graph.Initializer.Add(FloatTensor("fc1.weight", [2, 3], w1));
        graph.Initializer.Add(FloatTensor("fc1.bias", [3], b1));
        graph.Initializer.Add(FloatTensor("fc2.weight", [3, 2], w2));
        graph.Node.Add(Node("Gemm", "/fc1/Gemm", ["x", "fc1.weight", "fc1.bias"], "h"));
        graph.Node.Add(Node("Relu", "/act/Relu", ["h"], "a"));
        graph.Node.Add(Node("Gemm", "/fc2/Gemm", ["a", "fc2.weight"], "logits"));
        graph.Output.Add(ValueInfoProto.Tensor("logits", OnnxDataType.Float, TensorDim.Symbolic("batch"), TensorDim.Fixed(2)));
        byte[] bytes = Model(graph);

        var (json, state) = OnnxImporter.Import(bytes, "foreign.onnx");
        var spec = SpecLoader.Parse(json);

        Assert.That(spec.Model.Layers.Select(l => l.Name), Is.EqualTo(new[] { "fc1", "act_Relu", "fc2" }));
        Assert.That(spec.Model.Calls.Select(c => c.Id), Is.EqualTo(new[] { "h", "a", "logits" }));
        Assert.That(((LinearSpec)spec.Model.Layers[2]).Bias, Is.False);
        Assert.That(state.Find(TensorKind.Parameter, "fc1.weight")!.Data, Is.EqualTo(new double[] { 1, 4, 2, 5, 3, 6 }), "[out 3, in 2]");
        Assert.That(state.Find(TensorKind.Parameter, "fc2.weight")!.Shape, Is.EqualTo(new[] { 2, 3 }));

        var batch = new Data.Batch(new Tensor([2, 2], [1, -1, 0.5, 2], DType.Float32), [0, 1]);
        var foreign = OrtRunner.Run(bytes, batch, DType.Float32, ["logits"])["logits"];
        var imported = OnnxArbiter.Check(new ModelGraph(spec.Model), spec, state, batch, DType.Float32);
        TensorAssert.Agrees(foreign, imported.Find(TensorKind.EvalOutput, "logits")!, TensorKind.EvalOutput, "logits");
    }

    [Test]
    public void A_leading_flatten_of_an_image_input_becomes_a_flat_spec_input()
    {
        var graph = new GraphProto();
        graph.Input.Add(ValueInfoProto.Tensor("image", OnnxDataType.Float, TensorDim.Symbolic("N"), TensorDim.Fixed(1), TensorDim.Fixed(2), TensorDim.Fixed(2)));
        graph.Initializer.Add(FloatTensor("fc.weight", [3, 4], [1, 0, 0, 1, 0.5, 0.5, -1, 2, 0, 0, 3, 1]));
        graph.Initializer.Add(FloatTensor("fc.bias", [3], [0.1, 0.2, 0.3]));
        graph.Node.Add(Node("Flatten", "flat", ["image"], "flat_out"));
        var gemm = Node("Gemm", "fc", ["flat_out", "fc.weight", "fc.bias"], "logits");
        gemm.Attribute.Add(AttributeProto.Int("transB", 1));
        graph.Node.Add(gemm);
        graph.Output.Add(ValueInfoProto.Tensor("logits", OnnxDataType.Float, TensorDim.Symbolic("N"), TensorDim.Fixed(3)));
        byte[] bytes = Model(graph);

        var (json, state) = OnnxImporter.Import(bytes, "image.onnx");
        var spec = SpecLoader.Parse(json);

        Assert.That(spec.Model.Inputs, Is.EqualTo(4));
        Assert.That(spec.Model.Calls.Select(c => c.Id), Is.EqualTo(new[] { "logits" }));
        var batch = new Data.Batch(new Tensor([2, 4], [1, 2, 3, 4, -1, 0.5, 0, 2], DType.Float32), [0, 2]);
        var foreign = OrtRunner.Run(bytes, batch, DType.Float32, ["logits"], inputShape: [2, 1, 2, 2])["logits"];
        var imported = OnnxArbiter.Check(new ModelGraph(spec.Model), spec, state, batch, DType.Float32);
        TensorAssert.Agrees(foreign, imported.Find(TensorKind.EvalOutput, "logits")!, TensorKind.EvalOutput, "logits");
    }

    [Test]
    public void An_unsupported_operator_is_named_with_its_node()
    {
        var graph = new GraphProto();
        graph.Input.Add(ValueInfoProto.Tensor("x", OnnxDataType.Float, TensorDim.Symbolic("N"), TensorDim.Fixed(2)));
        graph.Initializer.Add(FloatTensor("fc.weight", [2, 2], [1, 0, 0, 1]));
        graph.Node.Add(Node("Gemm", "fc", ["x", "fc.weight"], "h"));
        graph.Node.Add(Node("Softplus", "squash", ["h"], "y"));

        var error = Assert.Throws<OnnxImportException>(() => OnnxImporter.Import(Model(graph), "softplus.onnx"));
        Assert.That(error!.OpType, Is.EqualTo("Softplus"));
        Assert.That(error.NodeName, Is.EqualTo("squash"));
        Assert.That(error.Message, Does.StartWith("softplus.onnx: node 'squash' (Softplus): unsupported operator; supported: Gemm"));
    }

    [Test]
    public void A_node_off_the_chain_is_refused()
    {
        var graph = new GraphProto();
        graph.Input.Add(ValueInfoProto.Tensor("x", OnnxDataType.Float, TensorDim.Symbolic("N"), TensorDim.Fixed(2)));
        graph.Node.Add(Node("Relu", "r1", ["x"], "a"));
        graph.Node.Add(Node("Relu", "r2", ["x"], "b"));

        var error = Assert.Throws<OnnxImportException>(() => OnnxImporter.Import(Model(graph), "branch.onnx"));
        Assert.That(error!.Message, Does.Contain("node 'r2' (Relu): does not continue the chain from 'a'"));
    }

    [Test]
    public void An_image_input_asks_for_flattening()
    {
        var graph = new GraphProto();
        graph.Input.Add(ValueInfoProto.Tensor("x", OnnxDataType.Float, TensorDim.Symbolic("N"), TensorDim.Fixed(1), TensorDim.Fixed(28), TensorDim.Fixed(28)));
        graph.Node.Add(Node("Relu", "r", ["x"], "y"));

        var error = Assert.Throws<OnnxImportException>(() => OnnxImporter.Import(Model(graph), "cnn.onnx"));
        Assert.That(error!.Message, Does.Contain("input 'x' has shape [N,1,28,28]").And.Contain("leading Flatten"));
    }

    [Test]
    public void Bytes_that_are_not_an_onnx_model_are_refused()
    {
        var error = Assert.Throws<OnnxImportException>(() => OnnxImporter.Import("{\"not\": \"onnx\"}"u8.ToArray(), "spec.json"));
        Assert.That(error!.Message, Does.StartWith("spec.json: "));
    }

    [Test]
    public void A_missing_file_is_named()
    {
        var error = Assert.Throws<OnnxImportException>(() => OnnxImporter.Import("/nonexistent/model.onnx"));
        Assert.That(error!.Message, Does.StartWith("/nonexistent/model.onnx: cannot read the file"));
    }

    private static LayerSpec WithoutInitializers(LayerSpec layer)
    {
        // Initializer kinds describe how a spec draws weights; an import carries the weights themselves.
        var placeholder = new InitializerSpec("pytorch_default");
        return layer is LinearSpec lin ? lin with { WeightInit = placeholder, BiasInit = placeholder } : layer;
    }

    private static TensorProto FloatTensor(string name, long[] dims, double[] values)
    {
        var raw = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(i * 4), (float)values[i]);
        var tensor = new TensorProto { Name = name, DataType = (int)OnnxDataType.Float, RawData = ByteString.CopyFrom(raw) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    private static NodeProto Node(string op, string name, string[] inputs, string output)
    {
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        return node;
    }

    private static byte[] Model(GraphProto graph)
    {
        var model = new ModelProto { IrVersion = 8, ProducerName = "test", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Version = 17 });
        return model.ToByteArray();
    }
}
