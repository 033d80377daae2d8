namespace Parity.Tensors;

/// <summary>
/// The one tensor type every backend, trace and comparer shares: a dense row-major array with a shape
/// and the precision it was computed in. Values are held as <see cref="double"/> whatever the dtype
/// (a float32 value widens to double exactly), so comparison code has one path.
/// </summary>
public sealed class Tensor
{
    private double[]? _data;
    private readonly bool _pooled;
    private TensorFill? _fill; // set while another thread may still be writing _data (TensorFill)

    /// <summary>Creates a tensor over <paramref name="data"/> (not copied).</summary>
    public Tensor(int[] shape, double[] data, DType dtype)
        : this(shape, data, dtype, pooled: false)
    {
    }

    private Tensor(int[] shape, double[] data, DType dtype, bool pooled)
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
        _data = data;
        DType = dtype;
        _pooled = pooled;
    }

    /// <summary>Dimensions, outermost first.</summary>
    public int[] Shape { get; }

    /// <summary>Elements in row-major order.</summary>
    /// <exception cref="ObjectDisposedException">The tensor's array was given back to <see cref="TensorPool"/> (<see cref="Release"/>).</exception>
    /// <remarks>A tensor still being filled (<see cref="TensorFill"/>) waits here until its values are all written.</remarks>
    public double[] Data => _fill is null && _data is { } data ? data : Settled(); // small enough to inline: element loops call it per element

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private double[] Settled()
    {
        if (Volatile.Read(ref _fill) is { } fill)
        {
            fill.Wait();
            Volatile.Write(ref _fill, null);
        }
        return _data ?? Released();
    }

    /// <summary>Marks this tensor's values as written by <paramref name="fill"/>, which holds its array already.</summary>
    internal void FillsFrom(TensorFill fill) => Volatile.Write(ref _fill, fill);

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private double[] Released() => throw new ObjectDisposedException(nameof(Tensor),
        $"this {DType.Name()} tensor of shape {ShapeText} was released: its array went back to the tensor pool and may hold another tensor's values now");

    /// <summary>The precision the values were computed in.</summary>
    public DType DType { get; }

    /// <summary>Number of elements.</summary>
    public int Length => (_data ?? Released()).Length;

    /// <summary>Shape as text, e.g. <c>[100,784]</c>.</summary>
    public string ShapeText => "[" + string.Join(",", Shape) + "]";

    /// <summary>A scalar (shape []).</summary>
    public static Tensor Scalar(double value, DType dtype) => new([], [value], dtype);

    /// <summary>Copies float32 values (into an array of <see cref="TensorPool"/>).</summary>
    public static Tensor FromFloats(ReadOnlySpan<float> values, int[] shape) => Copied(values, shape, DType.Float32);

    /// <summary>Copies float64 values (into an array of <see cref="TensorPool"/>).</summary>
    public static Tensor FromDoubles(ReadOnlySpan<double> values, int[] shape) => Copied(values, shape, DType.Float64);

    /// <summary>
    /// Copies float32 or float64 values, tagged <paramref name="dtype"/>, into an array of <see cref="TensorPool"/>, in one
    /// vectorized pass; float32 widens exactly (float64 holds every float32). Every backend that hands over its values
    /// (the reference's arrays, libtorch, ONNX Runtime, a worker's answer, an in-process Python array) copies here.
    /// </summary>
    public static Tensor Copied<T>(ReadOnlySpan<T> values, int[] shape, DType dtype)
        where T : unmanaged
    {
        var tensor = Pooled(shape, dtype);
        if (values.Length != tensor.Length)
            throw new ArgumentException($"shape {tensor.ShapeText} holds {tensor.Length} elements but {values.Length} values were given", nameof(values));
        FloatConversion.Convert<T, double>(values, tensor.Data); // exact for float and double
        return tensor;
    }

    /// <summary>
    /// A tensor of <paramref name="shape"/> over an array rented from <see cref="TensorPool"/>, its values unspecified:
    /// the caller writes every element of <see cref="Data"/> before handing the tensor over. <see cref="Release"/> gives
    /// the array back; a tensor never released is collected as any other.
    /// </summary>
    public static Tensor Pooled(int[] shape, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long count = 1;
        foreach (int d in shape) count *= Math.Max(d, 0);
        return new Tensor(shape, TensorPool.Shared.Rent(checked((int)count)), dtype, pooled: true);
    }

    /// <summary>
    /// Gives the array of a <see cref="Pooled"/> tensor back to <see cref="TensorPool"/>; reading <see cref="Data"/>
    /// afterwards throws. Releasing twice does nothing; a tensor over an array of its creator's (the public constructor)
    /// is left as it is, since the array is not the pool's.
    /// </summary>
    internal void Release()
    {
        if (!_pooled) return;
        if (Interlocked.Exchange(ref _data, null) is not { } data) return;
        if (Volatile.Read(ref _fill) is { IsDone: false } fill) fill.ReturnWhenDone(data); // not into the pool while being written
        else TensorPool.Shared.Return(data);
    }

    /// <summary>True once a <see cref="Pooled"/> tensor was released.</summary>
    public bool IsReleased => _pooled && Volatile.Read(ref _data) is null;

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
