using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Parity.Tensors;

namespace Parity.Tracing;

/// <summary>
/// A tensor's values as the little-endian bytes of its dtype (docs/trace.md, "tensors.bin") and back, converted in one
/// vectorized pass on little-endian machines (every machine .NET runs on today) and value by value elsewhere.
/// </summary>
public static class TensorBytes
{
    /// <summary>The values of <paramref name="t"/> as bytes in a buffer rented from <see cref="ArrayPool{T}.Shared"/>; the caller returns it.</summary>
    public static ArraySegment<byte> Rent(Tensor t) => Rent(t, t.DType);

    /// <summary>
    /// The values of <paramref name="t"/> as little-endian bytes of <paramref name="dtype"/> (float32 rounds each value to
    /// nearest), in a buffer rented from <see cref="ArrayPool{T}.Shared"/>; the caller returns it.
    /// </summary>
    public static ArraySegment<byte> Rent(Tensor t, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(t);
        int length = checked(t.Length * dtype.Size());
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        var bytes = buffer.AsSpan(0, length);
        var data = t.Data;
        if (!BitConverter.IsLittleEndian)
        {
            for (int i = 0; i < data.Length; i++)
            {
                if (dtype == DType.Float32) BinaryPrimitives.WriteSingleLittleEndian(bytes[(i * 4)..], (float)data[i]);
                else BinaryPrimitives.WriteDoubleLittleEndian(bytes[(i * 8)..], data[i]);
            }
        }
        else if (dtype == DType.Float32) FloatConversion.Narrow(data, MemoryMarshal.Cast<byte, float>(bytes));
        else MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(bytes);
        return new ArraySegment<byte>(buffer, 0, length);
    }

    /// <summary>Little-endian values of <paramref name="dtype"/> as a tensor of <paramref name="shape"/> over a pooled array (<see cref="Tensor.Pooled"/>).</summary>
    public static Tensor ToTensor(ReadOnlySpan<byte> bytes, int[] shape, DType dtype)
    {
        var tensor = Tensor.Pooled(shape, dtype);
        if (bytes.Length != (long)tensor.Length * dtype.Size())
            throw new ArgumentException($"{bytes.Length} bytes do not hold the {tensor.Length} {dtype.Name()} values of shape {tensor.ShapeText}", nameof(bytes));
        Read(bytes, dtype, tensor.Data);
        return tensor;
    }

    /// <summary>Widens little-endian values of <paramref name="dtype"/> into <paramref name="values"/>, exactly.</summary>
    public static void Read(ReadOnlySpan<byte> bytes, DType dtype, Span<double> values)
    {
        if (!BitConverter.IsLittleEndian)
        {
            for (int i = 0; i < values.Length; i++)
                values[i] = dtype == DType.Float32 ? BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * 4)..]) : BinaryPrimitives.ReadDoubleLittleEndian(bytes[(i * 8)..]);
        }
        else if (dtype == DType.Float32) FloatConversion.Widen(MemoryMarshal.Cast<byte, float>(bytes), values);
        else MemoryMarshal.Cast<byte, double>(bytes).CopyTo(values);
    }
}
