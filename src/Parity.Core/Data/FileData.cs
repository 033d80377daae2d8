namespace Parity.Data;

/// <summary>
/// Turns values read from a user's file (CSV columns, NumPy arrays) into a <see cref="DataSet"/>: inputs rounded to
/// float32 as every source's are, labels checked to be whole numbers in <c>0..classes-1</c>, each problem named with
/// where it is in the file.
/// </summary>
public static class FileData
{
    /// <summary>
    /// A data set of <paramref name="rows"/> samples of <paramref name="features"/> inputs (row-major) and their labels.
    /// <paramref name="where"/> names sample i's place in the file (a CSV line, an array index) for messages.
    /// </summary>
    /// <exception cref="InvalidDataException">An input is not finite or does not fit float32, or a label is not a class index.</exception>
    public static DataSet Create(ReadOnlySpan<double> inputs, ReadOnlySpan<double> labels, int rows, int features, int classes, string origin, Func<int, string> where)
    {
        var x = new float[(long)rows * features];
        for (int i = 0; i < x.Length; i++)
        {
            double v = inputs[i];
            float f = (float)v;
            if (!float.IsFinite(f))
                throw new InvalidDataException($"{origin}: {where(i / features)}, feature {i % features}: {v} is not a finite float32 value");
            x[i] = f;
        }
        var y = new int[rows];
        for (int i = 0; i < rows; i++)
        {
            double v = labels[i];
            if (v != Math.Floor(v) || v < 0 || v >= classes)
                throw new InvalidDataException($"{origin}: {where(i)}: label {v} is not a class index in 0..{classes - 1} (the model has {classes} outputs)");
            y[i] = (int)v;
        }
        return new DataSet(x, y, features, classes, origin);
    }
}
