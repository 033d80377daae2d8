using System.Buffers.Binary;
using Google.Protobuf;
using Parity.Models;
using Parity.Onnx.Protobuf;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;
using OnnxDataType = Parity.Onnx.Protobuf.TensorProto.Types.DataType;
using TensorDim = Parity.Onnx.Protobuf.TensorShapeProto.Types.Dimension;

namespace Parity.Onnx;

/// <summary>How a linear layer is written in ONNX.</summary>
public enum OnnxLinearForm
{
    /// <summary>One <c>Gemm</c> node with <c>transB = 1</c>, so the weight keeps the canonical [out, in] layout.</summary>
    Gemm,

    /// <summary><c>MatMul</c> with the transposed weight [in, out], then <c>Add</c> of the bias (the form many exporters produce).</summary>
    MatMulAdd,
}

/// <summary>
/// Writes a spec's model with a chosen state (parameters and running statistics, e.g. a backend's
/// checkpoint at a step) as an ONNX model in inference mode (docs/onnx.md). Every call site's output
/// is also a graph output named by its call id, so intermediate values need no model surgery; the
/// last call's output is the logits. A shared instance is one set of initializers used by several nodes.
/// </summary>
public static class OnnxExporter
{
    /// <summary>The default-domain opset written: 17 is the first with LayerNormalization.</summary>
    public const int Opset = 17;

    /// <summary>The IR version that goes with opset 17 (onnx/docs/Versioning.md: IR 8 covers opsets up to 17/18).</summary>
    public const int IrVersion = 8;

    /// <summary>The opset written instead of <see cref="Opset"/> when the model has a GELU: 20 is the first with Gelu.</summary>
    public const int GeluOpset = 20;

    /// <summary>The IR version that goes with opset 20 (onnx/docs/Versioning.md: IR 9 covers opsets 19 and 20).</summary>
    public const int GeluIrVersion = 9;

    /// <summary>The opset a model is written with: <see cref="GeluOpset"/> when it has a GELU, else <see cref="Opset"/>.</summary>
    public static int OpsetFor(ModelGraph graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        return graph.Calls.Any(c => c.Layer is GeluSpec) ? GeluOpset : Opset;
    }

    /// <summary>Name of the graph input, shape [N, inputs] with a symbolic batch dimension <c>N</c>.</summary>
    public const string InputName = "input";

    /// <summary>Name of the symbolic batch dimension.</summary>
    public const string BatchDimension = "N";

    /// <summary>Initializer name of a batchnorm instance's running mean.</summary>
    public static string RunningMeanName(string instance) => instance + ".running_mean";

    /// <summary>Initializer name of a batchnorm instance's running variance.</summary>
    public static string RunningVarianceName(string instance) => instance + ".running_var";

    /// <summary>Initializer name of the all-ones scale a non-affine normalization gets (ONNX requires a scale input).</summary>
    public static string ConstantScaleName(string instance) => instance + ".constant_scale";

    /// <summary>Initializer name of the all-zeros bias a non-affine batchnorm gets.</summary>
    public static string ConstantBiasName(string instance) => instance + ".constant_bias";

    /// <summary>Initializer name of a linear weight in the <see cref="OnnxLinearForm.MatMulAdd"/> form ([in, out]).</summary>
    public static string TransposedWeightName(string instance) => instance + ".weight_transposed";

    /// <summary>Writes the model to <paramref name="path"/> (created or overwritten).</summary>
    /// <param name="graph">The resolved model.</param>
    /// <param name="spec">The spec (batchnorm and layernorm eps, momentum; name for the file's documentation).</param>
    /// <param name="state">Parameters (site = parameter name, canonical layout) and running statistics (site = instance).</param>
    /// <param name="dtype">Element type of the model: float32 or float64.</param>
    /// <param name="path">Destination file.</param>
    /// <param name="linearForm">Gemm (default) or MatMul+Add.</param>
    /// <exception cref="ArgumentException">The state lacks an entry or has a wrong shape; a call id clashes with another name.</exception>
    public static void Export(ModelGraph graph, ScenarioSpec spec, StepRecord state, DType dtype, string path,
        OnnxLinearForm linearForm = OnnxLinearForm.Gemm)
    {
        byte[] bytes = ToBytes(graph, spec, state, dtype, linearForm);
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>The serialized model, as <see cref="Export"/> writes it.</summary>
    public static byte[] ToBytes(ModelGraph graph, ScenarioSpec spec, StepRecord state, DType dtype,
        OnnxLinearForm linearForm = OnnxLinearForm.Gemm) =>
        Build(graph, spec, state, dtype, linearForm).ToByteArray();

    internal static ModelProto Build(ModelGraph graph, ScenarioSpec spec, StepRecord state, DType dtype, OnnxLinearForm linearForm)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(state);
        var builder = new GraphBuilder(graph, state, dtype);
        var onnxGraph = builder.Graph;
        onnxGraph.Name = spec.Name;
        onnxGraph.DocString = $"Scenario '{spec.Name}' at step {state.Step} ({state.Phase.ToString().ToLowerInvariant()} state), {dtype.Name()}, eval mode. " +
            "Every call site's output is a graph output named by its call id; the last one is the logits.";
        var elementType = ElementType(dtype);
        onnxGraph.Input.Add(ValueInfoProto.Tensor(InputName, elementType, TensorDim.Symbolic(BatchDimension), TensorDim.Fixed(spec.Model.Inputs)));

        string current = InputName;
        foreach (var call in graph.Calls)
        {
            current = builder.AddCall(call, current, linearForm);
            onnxGraph.Output.Add(ValueInfoProto.Tensor(call.Id, elementType, TensorDim.Symbolic(BatchDimension), TensorDim.Fixed(call.OutWidth)));
        }

        // ONNX graphs are in SSA form: every tensor name is defined once.
        var defined = new HashSet<string>(StringComparer.Ordinal) { InputName };
        foreach (var initializer in onnxGraph.Initializer) defined.Add(initializer.Name);
        foreach (var output in onnxGraph.Node.SelectMany(n => n.Output))
            if (!defined.Add(output))
                throw new ArgumentException($"call id '{output}' clashes with the graph input or an initializer name in the ONNX graph; rename the call");

        var model = new ModelProto
        {
            IrVersion = OpsetFor(graph) == GeluOpset ? GeluIrVersion : IrVersion,
            ProducerName = "parity",
            ProducerVersion = ParityVersion.Current,
            DocString = spec.Description,
            Graph = onnxGraph,
        };
        // No domain: the default (ai.onnx) operator set.
        model.OpsetImport.Add(new OperatorSetIdProto { Version = OpsetFor(graph) });
        return model;
    }

    internal static OnnxDataType ElementType(DType dtype) => dtype == DType.Float32 ? OnnxDataType.Float : OnnxDataType.Double;

    /// <summary>A float64 hyperparameter as the float32 an ONNX float attribute holds.</summary>
    internal static float AttributeFloat(double value) => (float)value;

    /// <summary>Builds nodes and initializers call by call; an instance's initializers are added once.</summary>
    private sealed class GraphBuilder(ModelGraph model, StepRecord state, DType dtype)
    {
        private readonly HashSet<string> _initializers = new(StringComparer.Ordinal);

        public GraphProto Graph { get; } = new();

        /// <summary>Adds the node(s) of one call reading <paramref name="input"/>; returns the call's output name (its id).</summary>
        public string AddCall(CallSite call, string input, OnnxLinearForm linearForm)
        {
            string output = call.Id;
            string doc = $"call '{call.Id}' of {call.Layer.Type} instance '{call.Layer.Name}'" +
                (model.Shared.Contains(call.Layer.Name) ? " (shared: its initializers serve every call of the instance)" : "");
            switch (call.Layer)
            {
                case LinearSpec lin when linearForm == OnnxLinearForm.Gemm:
                {
                    // Gemm-13: Y = alpha * A * B' + beta * C with transB = 1, so B is the canonical W [out, in].
                    var node = Node("Gemm", call.Id, doc, [input, Parameter(lin.Name + ".weight")], output);
                    if (lin.Bias) node.Input.Add(Parameter(lin.Name + ".bias"));
                    node.Attribute.Add(AttributeProto.Int("transB", 1));
                    break;
                }
                case LinearSpec lin:
                {
                    string product = lin.Bias ? call.Id + "/matmul" : output;
                    string weight = TransposedWeightName(lin.Name);
                    if (_initializers.Add(weight))
                        Graph.Initializer.Add(Initializer(weight, StateEntry(TensorKind.Parameter, lin.Name + ".weight").Transpose2D()));
                    Node("MatMul", lin.Bias ? product : call.Id, doc, [input, weight], product);
                    if (lin.Bias) Node("Add", call.Id, doc, [product, Parameter(lin.Name + ".bias")], output);
                    break;
                }
                case BatchNormSpec bn:
                {
                    // BatchNormalization-15 in inference mode (training_mode = 0):
                    // Y = (X - input_mean) / sqrt(input_var + epsilon) * scale + B. Its momentum attribute
                    // is the weight of the OLD statistic, 1 - the canonical momentum (docs/conventions.md section 1 [O]);
                    // inference ignores it, but it documents the spec and lets an import recover it.
                    string scale = bn.Affine ? Parameter(bn.Name + ".gamma") : Constant(ConstantScaleName(bn.Name), bn.Features, 1.0);
                    string bias = bn.Affine ? Parameter(bn.Name + ".beta") : Constant(ConstantBiasName(bn.Name), bn.Features, 0.0);
                    var node = Node("BatchNormalization", call.Id, doc,
                        [input, scale, bias, Statistic(TensorKind.RunningMean, bn.Name, RunningMeanName(bn.Name)),
                            Statistic(TensorKind.RunningVariance, bn.Name, RunningVarianceName(bn.Name))], output);
                    node.Attribute.Add(AttributeProto.Float("epsilon", AttributeFloat(bn.Eps)));
                    node.Attribute.Add(AttributeProto.Float("momentum", AttributeFloat(1.0 - bn.Momentum)));
                    break;
                }
                case LayerNormSpec ln:
                {
                    // LayerNormalization-17 over the last axis; Scale is required, B optional.
                    var inputs = ln.Affine
                        ? new[] { input, Parameter(ln.Name + ".gamma"), Parameter(ln.Name + ".beta") }
                        : [input, Constant(ConstantScaleName(ln.Name), ln.Features, 1.0)];
                    var node = Node("LayerNormalization", call.Id, doc, inputs, output);
                    node.Attribute.Add(AttributeProto.Int("axis", -1));
                    node.Attribute.Add(AttributeProto.Float("epsilon", AttributeFloat(ln.Eps)));
                    if (dtype == DType.Float64)
                        node.Attribute.Add(AttributeProto.Int("stash_type", (long)OnnxDataType.Double));
                    break;
                }
                case ReluSpec:
                    Node("Relu", call.Id, doc, [input], output);
                    break;
                case IdentitySpec:
                    Node("Identity", call.Id, doc, [input], output);
                    break;
                case TanhSpec:
                    Node("Tanh", call.Id, doc, [input], output);
                    break;
                case SigmoidSpec:
                    Node("Sigmoid", call.Id, doc, [input], output);
                    break;
                case LeakyReluSpec leaky:
                    // LeakyRelu-16 defaults alpha to 0.01 [O3]: always written.
                    Node("LeakyRelu", call.Id, doc, [input], output).Attribute.Add(AttributeProto.Float("alpha", AttributeFloat(leaky.Slope)));
                    break;
                case EluSpec elu:
                    Node("Elu", call.Id, doc, [input], output).Attribute.Add(AttributeProto.Float("alpha", AttributeFloat(elu.Alpha)));
                    break;
                case GeluSpec gelu:
                    // Gelu-20, approximate "none" (erf) or "tanh" [O3].
                    Node("Gelu", call.Id, doc, [input], output)
                        .Attribute.Add(AttributeProto.Text("approximate", gelu.Approximation == GeluApproximation.Exact ? "none" : "tanh"));
                    break;
                case SiluSpec:
                {
                    // ONNX has no SiLU operator up to opset 20: x * Sigmoid(x), the importer reads the pair back as SiLU.
                    string sigmoid = call.Id + "/sigmoid";
                    Node("Sigmoid", sigmoid, doc, [input], sigmoid);
                    Node("Mul", call.Id, doc, [input, sigmoid], output);
                    break;
                }
                case DropoutSpec dropout:
                {
                    // Dropout-13 with its ratio (the drop probability, scale 1/(1-ratio) when training [O3]) and no
                    // training_mode input: inference mode, the identity, as every framework's eval. The ratio documents the
                    // spec and lets an import recover it.
                    string ratio = call.Id + "/ratio";
                    if (_initializers.Add(ratio)) Graph.Initializer.Add(Initializer(ratio, Tensor.Scalar(dropout.P, dtype)));
                    Node("Dropout", call.Id, doc, [input, ratio], output);
                    break;
                }
                default:
                    throw new ArgumentException($"call '{call.Id}': layer type '{call.Layer.Type}' has no ONNX export");
            }
            return output;
        }

        private NodeProto Node(string opType, string name, string doc, IEnumerable<string> inputs, string output)
        {
            var node = new NodeProto { OpType = opType, Name = name, DocString = doc };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            Graph.Node.Add(node);
            return node;
        }

        private string Parameter(string name)
        {
            if (_initializers.Add(name)) Graph.Initializer.Add(Initializer(name, StateEntry(TensorKind.Parameter, name)));
            return name;
        }

        private string Statistic(TensorKind kind, string instance, string name)
        {
            if (_initializers.Add(name)) Graph.Initializer.Add(Initializer(name, StateEntry(kind, instance)));
            return name;
        }

        private string Constant(string name, int features, double value)
        {
            if (_initializers.Add(name))
            {
                var values = new double[features];
                values.AsSpan().Fill(value);
                Graph.Initializer.Add(Initializer(name, new Tensor([features], values, dtype)));
            }
            return name;
        }

        private Tensor StateEntry(TensorKind kind, string site)
        {
            var tensor = state.Find(kind, site)
                ?? throw new ArgumentException($"the state (step {state.Step}, {state.Phase}) has no {kind.Name()} entry for '{site}'; " +
                    "export needs every parameter and running statistic (plan.InitialState, or a train record of a step captured with parameter and running-statistic kinds)");
            int[] expected = kind == TensorKind.Parameter
                ? model.Parameter(site).Shape
                : [model.BatchNorms.First(b => b.Name == site).Features];
            if (!tensor.Shape.AsSpan().SequenceEqual(expected))
                throw new ArgumentException($"{kind.Name()} '{site}' has shape {tensor.ShapeText}; the model expects [{string.Join(",", expected)}] (canonical layout)");
            return tensor;
        }

        private TensorProto Initializer(string name, Tensor value)
        {
            var tensor = new TensorProto { Name = name, DataType = (int)ElementType(dtype) };
            foreach (int d in value.Shape) tensor.Dims.Add(d);
            // raw_data is little-endian whatever the host (onnx.proto, TensorProto.raw_data).
            var raw = new byte[value.Length * dtype.Size()];
            for (int i = 0; i < value.Length; i++)
            {
                if (dtype == DType.Float32) BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(i * 4), (float)value.Data[i]);
                else BinaryPrimitives.WriteDoubleLittleEndian(raw.AsSpan(i * 8), value.Data[i]);
            }
            // The buffer is not touched again, so the message may wrap it instead of copying.
            tensor.RawData = UnsafeByteOperations.UnsafeWrap(raw);
            return tensor;
        }
    }
}
