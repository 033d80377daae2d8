using Google.Protobuf;
using Parity.Onnx.Protobuf;
using Parity.Tensors;
using OnnxAttributeType = Parity.Onnx.Protobuf.AttributeProto.Types.AttributeType;
using OnnxDataType = Parity.Onnx.Protobuf.TensorProto.Types.DataType;
using TensorDim = Parity.Onnx.Protobuf.TensorShapeProto.Types.Dimension;

namespace Parity.Onnx.Tests;

public class OnnxMessagesTests
{
    [Test]
    public void Packed_and_unpacked_repeated_fields_and_float_data_are_both_read()
    {
        // TensorProto with packed dims (field 1), packed float_data (4), a name (8), an unknown field (99).
        byte[] bytes = Encode(o =>
        {
            o.WriteTag(1, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(ByteString.CopyFrom(Encode(p => { p.WriteInt64(2); p.WriteInt64(3); })));
            o.WriteTag(2, WireFormat.WireType.Varint);
            o.WriteInt32(1);
            o.WriteTag(4, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(ByteString.CopyFrom(Encode(p => { foreach (float f in new[] { 1f, 2f, 3f, 4f, 5f, 6.5f }) p.WriteFloat(f); })));
            o.WriteTag(8, WireFormat.WireType.LengthDelimited);
            o.WriteString("w");
            o.WriteTag(99, WireFormat.WireType.Varint);
            o.WriteInt64(12345);
        });

        var tensor = TensorProto.Parser.ParseFrom(bytes);
        var value = OnnxImporter.InitializerValue(tensor, "test");

        Assert.That(tensor.Name, Is.EqualTo("w"));
        Assert.That(value.Shape, Is.EqualTo(new[] { 2, 3 }));
        Assert.That(value.Data, Is.EqualTo(new double[] { 1, 2, 3, 4, 5, 6.5 }));
        Assert.That(value.DType, Is.EqualTo(DType.Float32));
    }

    [Test]
    public void Unpacked_double_data_is_read()
    {
        byte[] bytes = Encode(o =>
        {
            o.WriteTag(1, WireFormat.WireType.Varint);
            o.WriteInt64(2);
            o.WriteTag(2, WireFormat.WireType.Varint);
            o.WriteInt32(11);
            foreach (double d in new[] { 0.1, -2.5 })
            {
                o.WriteTag(10, WireFormat.WireType.Fixed64);
                o.WriteDouble(d);
            }
        });

        var value = OnnxImporter.InitializerValue(TensorProto.Parser.ParseFrom(bytes), "test");

        Assert.That(value.Data, Is.EqualTo(new[] { 0.1, -2.5 }));
        Assert.That(value.DType, Is.EqualTo(DType.Float64));
    }

    [Test]
    public void A_model_written_and_read_back_keeps_its_graph()
    {
        var model = new ModelProto { IrVersion = 8, ProducerName = "p", Graph = new GraphProto() };
        model.OpsetImport.Add(new OperatorSetIdProto { Version = 17 });
        model.Graph.Input.Add(ValueInfoProto.Tensor("x", OnnxDataType.Double, TensorDim.Symbolic("N"), TensorDim.Fixed(3)));
        var node = new NodeProto { OpType = "Gemm", Name = "g" };
        node.Input.AddRange(["x", "w", ""]);
        node.Output.Add("y");
        node.Attribute.Add(AttributeProto.Int("transB", 0));
        node.Attribute.Add(AttributeProto.Float("alpha", 0.5f));
        model.Graph.Node.Add(node);

        var back = ModelProto.Parser.ParseFrom(model.ToByteArray());

        Assert.That(back.IrVersion, Is.EqualTo(8));
        Assert.That(back.OpsetImport.Single().Version, Is.EqualTo(17));
        Assert.That(back.Graph.Input.Single().ElementType, Is.EqualTo(OnnxDataType.Double));
        Assert.That(back.Graph.Input.Single().Shape, Is.EqualTo(new[] { TensorDim.Symbolic("N"), TensorDim.Fixed(3) }));
        var g = back.Graph.Node.Single();
        Assert.That(g.Input, Is.EqualTo(new[] { "x", "w", "" }), "an empty name marks an omitted optional input and must survive");
        Assert.That(g.Find("transB")!.Type, Is.EqualTo(OnnxAttributeType.Int), "a zero-valued attribute keeps its type");
        Assert.That(g.Find("transB")!.I, Is.EqualTo(0));
        Assert.That(g.Find("alpha")!.F, Is.EqualTo(0.5f));
    }

    [Test]
    public void External_data_is_refused_with_the_initializer_name()
    {
        var tensor = new TensorProto { Name = "big.weight", DataType = (int)OnnxDataType.Float, DataLocation = TensorProto.Types.DataLocation.External };
        tensor.Dims.Add(4);

        var error = Assert.Throws<OnnxImportException>(() => OnnxImporter.InitializerValue(tensor, "m.onnx"));
        Assert.That(error!.Message, Does.Contain("initializer 'big.weight' keeps its values in an external file"));
    }

    private static byte[] Encode(Action<CodedOutputStream> write)
    {
        using var stream = new MemoryStream();
        using (var output = new CodedOutputStream(stream, leaveOpen: true)) write(output);
        return stream.ToArray();
    }
}
