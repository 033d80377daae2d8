using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Google.Protobuf;
using Parity.IO;
using Parity.Models;
using Parity.Onnx.Protobuf;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;
using OnnxDataType = Parity.Onnx.Protobuf.TensorProto.Types.DataType;

namespace Parity.Onnx;

/// <summary>
/// Turns an ONNX MLP into a Parity spec plus its initial weights (docs/onnx.md), so a model a user
/// already has can be checked across every backend. The graph must be one chain from a single input
/// [N, features] through Gemm (transB 0 or 1), MatMul (+ Add of a bias), BatchNormalization (inference
/// mode), LayerNormalization (last axis), Relu and Identity nodes, weights held in initializers. Nodes
/// that reuse another node's initializers become one shared instance. Anything else raises
/// <see cref="OnnxImportException"/> naming the node and its operator.
/// </summary>
public static class OnnxImporter
{
    /// <summary>Operator types the importer understands (default ONNX domain).</summary>
    public static IReadOnlyList<string> SupportedOperators { get; } =
        ["Gemm", "MatMul", "Add (the bias after a MatMul)", "BatchNormalization", "LayerNormalization", "Relu", "Identity", "Tanh", "Sigmoid",
            "Mul (x * Sigmoid(x): SiLU)", "LeakyRelu", "Elu", "Gelu", "Dropout (inference mode)"];

    /// <summary>Reads an ONNX file.</summary>
    /// <returns>
    /// The canonical spec JSON (model, dtype and weights from the file; data, optimizer and schedule are
    /// placeholders to edit, see docs/onnx.md) and the initial state: every parameter (canonical layout)
    /// and running statistic, as <see cref="Planning.Plan.InitialState"/> holds them.
    /// </returns>
    /// <exception cref="OnnxImportException">The file cannot be read or is not a supported MLP.</exception>
    public static (string SpecJson, StepRecord InitialState) Import(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new OnnxImportException(path, $"cannot read the file: {e.Message}", inner: e);
        }
        return Import(bytes, path);
    }

    /// <summary>Reads ONNX model bytes; <paramref name="source"/> names them in messages and becomes the spec name.</summary>
    public static (string SpecJson, StepRecord InitialState) Import(byte[] model, string source)
    {
        ModelProto proto;
        try
        {
            proto = ModelProto.Parser.ParseFrom(model);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new OnnxImportException(source, $"not an ONNX model (protobuf: {e.Message})", inner: e);
        }
        return new MlpReader(proto, source).Read();
    }

    /// <summary>The values of an initializer as float64, with its shape.</summary>
    internal static Tensor InitializerValue(TensorProto tensor, string file)
    {
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
            throw new OnnxImportException(file, $"initializer '{tensor.Name}' keeps its values in an external file; save the model with its weights inside the .onnx file");
        long count = 1;
        foreach (long d in tensor.Dims) count *= d;
        int[] shape = tensor.Dims.Select(d => checked((int)d)).ToArray();
        var type = (OnnxDataType)tensor.DataType;
        double[] values = type switch
        {
            OnnxDataType.Float when tensor.RawData.Length > 0 => ReadRaw(tensor, DType.Float32, count, file),
            OnnxDataType.Float => tensor.FloatData.Select(f => (double)f).ToArray(),
            OnnxDataType.Double when tensor.RawData.Length > 0 => ReadRaw(tensor, DType.Float64, count, file),
            OnnxDataType.Double => [.. tensor.DoubleData],
            _ => throw new OnnxImportException(file, $"initializer '{tensor.Name}' has element type {type} ({tensor.DataType}); only float (1) and double (11) are supported"),
        };
        if (values.Length != count)
            throw new OnnxImportException(file, $"initializer '{tensor.Name}' has {values.Length} values for shape [{string.Join(",", shape)}]");
        return new Tensor(shape, values, type == OnnxDataType.Float ? DType.Float32 : DType.Float64);
    }

    /// <summary>raw_data: fixed-width little-endian values, whatever the host (onnx.proto, TensorProto.raw_data).</summary>
    private static double[] ReadRaw(TensorProto tensor, DType dtype, long count, string file)
    {
        var raw = tensor.RawData.Span;
        int size = dtype.Size();
        if (raw.Length != count * size)
            throw new OnnxImportException(file, $"initializer '{tensor.Name}' has {raw.Length} bytes of raw data; its shape needs {count * size}");
        var values = new double[count];
        for (int i = 0; i < values.Length; i++)
        {
            var element = raw.Slice(i * size, size);
            values[i] = dtype == DType.Float32 ? BinaryPrimitives.ReadSingleLittleEndian(element) : BinaryPrimitives.ReadDoubleLittleEndian(element);
        }
        return values;
    }

    /// <summary>A float attribute as the double whose shortest text is the float's (1e-5f reads back as 1e-5).</summary>
    internal static double FromAttribute(float value) => double.Parse(value.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>Walks the node chain once, building layers, calls and the initial state.</summary>
    private sealed class MlpReader
    {
        private readonly ModelProto _model;
        private readonly GraphProto _graph;
        private readonly string _file;
        private readonly Dictionary<string, TensorProto> _initializers = new(StringComparer.Ordinal);
        private readonly List<LayerSpec> _layers = [];
        private readonly List<CallSpec> _calls = [];
        private readonly Dictionary<string, (LayerSpec Layer, string[] Initializers)> _instances = new(StringComparer.Ordinal);
        private readonly Dictionary<(TensorKind, string), Tensor> _state = [];
        private DType _dtype;
        private ValueInfoProto? _input;
        private string _current = "";
        private string _callId = "";
        private int _width;

        public MlpReader(ModelProto model, string file)
        {
            _model = model;
            // A model without a graph reads as an empty graph, refused below like any graph without nodes.
            _graph = model.Graph ?? new GraphProto();
            _file = file;
            foreach (var tensor in _graph.Initializer) _initializers[tensor.Name] = tensor;
        }

        public (string SpecJson, StepRecord InitialState) Read()
        {
            if (_graph.Node.Count == 0) throw Fail("the graph has no nodes (is this an ONNX model?)");
            if (_model.OpsetImport.Count > 0 && _model.OpsetImport.All(o => o.Domain is not ("" or "ai.onnx")))
                throw Fail("the model imports no default-domain (ai.onnx) opset");
            int inputs = ReadInput();

            var nodes = WithoutInitializerAliases(_graph.Node);
            int first = LeadingFlatten(nodes[0]) ? 1 : 0;
            for (int i = first; i < nodes.Count; i++)
            {
                var node = nodes[i];
                if (node.Domain is not ("" or "ai.onnx"))
                    throw NodeError(node, $"operators of domain '{node.Domain}' are not supported");
                if (node.Input.Count == 0 || node.Input[0] != _current)
                    throw NodeError(node, $"does not continue the chain from '{_current}'; only a single chain of layers (an MLP) is supported");
                if (node.Output.Count == 0 || node.Output[0].Length == 0) throw NodeError(node, "has no output");
                // The call id is the name of the tensor the call produces (Parity's exporter names it by the call id).
                _callId = node.Output[0];
                switch (node.OpType)
                {
                    case "Gemm": Gemm(node); break;
                    case "MatMul":
                        var add = i + 1 < nodes.Count && nodes[i + 1].OpType == "Add" && nodes[i + 1].Input.Contains(_callId) ? nodes[i + 1] : null;
                        if (add is not null)
                        {
                            i++;
                            _callId = add.Output[0];
                        }
                        MatMul(node, add);
                        break;
                    case "BatchNormalization": BatchNormalization(node); break;
                    case "LayerNormalization": LayerNormalization(node); break;
                    case "Relu": Stateless(node, "relu", name => new ReluSpec(name)); break;
                    case "Identity": Stateless(node, "identity", name => new IdentitySpec(name)); break;
                    case "Tanh": Stateless(node, "tanh", name => new TanhSpec(name)); break;
                    case "Sigmoid" when i + 1 < nodes.Count && IsSiluProduct(nodes[i + 1], node):
                        i++;
                        _callId = nodes[i].Output[0];
                        Stateless(node, "silu", name => new SiluSpec(name), nodes[i]);
                        break;
                    case "Sigmoid": Stateless(node, "sigmoid", name => new SigmoidSpec(name)); break;
                    case "LeakyRelu":
                        // LeakyRelu-16's default alpha is 0.01 [O3].
                        double slope = FromAttribute(Float(node, "alpha", 0.01f));
                        Stateless(node, "leaky_relu", name => new LeakyReluSpec(name, slope));
                        break;
                    case "Elu":
                        double alpha = FromAttribute(Float(node, "alpha", 1f));
                        Stateless(node, "elu", name => new EluSpec(name, alpha));
                        break;
                    case "Gelu":
                        var approximation = node.Find("approximate")?.S.ToStringUtf8() switch
                        {
                            null or "none" => GeluApproximation.Exact,
                            "tanh" => GeluApproximation.Tanh,
                            var other => throw NodeError(node, $"approximate '{other}' is neither 'none' nor 'tanh'"),
                        };
                        Stateless(node, "gelu", name => new GeluSpec(name, approximation));
                        break;
                    case "Dropout":
                        Dropout(node);
                        break;
                    default:
                        throw NodeError(node, $"unsupported operator; supported: {string.Join(", ", SupportedOperators)}");
                }
                _current = _callId;
            }
            if (_width < 2)
                throw Fail($"the last node outputs {_width} value(s) per sample; a softmax classifier needs at least 2 classes");
            return Finish(inputs);
        }

        private int ReadInput()
        {
            var candidates = _graph.Input.Where(v => !_initializers.ContainsKey(v.Name)).ToList();
            if (candidates.Count != 1)
                throw Fail($"the graph has {candidates.Count} data inputs ({string.Join(", ", candidates.Select(c => c.Name))}); an MLP has exactly one");
            var input = candidates[0];
            _dtype = input.ElementType switch
            {
                OnnxDataType.Float => DType.Float32,
                OnnxDataType.Double => DType.Float64,
                _ => throw Fail($"input '{input.Name}' has element type {input.ElementType} ({(int)input.ElementType}); only float and double are supported"),
            };
            long features = 1;
            if (input.Shape is not { Count: >= 2 } shape || shape.Skip(1).Any(d => !d.HasDimValue || d.DimValue <= 0))
                throw InputShape(input);
            foreach (var d in shape.Skip(1)) features *= d.DimValue;
            _input = input;
            _current = input.Name;
            _width = checked((int)features);
            return _width;
        }

        /// <summary>
        /// PyTorch's exporter de-duplicates equal initializers by writing one of them as an Identity of
        /// the other (two fresh batchnorms: equal gammas and betas). Such a node computes a weight, not a
        /// layer: its output is registered as another name for the initializer and the node is dropped.
        /// </summary>
        private List<NodeProto> WithoutInitializerAliases(Google.Protobuf.Collections.RepeatedField<NodeProto> nodes)
        {
            var layers = new List<NodeProto>(nodes.Count);
            foreach (var node in nodes)
            {
                if (node.OpType == "Identity" && node.Domain is ("" or "ai.onnx") && node.Input.Count == 1 && node.Output.Count == 1
                    && _initializers.TryGetValue(node.Input[0], out var source))
                    _initializers[node.Output[0]] = source;
                else layers.Add(node);
            }
            if (layers.Count == 0) throw Fail("the graph has no layer nodes");
            return layers;
        }

        /// <summary>
        /// A rank-2 input needs nothing; a higher-rank input (images) must be flattened by a leading
        /// <c>Flatten</c> with axis 1, which the spec expresses as a flat input (IDX data is flattened on load).
        /// </summary>
        private bool LeadingFlatten(NodeProto node)
        {
            if (_input!.Shape!.Count == 2) return false;
            if (node.OpType != "Flatten" || node.Input.Count != 1 || node.Input[0] != _current || Int(node, "axis", 1) != 1)
                throw InputShape(_input);
            _current = node.Output[0];
            return true;
        }

        private OnnxImportException InputShape(ValueInfoProto input) =>
            Fail($"input '{input.Name}' has shape [{string.Join(",", (input.Shape ?? []).Select(d => d.Text))}]; an MLP input is [batch, features] with a fixed feature count " +
                "(or a fixed-size input that a leading Flatten with axis 1 flattens)");

        private void Gemm(NodeProto node)
        {
            // Gemm-13: Y = alpha * A' * B' + beta * C. Only the plain form is a linear layer.
            if (Int(node, "transA", 0) != 0) throw NodeError(node, "transA = 1 is not supported (the input must be [batch, features])");
            if (Float(node, "alpha", 1f) != 1f) throw NodeError(node, $"alpha = {Float(node, "alpha", 1f)} is not supported (only 1)");
            if (node.Input.Count > 2 && node.Input[2].Length > 0 && Float(node, "beta", 1f) != 1f)
                throw NodeError(node, $"beta = {Float(node, "beta", 1f)} is not supported (only 1)");
            long transB = Int(node, "transB", 0);
            var b = Initializer(node, 1, "B");
            if (b.Shape.Length != 2) throw NodeError(node, $"B has shape {b.ShapeText}; expected a matrix");
            // Canonical layout is W [out, in]: transB = 1 stores exactly that, transB = 0 stores W^T.
            var weight = transB == 1 ? b : b.Transpose2D();
            string? biasName = node.Input.Count > 2 && node.Input[2].Length > 0 ? node.Input[2] : null;
            Linear(node, weight, node.Input[1], biasName, biasName is null ? null : Initializer(node, 2, "C"));
        }

        private void MatMul(NodeProto node, NodeProto? add)
        {
            var b = Initializer(node, 1, "B");
            if (b.Shape.Length != 2) throw NodeError(node, $"B has shape {b.ShapeText}; expected a matrix [in, out]");
            string? biasName = null;
            Tensor? bias = null;
            if (add is not null)
            {
                int other = add.Input[0] == node.Output[0] ? 1 : 0;
                if (add.Input.Count != 2 || !_initializers.ContainsKey(add.Input[other]))
                    throw NodeError(add, "expected the bias of the preceding MatMul: an Add of an initializer");
                biasName = add.Input[other];
                bias = Initializer(add, other, "bias");
            }
            Linear(node, b.Transpose2D(), node.Input[1], biasName, bias);
        }

        private void Linear(NodeProto node, Tensor weight, string weightName, string? biasName, Tensor? bias)
        {
            int outW = weight.Shape[0], inW = weight.Shape[1];
            if (inW != _width) throw NodeError(node, $"the weight takes {inW} inputs but the previous layer produces {_width}");
            if (bias is not null)
            {
                bool vector = bias.Shape.SequenceEqual([outW]) || bias.Shape.SequenceEqual([1, outW]);
                if (!vector) throw NodeError(node, $"the bias '{biasName}' has shape {bias.ShapeText}; expected [{outW}]");
                bias = new Tensor([outW], bias.Data, bias.DType);
            }
            var placeholder = new InitializerSpec("pytorch_default");
            string name = Instance(node, weightName, "linear", [weightName, biasName ?? ""],
                n => new LinearSpec(n, inW, outW, bias is not null, placeholder, placeholder));
            AddParameter(name, "weight", weight);
            if (bias is not null) AddParameter(name, "bias", bias);
            _width = outW;
        }

        private void BatchNormalization(NodeProto node)
        {
            if (Int(node, "training_mode", 0) != 0)
                throw NodeError(node, "training_mode = 1: export the model in inference (eval) mode");
            if (node.Input.Count != 5) throw NodeError(node, $"has {node.Input.Count} inputs; expected X, scale, B, input_mean, input_var");
            var scale = Vector(node, 1, "scale");
            var bias = Vector(node, 2, "B");
            var mean = Vector(node, 3, "input_mean");
            var variance = Vector(node, 4, "input_var");
            bool affine = !IsConstant(node.Input[1], scale, 1.0) || !IsConstant(node.Input[2], bias, 0.0);
            // BatchNormalization-15 momentum weighs the OLD statistic; the spec's weighs the new one (docs/conventions.md section 1 [O]).
            double momentum = 1.0 - FromAttribute(Float(node, "momentum", 0.9f));
            double eps = FromAttribute(Float(node, "epsilon", 1e-5f));
            string name = Instance(node, node.Input[1], "batchnorm", [.. node.Input.Skip(1)],
                n => new BatchNormSpec(n, _width, Math.Round(momentum, 12), eps, RunningVarianceEstimator.Unbiased, affine));
            if (affine)
            {
                AddParameter(name, "gamma", scale);
                AddParameter(name, "beta", bias);
            }
            _state[(TensorKind.RunningMean, name)] = mean;
            _state[(TensorKind.RunningVariance, name)] = variance;
        }

        private void LayerNormalization(NodeProto node)
        {
            long axis = Int(node, "axis", -1);
            if (axis is not (-1 or 1)) throw NodeError(node, $"axis = {axis}; only the feature axis (-1) is supported");
            var scale = Vector(node, 1, "Scale");
            bool hasBias = node.Input.Count > 2 && node.Input[2].Length > 0;
            var bias = hasBias ? Vector(node, 2, "B") : new Tensor([_width], new double[_width], _dtype);
            bool affine = !IsConstant(node.Input[1], scale, 1.0) || (hasBias && bias.Data.Any(v => v != 0));
            double eps = FromAttribute(Float(node, "epsilon", 1e-5f));
            string name = Instance(node, node.Input[1], "layernorm", [.. node.Input.Skip(1)], n => new LayerNormSpec(n, _width, eps, affine));
            if (affine)
            {
                AddParameter(name, "gamma", scale);
                AddParameter(name, "beta", bias);
            }
        }

        /// <summary>A stateless call read from <paramref name="node"/>, named by <paramref name="last"/> when the call is a pair of nodes.</summary>
        private void Stateless(NodeProto node, string type, Func<string, LayerSpec> make, NodeProto? last = null)
        {
            if (node.Input.Count != 1) throw NodeError(node, $"has {node.Input.Count} inputs; expected 1");
            last ??= node;
            // A stateless instance has no initializers to reveal sharing; calls named "x#k" (Parity's
            // call-id convention for the k-th call of instance x) are taken as calls of one instance x.
            string stem = Sanitize(StripCallNumber(last.Name.Length > 0 ? last.Name : last.Output[0]));
            Instance(node, type + ":" + stem, type, [], make, stem);
        }

        /// <summary>
        /// Dropout-13 in inference mode (no training_mode input, the identity at inference): a dropout layer with its ratio
        /// (input 1, an initializer; ONNX's default 0.5 when absent) as the drop probability, the harness's masks.
        /// </summary>
        private void Dropout(NodeProto node)
        {
            if (node.Input.Count > 2) throw NodeError(node, "has a training_mode input; only inference-mode Dropout (the identity) is imported");
            double ratio = 0.5;
            if (node.Input.Count == 2)
            {
                var value = Initializer(node, 1, "ratio");
                if (value.Length != 1 || !(value.Data[0] >= 0 && value.Data[0] < 1)) throw NodeError(node, $"ratio {value.ShapeText} is not one number in [0, 1)");
                ratio = value.Data[0];
            }
            var data = node.Clone();
            while (data.Input.Count > 1) data.Input.RemoveAt(data.Input.Count - 1);
            Stateless(data, "dropout", name => new DropoutSpec(name, ratio, DropoutMasks.Harness));
        }

        // x * Sigmoid(x): a Mul of the sigmoid's input and its output, in either order.
        private static bool IsSiluProduct(NodeProto next, NodeProto sigmoid) =>
            next.OpType == "Mul" && next.Input.Count == 2 && sigmoid.Input.Count == 1
            && next.Input.Contains(sigmoid.Input[0]) && next.Input.Contains(sigmoid.Output[0]) && sigmoid.Input[0] != sigmoid.Output[0];

        /// <summary>
        /// Finds or creates the instance behind <paramref name="key"/> (its first initializer's name, or the
        /// stateless stem) and records the call. A second node with the same key must describe the same layer.
        /// </summary>
        private string Instance(NodeProto node, string key, string type, string[] initializers, Func<string, LayerSpec> make, string? stem = null)
        {
            if (_instances.TryGetValue(key, out var existing))
            {
                var again = make(existing.Layer.Name);
                if (!again.Equals(existing.Layer) || !existing.Initializers.SequenceEqual(initializers))
                    throw NodeError(node, $"reuses initializer '{key}' of instance '{existing.Layer.Name}' with different inputs or attributes; a shared instance must be the same layer at every call");
                _calls.Add(new CallSpec(_callId, existing.Layer.Name));
                return existing.Layer.Name;
            }
            stem ??= key.LastIndexOf('.') > 0 ? Sanitize(key[..key.LastIndexOf('.')]) : "";
            string name = UniqueName(stem.Length > 0 ? stem : type + (_layers.Count(l => l.Type == type) + 1).ToString(CultureInfo.InvariantCulture));
            var layer = make(name);
            _layers.Add(layer);
            _instances[key] = (layer, initializers);
            _calls.Add(new CallSpec(_callId, name));
            return name;
        }

        private string UniqueName(string stem)
        {
            string name = stem;
            for (int k = 2; _layers.Any(l => l.Name == name); k++) name = $"{stem}_{k}";
            return name;
        }

        private void AddParameter(string instance, string local, Tensor value) =>
            _state[(TensorKind.Parameter, instance + "." + local)] = value;

        private (string, StepRecord) Finish(int inputs)
        {
            // The spec name names output folders: made an identifier whatever the file or the model calls itself.
            string name = Path.GetFileNameWithoutExtension(_file);
            if (name.Length == 0) name = _graph.Name.Length > 0 ? _graph.Name : "imported";
            name = PathNames.Segment(name);
            var model = new ModelSpec(inputs, _layers, _calls);
            // Placeholders the user edits (docs/onnx.md): synthetic teacher data of the model's width,
            // plain SGD, 100 steps. The model, dtype and weights are the file's.
            var train = new SyntheticSourceSpec("teacher", 1024, inputs, _width, 1, 0);
            var eval = new SyntheticSourceSpec("teacher", 256, inputs, _width, 2, 0);
            var spec = new ScenarioSpec(
                name,
                $"Imported from {Path.GetFileName(_file)} by parity import-onnx: model and initial weights come from the file; " +
                "data (synthetic placeholder), optimizer and schedule are placeholders to replace (docs/onnx.md).",
                0, _dtype, model, new InitSpec(InitMode.Injected, 0), new SgdSpec(0.01, 0),
                new DataSpec(train, eval, 64, true, 0, null), new ScheduleSpec(100, null, 10),
                new CaptureSpec(CaptureSteps.Everything, TensorKinds.All));
            string json = SpecWriter.Write(spec);
            ScenarioSpec parsed;
            try
            {
                parsed = SpecLoader.Parse(json);
            }
            catch (SpecException e)
            {
                throw Fail($"the model does not make a valid spec: {e.Message}");
            }

            var graph = new ModelGraph(parsed.Model);
            var state = new StepRecord(0, RecordPhase.Initial);
            foreach (var p in graph.Parameters)
                state.Add(TensorKind.Parameter, p.Name, _state[(TensorKind.Parameter, p.Name)].As(_dtype));
            foreach (var bn in graph.BatchNorms)
            {
                state.Add(TensorKind.RunningMean, bn.Name, _state[(TensorKind.RunningMean, bn.Name)].As(_dtype));
                state.Add(TensorKind.RunningVariance, bn.Name, _state[(TensorKind.RunningVariance, bn.Name)].As(_dtype));
            }
            return (json, state);
        }

        private Tensor Initializer(NodeProto node, int index, string role)
        {
            if (node.Input.Count <= index || !_initializers.TryGetValue(node.Input[index], out var tensor))
                throw NodeError(node, $"input {role} ('{(node.Input.Count > index ? node.Input[index] : "")}') is not an initializer; weights must be stored in the model");
            var value = InitializerValue(tensor, _file);
            if (value.DType != _dtype)
                throw NodeError(node, $"initializer '{tensor.Name}' is {value.DType.Name()} but the model input is {_dtype.Name()}");
            return value;
        }

        private Tensor Vector(NodeProto node, int index, string role)
        {
            var value = Initializer(node, index, role);
            if (value.Shape.Length != 1 || value.Shape[0] != _width)
                throw NodeError(node, $"{role} has shape {value.ShapeText}; the previous layer produces {_width} features");
            return value;
        }

        // Non-affine normalizations are exported with constant scale and bias initializers whose names
        // say so; anything else (e.g. gamma that happens to be all ones at step 0) stays affine.
        private static bool IsConstant(string name, Tensor value, double expected) =>
            (name.EndsWith(".constant_scale", StringComparison.Ordinal) || name.EndsWith(".constant_bias", StringComparison.Ordinal))
            && value.Data.All(v => v == expected);

        private static long Int(NodeProto node, string name, long fallback) => node.Find(name)?.I ?? fallback;

        private static float Float(NodeProto node, string name, float fallback) => node.Find(name)?.F ?? fallback;

        private static string StripCallNumber(string id)
        {
            int hash = id.LastIndexOf('#');
            return hash > 0 && id[(hash + 1)..].All(char.IsAsciiDigit) && hash + 1 < id.Length ? id[..hash] : id;
        }

        private static string Sanitize(string text)
        {
            var sb = new StringBuilder(text.Length);
            foreach (char c in text) sb.Append(char.IsControl(c) || c is '.' or '#' or '/' or ':' ? '_' : c);
            string name = sb.ToString().Trim('_');
            return name.Length > 100 ? name[..100] : name;
        }

        private OnnxImportException Fail(string problem) => new(_file, problem);

        private OnnxImportException NodeError(NodeProto node, string problem) => new(_file, problem, node.Name, node.OpType);
    }
}
