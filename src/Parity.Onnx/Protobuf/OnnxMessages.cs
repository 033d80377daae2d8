using Google.Protobuf;

namespace Parity.Onnx.Protobuf;

// The subset of onnx.proto (IR version 8, https://github.com/onnx/onnx/blob/main/docs/IR.md) that an
// MLP needs, written by hand on Google.Protobuf's CodedOutputStream / CodedInputStream. Field numbers
// are those of onnx.proto; each message says which fields it keeps. Readers skip every other field, so
// files from other producers parse; writers emit proto2-style optional fields only when set.

/// <summary>TensorProto.DataType values used here (onnx.proto, enum TensorProto.DataType).</summary>
internal enum OnnxDataType
{
    Undefined = 0,
    Float = 1,
    Int32 = 6,
    Int64 = 7,
    Float16 = 10,
    Double = 11,
}

/// <summary>AttributeProto.AttributeType values used here.</summary>
internal enum OnnxAttributeType
{
    Undefined = 0,
    Float = 1,
    Int = 2,
    String = 3,
    Tensor = 4,
    Floats = 6,
    Ints = 7,
}

/// <summary>ModelProto: ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7, opset_import 8.</summary>
internal sealed class ModelProto
{
    public long IrVersion { get; set; }
    public List<OperatorSetIdProto> OpsetImport { get; } = [];
    public string ProducerName { get; set; } = "";
    public string ProducerVersion { get; set; } = "";
    public string DocString { get; set; } = "";
    public GraphProto Graph { get; set; } = new();

    public byte[] ToBytes()
    {
        return Wire.Encode(o =>
        {
            Wire.Int64(o, 1, IrVersion);
            Wire.String(o, 2, ProducerName);
            Wire.String(o, 3, ProducerVersion);
            Wire.String(o, 6, DocString);
            Wire.Message(o, 7, Graph.WriteTo);
            foreach (var opset in OpsetImport) Wire.Message(o, 8, opset.WriteTo);
        });
    }

    public static ModelProto Parse(byte[] bytes)
    {
        var model = new ModelProto();
        Wire.Read(bytes, (field, wire, input) =>
        {
            switch (field)
            {
                case 1: model.IrVersion = input.ReadInt64(); return true;
                case 2: model.ProducerName = input.ReadString(); return true;
                case 3: model.ProducerVersion = input.ReadString(); return true;
                case 6: model.DocString = input.ReadString(); return true;
                case 7: model.Graph = GraphProto.Parse(input.ReadBytes().ToByteArray()); return true;
                case 8: model.OpsetImport.Add(OperatorSetIdProto.Parse(input.ReadBytes().ToByteArray())); return true;
                default: return false;
            }
        });
        return model;
    }
}

/// <summary>OperatorSetIdProto: domain 1, version 2.</summary>
internal sealed class OperatorSetIdProto
{
    public string Domain { get; set; } = "";
    public long Version { get; set; }

    public void WriteTo(CodedOutputStream o)
    {
        Wire.String(o, 1, Domain);
        Wire.Int64(o, 2, Version);
    }

    public static OperatorSetIdProto Parse(byte[] bytes)
    {
        var opset = new OperatorSetIdProto();
        Wire.Read(bytes, (field, wire, input) =>
        {
            switch (field)
            {
                case 1: opset.Domain = input.ReadString(); return true;
                case 2: opset.Version = input.ReadInt64(); return true;
                default: return false;
            }
        });
        return opset;
    }
}

/// <summary>GraphProto: node 1, name 2, initializer 5, doc_string 10, input 11, output 12, value_info 13.</summary>
internal sealed class GraphProto
{
    public List<NodeProto> Node { get; } = [];
    public string Name { get; set; } = "";
    public List<TensorProto> Initializer { get; } = [];
    public string DocString { get; set; } = "";
    public List<ValueInfoProto> Input { get; } = [];
    public List<ValueInfoProto> Output { get; } = [];
    public List<ValueInfoProto> ValueInfo { get; } = [];

    public void WriteTo(CodedOutputStream o)
    {
        foreach (var node in Node) Wire.Message(o, 1, node.WriteTo);
        Wire.String(o, 2, Name);
        foreach (var tensor in Initializer) Wire.Message(o, 5, tensor.WriteTo);
        Wire.String(o, 10, DocString);
        foreach (var value in Input) Wire.Message(o, 11, value.WriteTo);
        foreach (var value in Output) Wire.Message(o, 12, value.WriteTo);
        foreach (var value in ValueInfo) Wire.Message(o, 13, value.WriteTo);
    }

    public static GraphProto Parse(byte[] bytes)
    {
        var graph = new GraphProto();
        Wire.Read(bytes, (field, wire, input) =>
        {
            switch (field)
            {
                case 1: graph.Node.Add(NodeProto.Parse(input.ReadBytes().ToByteArray())); return true;
                case 2: graph.Name = input.ReadString(); return true;
                case 5: graph.Initializer.Add(TensorProto.Parse(input.ReadBytes().ToByteArray())); return true;
                case 10: graph.DocString = input.ReadString(); return true;
                case 11: graph.Input.Add(ValueInfoProto.Parse(input.ReadBytes().ToByteArray())); return true;
                case 12: graph.Output.Add(ValueInfoProto.Parse(input.ReadBytes().ToByteArray())); return true;
                case 13: graph.ValueInfo.Add(ValueInfoProto.Parse(input.ReadBytes().ToByteArray())); return true;
                default: return false;
            }
        });
        return graph;
    }
}

/// <summary>NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, doc_string 6, domain 7.</summary>
internal sealed class NodeProto
{
    public List<string> Input { get; } = [];
    public List<string> Output { get; } = [];
    public string Name { get; set; } = "";
    public string OpType { get; set; } = "";
    public List<AttributeProto> Attribute { get; } = [];
    public string DocString { get; set; } = "";
    public string Domain { get; set; } = "";

    /// <summary>The attribute named <paramref name="name"/>, or null.</summary>
    public AttributeProto? Find(string name) => Attribute.FirstOrDefault(a => a.Name == name);

    public void WriteTo(CodedOutputStream o)
    {
        foreach (string name in Input) Wire.StringAlways(o, 1, name);
        foreach (string name in Output) Wire.StringAlways(o, 2, name);
        Wire.String(o, 3, Name);
        Wire.String(o, 4, OpType);
        foreach (var attribute in Attribute) Wire.Message(o, 5, attribute.WriteTo);
        Wire.String(o, 6, DocString);
        Wire.String(o, 7, Domain);
    }

    public static NodeProto Parse(byte[] bytes)
    {
        var node = new NodeProto();
        Wire.Read(bytes, (field, wire, input) =>
        {
            switch (field)
            {
                case 1: node.Input.Add(input.ReadString()); return true;
                case 2: node.Output.Add(input.ReadString()); return true;
                case 3: node.Name = input.ReadString(); return true;
                case 4: node.OpType = input.ReadString(); return true;
                case 5: node.Attribute.Add(AttributeProto.Parse(input.ReadBytes().ToByteArray())); return true;
                case 6: node.DocString = input.ReadString(); return true;
                case 7: node.Domain = input.ReadString(); return true;
                default: return false;
            }
        });
        return node;
    }
}

/// <summary>AttributeProto: name 1, f 2, i 3, s 4, floats 7, ints 8, type 20 (tensor and graph values are skipped).</summary>
internal sealed class AttributeProto
{
    public string Name { get; set; } = "";
    public OnnxAttributeType Type { get; set; }
    public float F { get; set; }
    public long I { get; set; }
    public byte[] S { get; set; } = [];
    public List<float> Floats { get; } = [];
    public List<long> Ints { get; } = [];

    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = OnnxAttributeType.Float, F = value };

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = OnnxAttributeType.Int, I = value };

    public void WriteTo(CodedOutputStream o)
    {
        Wire.String(o, 1, Name);
        // The value field of the declared type is always written, even when it is zero: a reader
        // must not have to guess between "absent" and "0" (onnx.proto, AttributeProto notes).
        switch (Type)
        {
            case OnnxAttributeType.Float:
                o.WriteTag(2, WireFormat.WireType.Fixed32);
                o.WriteFloat(F);
                break;
            case OnnxAttributeType.Int:
                o.WriteTag(3, WireFormat.WireType.Varint);
                o.WriteInt64(I);
                break;
            case OnnxAttributeType.String:
                o.WriteTag(4, WireFormat.WireType.LengthDelimited);
                o.WriteBytes(ByteString.CopyFrom(S));
                break;
            case OnnxAttributeType.Floats:
                foreach (float f in Floats)
                {
                    o.WriteTag(7, WireFormat.WireType.Fixed32);
                    o.WriteFloat(f);
                }
                break;
            case OnnxAttributeType.Ints:
                foreach (long i in Ints)
                {
                    o.WriteTag(8, WireFormat.WireType.Varint);
                    o.WriteInt64(i);
                }
                break;
        }
        o.WriteTag(20, WireFormat.WireType.Varint);
        o.WriteEnum((int)Type);
    }

    public static AttributeProto Parse(byte[] bytes)
    {
        var attribute = new AttributeProto();
        Wire.Read(bytes, (field, wire, input) =>
        {
            switch (field)
            {
                case 1: attribute.Name = input.ReadString(); return true;
                case 2: attribute.F = input.ReadFloat(); return true;
                case 3: attribute.I = input.ReadInt64(); return true;
                case 4: attribute.S = input.ReadBytes().ToByteArray(); return true;
                case 7: Wire.RepeatedFloat(input, wire, attribute.Floats); return true;
                case 8: Wire.RepeatedInt64(input, wire, attribute.Ints); return true;
                case 20: attribute.Type = (OnnxAttributeType)input.ReadEnum(); return true;
                default: return false;
            }
        });
        return attribute;
    }
}

/// <summary>
/// TensorProto: dims 1, data_type 2, float_data 4, int32_data 5, int64_data 7, name 8, raw_data 9,
/// double_data 10, data_location 14. This writer always uses raw_data (little-endian, as onnx.proto requires).
/// </summary>
internal sealed class TensorProto
{
    public List<long> Dims { get; } = [];
    public OnnxDataType DataType { get; set; }
    public List<float> FloatData { get; } = [];
    public List<double> DoubleData { get; } = [];
    public List<int> Int32Data { get; } = [];
    public List<long> Int64Data { get; } = [];
    public string Name { get; set; } = "";
    public byte[] RawData { get; set; } = [];

    /// <summary>1 when the values live in an external file (DataLocation.EXTERNAL).</summary>
    public int DataLocation { get; set; }

    public void WriteTo(CodedOutputStream o)
    {
        foreach (long d in Dims)
        {
            o.WriteTag(1, WireFormat.WireType.Varint);
            o.WriteInt64(d);
        }
        o.WriteTag(2, WireFormat.WireType.Varint);
        o.WriteInt32((int)DataType);
        Wire.String(o, 8, Name);
        o.WriteTag(9, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(RawData));
    }

    public static TensorProto Parse(byte[] bytes)
    {
        var tensor = new TensorProto();
        Wire.Read(bytes, (field, wire, input) =>
        {
            switch (field)
            {
                case 1: Wire.RepeatedInt64(input, wire, tensor.Dims); return true;
                case 2: tensor.DataType = (OnnxDataType)input.ReadInt32(); return true;
                case 4: Wire.RepeatedFloat(input, wire, tensor.FloatData); return true;
                case 5: Wire.RepeatedInt32(input, wire, tensor.Int32Data); return true;
                case 7: Wire.RepeatedInt64(input, wire, tensor.Int64Data); return true;
                case 8: tensor.Name = input.ReadString(); return true;
                case 9: tensor.RawData = input.ReadBytes().ToByteArray(); return true;
                case 10: Wire.RepeatedDouble(input, wire, tensor.DoubleData); return true;
                case 14: tensor.DataLocation = input.ReadEnum(); return true;
                default: return false;
            }
        });
        return tensor;
    }
}

/// <summary>ValueInfoProto: name 1, type 2 (TypeProto; only its tensor_type, field 1, is kept).</summary>
internal sealed class ValueInfoProto
{
    public string Name { get; set; } = "";

    /// <summary>TypeProto.Tensor.elem_type.</summary>
    public OnnxDataType ElementType { get; set; }

    /// <summary>TensorShapeProto dims: a fixed size, or a symbolic name such as <c>N</c>; null when the shape is unknown.</summary>
    public List<TensorDim>? Shape { get; set; }

    public static ValueInfoProto Tensor(string name, OnnxDataType type, params TensorDim[] shape) =>
        new() { Name = name, ElementType = type, Shape = [.. shape] };

    public void WriteTo(CodedOutputStream o)
    {
        Wire.String(o, 1, Name);
        // TypeProto { tensor_type 1: TypeProto.Tensor { elem_type 1, shape 2: TensorShapeProto { dim 1 } } }
        Wire.Message(o, 2, type => Wire.Message(type, 1, tensor =>
        {
            tensor.WriteTag(1, WireFormat.WireType.Varint);
            tensor.WriteInt32((int)ElementType);
            if (Shape is null) return;
            Wire.Message(tensor, 2, shape =>
            {
                foreach (var dim in Shape) Wire.Message(shape, 1, dim.WriteTo);
            });
        }));
    }

    public static ValueInfoProto Parse(byte[] bytes)
    {
        var value = new ValueInfoProto();
        Wire.Read(bytes, (field, wire, input) =>
        {
            switch (field)
            {
                case 1: value.Name = input.ReadString(); return true;
                case 2: value.ReadType(input.ReadBytes().ToByteArray()); return true;
                default: return false;
            }
        });
        return value;
    }

    private void ReadType(byte[] typeBytes)
    {
        Wire.Read(typeBytes, (field, wire, input) =>
        {
            if (field != 1) return false; // sequence, map, optional, sparse types are not MLP inputs
            Wire.Read(input.ReadBytes().ToByteArray(), (tensorField, _, tensor) =>
            {
                switch (tensorField)
                {
                    case 1: ElementType = (OnnxDataType)tensor.ReadInt32(); return true;
                    case 2:
                        Shape = [];
                        Wire.Read(tensor.ReadBytes().ToByteArray(), (shapeField, _, shape) =>
                        {
                            if (shapeField != 1) return false;
                            Shape.Add(TensorDim.Parse(shape.ReadBytes().ToByteArray()));
                            return true;
                        });
                        return true;
                    default: return false;
                }
            });
            return true;
        });
    }
}

/// <summary>TensorShapeProto.Dimension: dim_value 1 or dim_param 2.</summary>
internal sealed record TensorDim(long? Value, string? Param)
{
    public static TensorDim Fixed(long value) => new(value, null);

    public static TensorDim Symbolic(string name) => new(null, name);

    public void WriteTo(CodedOutputStream o)
    {
        if (Value is long v)
        {
            o.WriteTag(1, WireFormat.WireType.Varint);
            o.WriteInt64(v);
        }
        else if (Param is { } p) Wire.String(o, 2, p);
    }

    public static TensorDim Parse(byte[] bytes)
    {
        long? value = null;
        string? param = null;
        Wire.Read(bytes, (field, wire, input) =>
        {
            switch (field)
            {
                case 1: value = input.ReadInt64(); return true;
                case 2: param = input.ReadString(); return true;
                default: return false;
            }
        });
        return new TensorDim(value, param);
    }

    public override string ToString() => Value?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? Param ?? "?";
}

/// <summary>Protobuf wire helpers shared by the messages above.</summary>
internal static class Wire
{
    /// <summary>Serializes one message body.</summary>
    public static byte[] Encode(Action<CodedOutputStream> write)
    {
        using var stream = new MemoryStream();
        using (var output = new CodedOutputStream(stream, leaveOpen: true))
        {
            write(output);
        }
        return stream.ToArray();
    }

    /// <summary>An embedded message: tag, length, body.</summary>
    public static void Message(CodedOutputStream o, int field, Action<CodedOutputStream> write)
    {
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(Encode(write)));
    }

    /// <summary>An optional string, written only when non-empty.</summary>
    public static void String(CodedOutputStream o, int field, string value)
    {
        if (value.Length > 0) StringAlways(o, field, value);
    }

    /// <summary>A string element of a repeated field (an empty name is meaningful there: an omitted optional input).</summary>
    public static void StringAlways(CodedOutputStream o, int field, string value)
    {
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteString(value);
    }

    /// <summary>An optional int64, written only when non-zero.</summary>
    public static void Int64(CodedOutputStream o, int field, long value)
    {
        if (value == 0) return;
        o.WriteTag(field, WireFormat.WireType.Varint);
        o.WriteInt64(value);
    }

    /// <summary>
    /// Reads a message body field by field; <paramref name="field"/> returns false for fields it does
    /// not know, which are skipped.
    /// </summary>
    public static void Read(byte[] bytes, Func<int, WireFormat.WireType, CodedInputStream, bool> field)
    {
        var input = new CodedInputStream(bytes);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (!field(WireFormat.GetTagFieldNumber(tag), WireFormat.GetTagWireType(tag), input)) input.SkipLastField();
        }
    }

    // Repeated scalars come packed (one length-delimited run, the proto3 default and onnx.proto's
    // float_data) or unpacked (one tag per element, proto2's default); parsers must accept both.

    public static void RepeatedInt64(CodedInputStream input, WireFormat.WireType wire, List<long> into) =>
        Repeated(input, wire, into, i => i.ReadInt64());

    public static void RepeatedInt32(CodedInputStream input, WireFormat.WireType wire, List<int> into) =>
        Repeated(input, wire, into, i => i.ReadInt32());

    public static void RepeatedFloat(CodedInputStream input, WireFormat.WireType wire, List<float> into) =>
        Repeated(input, wire, into, i => i.ReadFloat());

    public static void RepeatedDouble(CodedInputStream input, WireFormat.WireType wire, List<double> into) =>
        Repeated(input, wire, into, i => i.ReadDouble());

    private static void Repeated<T>(CodedInputStream input, WireFormat.WireType wire, List<T> into, Func<CodedInputStream, T> read)
    {
        if (wire != WireFormat.WireType.LengthDelimited)
        {
            into.Add(read(input));
            return;
        }
        var packed = new CodedInputStream(input.ReadBytes().ToByteArray());
        while (!packed.IsAtEnd) into.Add(read(packed));
    }
}
