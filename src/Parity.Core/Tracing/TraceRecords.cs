using Parity.Tensors;

namespace Parity.Tracing;

/// <summary>
/// Identifies a traced tensor within one step: its kind and its site. The site is a call-site id for
/// per-call kinds (Forward, BatchMean, OutputGradient, EvalOutput), a parameter name
/// (<c>instance.param</c>, e.g. <c>l1.weight</c>) for parameters and their gradients, an instance name
/// for running statistics, and empty for scalars (Loss, accuracies).
/// </summary>
public readonly record struct TensorKey(TensorKind Kind, string Site)
{
    /// <inheritdoc />
    public override string ToString() => Site.Length == 0 ? Kind.Name() : $"{Kind.Name()}:{Site}";
}

/// <summary>A traced tensor.</summary>
public sealed record TraceEntry(TensorKey Key, Tensor Value);

/// <summary>Which part of a run a record belongs to.</summary>
public enum RecordPhase
{
    /// <summary>State before training (step 0): parameters and running statistics as loaded.</summary>
    Initial,

    /// <summary>One training step (forward, backward, update).</summary>
    Train,

    /// <summary>An evaluation after a step.</summary>
    Eval,
}

/// <summary>
/// Everything one backend produced at one step of one phase, in production order. The code that owns a record to its
/// end (the runner, after writing it to the trace) may <see cref="Release"/> it: its pooled arrays go back to
/// <see cref="TensorPool"/> for the next step, and the record can no longer be read. A record never released is
/// collected as any other object.
/// </summary>
public sealed class StepRecord
{
    private readonly List<TraceEntry> _entries = [];
    private int _released;

    /// <summary>Creates an empty record.</summary>
    public StepRecord(int step, RecordPhase phase)
    {
        Step = step;
        Phase = phase;
    }

    /// <summary>0 for the initial state, otherwise the number of optimizer updates done.</summary>
    public int Step { get; }

    /// <summary>Train, eval or initial.</summary>
    public RecordPhase Phase { get; }

    /// <summary>Entries in production order.</summary>
    /// <exception cref="ObjectDisposedException">The record was released.</exception>
    public IReadOnlyList<TraceEntry> Entries
    {
        get
        {
            ThrowIfReleased();
            return _entries;
        }
    }

    /// <summary>True once <see cref="Release"/> was called.</summary>
    public bool IsReleased => Volatile.Read(ref _released) != 0;

    /// <summary>Appends an entry.</summary>
    public StepRecord Add(TensorKind kind, string site, Tensor value)
    {
        ThrowIfReleased();
        _entries.Add(new TraceEntry(new TensorKey(kind, site), value));
        return this;
    }

    /// <summary>Appends a scalar entry.</summary>
    public StepRecord AddScalar(TensorKind kind, double value, DType dtype) => Add(kind, "", Tensor.Scalar(value, dtype));

    /// <summary>The entry with this key, or null.</summary>
    public Tensor? Find(TensorKind kind, string site = "")
    {
        foreach (var e in Entries)
            if (e.Key.Kind == kind && e.Key.Site == site) return e.Value;
        return null;
    }

    /// <summary>
    /// Gives the arrays of the record's pooled tensors (<see cref="Tensor.Pooled"/>) back to <see cref="TensorPool"/>
    /// and empties the record: reading it, or one of those tensors, afterwards throws <see cref="ObjectDisposedException"/>.
    /// Only the code that owns the record to its end calls this, when nothing else holds the record or its tensors (a
    /// record built from another's tensors, such as a canonical or narrowed copy, shares them: releasing both gives each
    /// array back once). Releasing twice does nothing.
    /// </summary>
    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        foreach (var e in _entries) e.Value.Release();
        _entries.Clear();
    }

    private void ThrowIfReleased() => ObjectDisposedException.ThrowIf(IsReleased, this);

    /// <inheritdoc />
    public override string ToString() => $"{Phase} record of step {Step}";
}
