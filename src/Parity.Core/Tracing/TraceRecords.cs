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

/// <summary>Everything one backend produced at one step of one phase, in production order.</summary>
public sealed class StepRecord
{
    private readonly List<TraceEntry> _entries = [];

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
    public IReadOnlyList<TraceEntry> Entries => _entries;

    /// <summary>Appends an entry.</summary>
    public StepRecord Add(TensorKind kind, string site, Tensor value)
    {
        _entries.Add(new TraceEntry(new TensorKey(kind, site), value));
        return this;
    }

    /// <summary>Appends a scalar entry.</summary>
    public StepRecord AddScalar(TensorKind kind, double value, DType dtype) => Add(kind, "", Tensor.Scalar(value, dtype));

    /// <summary>The entry with this key, or null.</summary>
    public Tensor? Find(TensorKind kind, string site = "")
    {
        foreach (var e in _entries)
            if (e.Key.Kind == kind && e.Key.Site == site) return e.Value;
        return null;
    }
}
