namespace Parity.Onnx.Protobuf;

// Members added to the classes protoc generates from onnx.proto: the few ways the exporter builds
// shapes and attributes, and the importer reads them back. The wire format is all generated.

/// <summary>ValueInfoProto of a tensor: element type and shape through TypeProto.Tensor.</summary>
internal sealed partial class ValueInfoProto
{
    /// <summary>A tensor value named <paramref name="name"/> of element type <paramref name="type"/> and the given shape.</summary>
    public static ValueInfoProto Tensor(string name, TensorProto.Types.DataType type, params TensorShapeProto.Types.Dimension[] shape)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = new TensorShapeProto() };
        tensor.Shape.Dim.AddRange(shape);
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } };
    }

    /// <summary>TypeProto.Tensor.elem_type; <c>Undefined</c> when the value is not a tensor.</summary>
    public TensorProto.Types.DataType ElementType => (TensorProto.Types.DataType)(Type?.TensorType?.ElemType ?? 0);

    /// <summary>The tensor's dimensions; null when the shape is unknown.</summary>
    public IReadOnlyList<TensorShapeProto.Types.Dimension>? Shape => Type?.TensorType?.Shape?.Dim;
}

internal sealed partial class TensorShapeProto
{
    public static partial class Types
    {
        /// <summary>TensorShapeProto.Dimension: a fixed size (dim_value) or a symbolic name such as <c>N</c> (dim_param).</summary>
        internal sealed partial class Dimension
        {
            public static Dimension Fixed(long value) => new() { DimValue = value };

            public static Dimension Symbolic(string name) => new() { DimParam = name };

            /// <summary>The size, the symbolic name, or <c>?</c> when neither is set, as shapes are printed in messages.</summary>
            public string Text => ValueCase switch
            {
                ValueOneofCase.DimValue => DimValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ValueOneofCase.DimParam => DimParam,
                _ => "?",
            };
        }
    }
}

internal sealed partial class AttributeProto
{
    // The type discriminator is always set with the value, so a zero value keeps its type (onnx.proto, AttributeProto).
    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = Types.AttributeType.Float, F = value };

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = Types.AttributeType.Int, I = value };

    public static AttributeProto Text(string name, string value) =>
        new() { Name = name, Type = Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8(value) };
}

internal sealed partial class NodeProto
{
    /// <summary>The attribute named <paramref name="name"/>, or null.</summary>
    public AttributeProto? Find(string name) => Attribute.FirstOrDefault(a => a.Name == name);
}
