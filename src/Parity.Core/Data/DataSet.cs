using Parity.Tensors;

namespace Parity.Data;

/// <summary>An in-memory labelled data set: float32 inputs, row-major [count, features].</summary>
public sealed class DataSet
{
    private readonly float[] _inputs;
    private readonly int[] _labels;
    private float[]? _targets;

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

    /// <summary>Float targets per sample (row-major [count, <see cref="TargetWidth"/>]), or null when the set has labels only.</summary>
    public ReadOnlyMemory<float>? Targets => _targets is null ? null : _targets;

    /// <summary>True when the set carries float targets.</summary>
    public bool HasTargets => _targets is not null;

    /// <summary>Targets per sample; 0 when the set has none.</summary>
    public int TargetWidth { get; private set; }

    /// <summary>
    /// The same samples with float targets [count, <paramref name="width"/>] beside the labels (not copied): a data source's
    /// regression targets, or the targets an element-wise loss derives (<see cref="WithTargetsFrom"/>).
    /// </summary>
    public DataSet WithTargets(float[] targets, int width)
    {
        ArgumentNullException.ThrowIfNull(targets);
        if (width <= 0 || targets.Length != (long)Count * width)
            throw new ArgumentException($"{Origin}: {targets.Length} target values do not make {Count} rows of {width}");
        return new DataSet(_inputs, _labels, Features, Classes, Origin) { _targets = targets, TargetWidth = width };
    }

    /// <summary>
    /// The set as the loss sees it: unchanged for softmax cross-entropy; for an element-wise loss, with targets from
    /// <paramref name="source"/>: the one-hot labels, the inputs themselves, or the set's own targets (which must exist).
    /// </summary>
    public DataSet WithTargetsFrom(Specs.TargetSource source, bool elementWise)
    {
        if (!elementWise) return this;
        switch (source)
        {
            case Specs.TargetSource.Inputs:
                return WithTargets(_inputs, Features);
            case Specs.TargetSource.Data:
                return _targets is null ? throw new ArgumentException($"{Origin}: the data set has no float targets") : this;
            default:
                var onehot = new float[checked(Count * Classes)];
                for (int i = 0; i < Count; i++) onehot[i * Classes + _labels[i]] = 1;
                return WithTargets(onehot, Classes);
        }
    }

    /// <summary>The first <paramref name="count"/> samples.</summary>
    public DataSet Take(int count)
    {
        if (count >= Count) return this;
        var taken = new DataSet(_inputs[..(count * Features)], _labels[..count], Features, Classes, Origin);
        return _targets is null ? taken : taken.WithTargets(_targets[..(count * TargetWidth)], TargetWidth);
    }

    /// <summary>The samples at <paramref name="indices"/>, in that order, as a batch.</summary>
    public Batch Gather(ReadOnlySpan<int> indices)
    {
        var y = new int[indices.Length];
        for (int r = 0; r < indices.Length; r++) y[r] = _labels[indices[r]];
        var batch = new Batch(new Tensor([indices.Length, Features], Rows(_inputs, indices, Features), DType.Float32), y);
        if (_targets is null) return batch;
        return batch with { Targets = new Tensor([indices.Length, TargetWidth], Rows(_targets, indices, TargetWidth), DType.Float32) };
    }

    // The rows at indices, widened to float64 (exact, as Tensor.Widen does) one vectorized row at a time; every element is written, so the
    // array (a training batch's inputs are megabytes) is not zeroed first.
    private static double[] Rows(float[] values, ReadOnlySpan<int> indices, int width)
    {
        var rows = GC.AllocateUninitializedArray<double>(indices.Length * width);
        for (int r = 0; r < indices.Length; r++)
            FloatConversion.Widen(values.AsSpan(indices[r] * width, width), rows.AsSpan(r * width, width));
        return rows;
    }

    /// <summary>All samples in order as one batch.</summary>
    public Batch All()
    {
        var idx = new int[Count];
        for (int i = 0; i < idx.Length; i++) idx[i] = i;
        return Gather(idx);
    }
}
