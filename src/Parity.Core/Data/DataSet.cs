using Parity.Tensors;

namespace Parity.Data;

/// <summary>An in-memory labelled data set: float32 inputs, row-major [count, features].</summary>
public sealed class DataSet
{
    private readonly float[] _inputs;
    private readonly int[] _labels;

    /// <summary>Wraps arrays (not copied).</summary>
    public DataSet(float[] inputs, int[] labels, int features, int classes, string origin)
    {
        if (features <= 0 || inputs.Length != (long)labels.Length * features)
            throw new ArgumentException($"{origin}: {inputs.Length} input values do not make {labels.Length} rows of {features} features");
        foreach (int y in labels)
            if (y < 0 || y >= classes) throw new ArgumentException($"{origin}: label {y} outside 0..{classes - 1}");
        _inputs = inputs;
        _labels = labels;
        Features = features;
        Classes = classes;
        Origin = origin;
    }

    /// <summary>Number of samples.</summary>
    public int Count => _labels.Length;

    /// <summary>Input features per sample.</summary>
    public int Features { get; }

    /// <summary>Number of classes.</summary>
    public int Classes { get; }

    /// <summary>Where the samples came from (file path or generator), for messages and reports.</summary>
    public string Origin { get; }

    /// <summary>The first <paramref name="count"/> samples.</summary>
    public DataSet Take(int count) =>
        count >= Count ? this : new DataSet(_inputs[..(count * Features)], _labels[..count], Features, Classes, Origin);

    /// <summary>The samples at <paramref name="indices"/>, in that order, as a batch.</summary>
    public Batch Gather(ReadOnlySpan<int> indices)
    {
        var x = new double[indices.Length * Features];
        var y = new int[indices.Length];
        for (int r = 0; r < indices.Length; r++)
        {
            int src = indices[r] * Features;
            for (int c = 0; c < Features; c++) x[r * Features + c] = _inputs[src + c];
            y[r] = _labels[indices[r]];
        }
        return new Batch(new Tensor([indices.Length, Features], x, DType.Float32), y);
    }

    /// <summary>All samples in order as one batch.</summary>
    public Batch All()
    {
        var idx = new int[Count];
        for (int i = 0; i < idx.Length; i++) idx[i] = i;
        return Gather(idx);
    }
}
