using System.Text.Json.Serialization;
using Parity.Backends;

namespace Parity.Tracing;

/// <summary>
/// <c>trace.json</c> of a trace directory (docs/trace.md): who produced the trace, under which spec and
/// conventions, and how the run ended. Written when the trace opens (status <c>running</c>) and again
/// when it closes, each time by write-then-rename, so it is never half written.
/// </summary>
public sealed record TraceHeader
{
    /// <summary>Always <c>parity-trace</c>.</summary>
    public string Format { get; init; } = "parity-trace";

    /// <summary>Format version; readers reject versions they do not know.</summary>
    public int Version { get; init; } = TraceWriter.FormatVersion;

    /// <summary>Backend name as selected (e.g. <c>reference-f32</c>).</summary>
    public required string Backend { get; init; }

    /// <summary>Dtype the backend trained in.</summary>
    public required string DType { get; init; }

    /// <summary>Scenario name.</summary>
    public required string Scenario { get; init; }

    /// <summary>Hash of the canonical spec.</summary>
    public required string SpecHash { get; init; }

    /// <summary>Framework and library versions, device.</summary>
    public Dictionary<string, string> Runtime { get; init; } = [];

    /// <summary>Declared convention mismatches.</summary>
    public List<ConventionMismatch> Mismatches { get; init; } = [];

    /// <summary><c>running</c>, <c>completed</c> or <c>failed</c>.</summary>
    public string Status { get; init; } = "running";

    /// <summary>Why the run failed or stopped early.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Message { get; init; }

    /// <summary>Training steps completed.</summary>
    public int StepsCompleted { get; init; }

    /// <summary>Wall time in seconds, when finished.</summary>
    public double Seconds { get; init; }
}

/// <summary>One line of <c>records.jsonl</c>: a step record's entries and where their bytes are.</summary>
internal sealed record RecordLine(int Step, string Phase, List<EntryLine> Entries);

/// <summary>One tensor of a record line: key, dtype, shape and its byte range in <c>tensors.bin</c>.</summary>
internal sealed record EntryLine(string Kind, string Site, string DType, int[] Shape, long Offset);
