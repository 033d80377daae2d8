namespace Parity.Tensors;

/// <summary>
/// The one tensor type every backend, trace and comparer shares: a dense row-major array with a shape
/// and the precision it was computed in. Values are held as <see cref="double"/> whatever the dtype
/// (a float32 value widens to double exactly), so comparison code has one path.
/// </summary>
public sealed class Tensor
{
    /// <summary>Creates a tensor over <paramref name="data"/> (not copied).</summary>
    public Tensor(int[] shape, double[] data, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        long count = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(",", shape)}]", nameof(shape));
            count *= d;
        }
        if (count != data.Length)
            throw new ArgumentException($"shape [{string.Join(",", shape)}] holds {count} elements but data has {data.Length}", nameof(data));
        Shape = shape;
        Data = data;
        DType = dtype;
    }

    /// <summary>Dimensions, outermost first.</summary>
    public int[] Shape { get; }

    /// <summary>Elements in row-major order.</summary>
    public double[] Data { get; }

    /// <summary>The precision the values were computed in.</summary>
    public DType DType { get; }

    /// <summary>Number of elements.</summary>
    public int Length => Data.Length;

    /// <summary>Shape as text, e.g. <c>[100,784]</c>.</summary>
    public string ShapeText => "[" + string.Join(",", Shape) + "]";

    /// <summary>A scalar (shape []).</summary>
    public static Tensor Scalar(double value, DType dtype) => new([], [value], dtype);

    /// <summary>Copies float32 values.</summary>
    public static Tensor FromFloats(ReadOnlySpan<float> values, int[] shape) => new(shape, Widen(values), DType.Float32);

    /// <summary>
    /// float32 values as a new float64 array: exact (float64 holds every float32), in one vectorized pass. Every backend
    /// that hands over float32 values (libtorch, ONNX Runtime, a worker's answer, an in-process Python array) widens here.
    /// </summary>
    public static double[] Widen(ReadOnlySpan<float> values)
    {
        // Every element is written, so the array need not be zeroed first.
        var data = GC.AllocateUninitializedArray<double>(values.Length);
        System.Numerics.Tensors.TensorPrimitives.ConvertTruncating<float, double>(values, data);
        return data;
    }

    /// <summary>Copies float64 values.</summary>
    public static Tensor FromDoubles(ReadOnlySpan<double> values, int[] shape) => new(shape, values.ToArray(), DType.Float64);

    /// <summary>The values narrowed to float32 (exact when <see cref="DType"/> is float32).</summary>
    public float[] ToFloats()
    {
        var result = new float[Data.Length];
        for (int i = 0; i < result.Length; i++) result[i] = (float)Data[i];
        return result;
    }

    /// <summary>The same values tagged with another dtype; narrowing to float32 rounds each value.</summary>
    public Tensor As(DType dtype)
    {
        if (dtype == DType) return this;
        var data = (double[])Data.Clone();
        if (dtype == DType.Float32)
            for (int i = 0; i < data.Length; i++) data[i] = (float)data[i];
        return new Tensor((int[])Shape.Clone(), data, dtype);
    }

    /// <summary>The transpose of a matrix.</summary>
    public Tensor Transpose2D()
    {
        if (Shape.Length != 2) throw new InvalidOperationException($"transpose needs a matrix, got shape {ShapeText}");
        int rows = Shape[0], cols = Shape[1];
        var data = new double[Data.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                data[c * rows + r] = Data[r * cols + c];
        return new Tensor([cols, rows], data, DType);
    }

    /// <summary>True when shapes are equal.</summary>
    public bool SameShape(Tensor other) => Shape.AsSpan().SequenceEqual(other.Shape);

    /// <inheritdoc />
    public override string ToString() => $"Tensor({DType.Name()}, {ShapeText})";
}
