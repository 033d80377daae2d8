namespace Parity.Tensors;

/// <summary>
/// The float64 arrays that captured tensors are made of, lent out by length and taken back when the record holding them
/// is released (<see cref="Tracing.StepRecord.Release"/>), so that the next step's captures reuse warm arrays instead of
/// fresh pages the operating system must zero. A fully captured step hands over megabytes in large arrays; without the
/// pool each step allocates them anew. Thread-safe. Bounded: arrays shorter than <see cref="MinLength"/> are not kept
/// (the garbage collector's young generation serves them well), and the arrays kept hold at most
/// <see cref="CapacityBytes"/>; an array given back beyond that is left to the garbage collector. An array that is never
/// given back is simply collected, as any other.
/// </summary>
public sealed class TensorPool
{
    /// <summary>The shortest array kept: 8 KiB of values.</summary>
    public const int MinLength = 1024;

    private readonly Dictionary<int, Stack<double[]>> _free = [];
    private readonly HashSet<double[]> _kept = new(ReferenceEqualityComparer.Instance); // every array in _free, to refuse a second return
    private readonly Lock _gate = new();
    private long _keptBytes;

    /// <summary>A pool that keeps at most <paramref name="capacityBytes"/>.</summary>
    internal TensorPool(long capacityBytes) => CapacityBytes = capacityBytes;

    /// <summary>
    /// The pool of this process, which <see cref="Tensor.Pooled"/> rents from. It keeps at most a sixteenth of the memory
    /// available to the process, and at most 1 GiB (one fully captured step of the largest scenarios fits; more would
    /// only keep memory from the rest of the run).
    /// </summary>
    public static TensorPool Shared { get; } = new(Math.Min(1L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 16));

    /// <summary>The most bytes the kept arrays may hold.</summary>
    public long CapacityBytes { get; }

    /// <summary>Bytes held by the arrays kept now.</summary>
    public long KeptBytes
    {
        get
        {
            lock (_gate) return _keptBytes;
        }
    }

    /// <summary>
    /// An array of <paramref name="length"/> elements: one given back before if there is one, else a new one. Its
    /// contents are unspecified (stale values of an earlier tensor): the caller writes every element.
    /// </summary>
    public double[] Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length >= MinLength)
        {
            lock (_gate)
            {
                if (_free.TryGetValue(length, out var stack) && stack.TryPop(out var array))
                {
                    _kept.Remove(array);
                    _keptBytes -= Bytes(array);
                    return array;
                }
            }
        }
        return GC.AllocateUninitializedArray<double>(length);
    }

    /// <summary>
    /// Takes <paramref name="array"/> back for a later <see cref="Rent"/>; its owner must not read or write it again.
    /// Short arrays, and arrays beyond <see cref="CapacityBytes"/>, are left to the garbage collector.
    /// </summary>
    /// <exception cref="InvalidOperationException">The array is already in the pool (given back twice).</exception>
    public void Return(double[] array)
    {
        ArgumentNullException.ThrowIfNull(array);
        if (array.Length < MinLength) return;
        lock (_gate)
        {
            if (_kept.Contains(array))
                throw new InvalidOperationException($"an array of {array.Length} values was given back to the tensor pool twice");
            if (_keptBytes + Bytes(array) > CapacityBytes) return;
            if (!_free.TryGetValue(array.Length, out var stack)) _free[array.Length] = stack = new Stack<double[]>();
            stack.Push(array);
            _kept.Add(array);
            _keptBytes += Bytes(array);
        }
    }

    private static long Bytes(double[] array) => (long)array.Length * sizeof(double);
}
