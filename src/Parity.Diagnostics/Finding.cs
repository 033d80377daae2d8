using Parity.Tracing;

namespace Parity.Diagnostics;

/// <summary>Where a finding points: a tensor at a step and phase, or (for model-level causes) an instance only.</summary>
/// <param name="Step">Step (0 for the initial state).</param>
/// <param name="Phase">Initial, train or eval.</param>
/// <param name="Key">Kind and site.</param>
public sealed record FindingLocation(int Step, RecordPhase Phase, TensorKey Key)
{
    /// <inheritdoc />
    public override string ToString() => $"step {Step} {Phase.ToString().ToLowerInvariant()} {Key}";
}

/// <summary>What a finding is about: one backend's divergence, or the spec that every backend runs alike.</summary>
public enum FindingKind
{
    /// <summary>A cause of this backend's divergence from the reference.</summary>
    Cause,

    /// <summary>A finding about the spec (a hazard such as a shared stateful layer) that every backend shows alike; it explains no divergence.</summary>
    Spec,
}

/// <summary>A diagnosed cause, or a finding about the spec, with the numbers that prove it.</summary>
/// <param name="Cause">Stable cause id (docs/causes.md).</param>
/// <param name="Backend">The backend whose trace shows it (the reference for properties of the model itself).</param>
/// <param name="Location">Where it shows first; null when it is a property of the spec with no tensor to point at.</param>
/// <param name="Summary">One sentence for the report.</param>
/// <param name="Evidence">Named numbers and strings that prove it (numbers are doubles or ints).</param>
/// <param name="Hint">How to fix it.</param>
public sealed record Finding(string Cause, string Backend, FindingLocation? Location, string Summary,
    IReadOnlyDictionary<string, object?> Evidence, string Hint)
{
    /// <summary>
    /// The spec setting of a convention mismatch the backend declared that accounts for this finding, or null.
    /// A declared finding is expected (the backend said so), not a defect.
    /// </summary>
    public string? DeclaredBy { get; init; }

    /// <summary>
    /// True for a property of the model or the spec that every backend shows alike (a shared batchnorm instance, a slow
    /// running-statistics warm-up): a hazard worth knowing, not the cause of a difference between backends. False for a cause
    /// of this backend's divergence, which a model-property detector also reports when the backend behaves otherwise than
    /// the reference (a shared batchnorm updated once per step where the reference updates it per call).
    /// </summary>
    public bool IsModelProperty { get; init; }

    /// <summary>A finding about the spec when it is a model property (<see cref="IsModelProperty"/>), else a cause of this backend's divergence.</summary>
    public FindingKind Kind => IsModelProperty ? FindingKind.Spec : FindingKind.Cause;

    /// <inheritdoc />
    public override string ToString() => $"{Cause} [{Backend}] {Location?.ToString() ?? "model"}: {Summary}";
}
