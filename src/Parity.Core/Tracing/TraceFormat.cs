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

    /// <summary><c>running</c> while the run goes on; <c>completed</c>, <c>failed</c> or <c>unavailable</c> when it closes.</summary>
    public Running.RunStatus Status { get; init; } = Running.RunStatus.Running;

    /// <summary>Why the run failed or stopped early.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Message { get; init; }

    /// <summary>Training steps completed.</summary>
    public int StepsCompleted { get; init; }

    /// <summary>Wall time in seconds, when finished.</summary>
    public double Seconds { get; init; }

    /// <summary>
    /// What the writer wrote, set when the trace closes (status other than <c>running</c>); null while the run goes on,
    /// in a trace whose process died, and in traces of format version 1.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public TraceSeal? Seal { get; init; }
}

/// <summary>
/// The seal of a finished trace (docs/trace.md, "Seal"): how many record lines and bytes the writer wrote to each
/// file and their XXH3 64-bit hashes, computed while streaming. A reader that finds other files refuses the trace, so
/// a truncated, edited or bit-flipped trace is never compared.
/// </summary>
/// <param name="Records">Lines of <c>records.jsonl</c>.</param>
/// <param name="RecordsLength">Bytes of <c>records.jsonl</c>.</param>
/// <param name="RecordsXxh3">XXH3-64 of <c>records.jsonl</c>, 16 lowercase hex digits.</param>
/// <param name="TensorsLength">Bytes of <c>tensors.bin</c>.</param>
/// <param name="TensorsXxh3">XXH3-64 of <c>tensors.bin</c>, 16 lowercase hex digits.</param>
public sealed record TraceSeal(int Records, long RecordsLength, string RecordsXxh3, long TensorsLength, string TensorsXxh3);

/// <summary>One line of <c>records.jsonl</c>: a step record's entries and where their bytes are.</summary>
internal sealed record RecordLine(int Step, string Phase, List<EntryLine> Entries);

/// <summary>One tensor of a record line: key, dtype, shape and its byte range in <c>tensors.bin</c>.</summary>
internal sealed record EntryLine(string Kind, string Site, string DType, int[] Shape, long Offset)
{
    /// <summary>How the values are stored (<c>shuffle-zstd</c>); null for raw values (format version 3 on).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Codec { get; init; }

    /// <summary>Bytes the entry occupies in <c>tensors.bin</c> when it has a codec; null for raw values (their size follows from shape and dtype).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? Stored { get; init; }
}

/// <summary>The three files of a trace directory and the hash that seals them.</summary>
public static class TraceFiles
{
    /// <summary>The header.</summary>
    public const string Header = "trace.json";

    /// <summary>One JSON line per record.</summary>
    public const string Records = "records.jsonl";

    /// <summary>The tensor values.</summary>
    public const string Tensors = "tensors.bin";

    /// <summary>Every file of a trace, header first.</summary>
    public static IReadOnlyList<string> All { get; } = [Header, Records, Tensors];

    /// <summary>A 64-bit hash as 16 lowercase hex digits.</summary>
    internal static string Hex(ulong hash) => hash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
}
