using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text.Json;
using System.Text.Json.Serialization;
using Parity.IO;
using Parity.Tensors;

namespace Parity.Tracing;

/// <summary>
/// Writes a trace directory as records arrive (docs/trace.md): <c>tensors.bin</c> holds little-endian
/// values in each tensor's dtype, <c>records.jsonl</c> one line per step record pointing into it, and
/// <c>trace.json</c> the header. Each record is flushed before the next step runs, so memory stays flat
/// whatever the number of steps and a crash loses at most the step in flight. Both files are hashed as
/// they are written; the final header carries the <see cref="TraceSeal"/>.
/// </summary>
public sealed class TraceWriter : IDisposable
{
    /// <summary>The format version written: 2 added the seal (version 1 traces are still read, unsealed).</summary>
    public const int FormatVersion = 2;

    // Enums (the status) as camelCase strings, and only those names: a number or an unknown word is not a status.
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = false,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase, allowIntegerValues: false) },
    };

    private static readonly JsonSerializerOptions HeaderJson = new(Json) { WriteIndented = true };

    private readonly FileStream _tensors;
    private readonly FileStream _records;
    private readonly XxHash3 _tensorsHash = new();
    private readonly XxHash3 _recordsHash = new();
    private int _recordCount;
    private TraceHeader _header;

    private TraceWriter(string directory, TraceHeader header)
    {
        Directory = directory;
        _header = header with { Version = FormatVersion, Seal = null };
        System.IO.Directory.CreateDirectory(directory);
        _tensors = new FileStream(Path.Combine(directory, TraceFiles.Tensors), FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16);
        _records = new FileStream(Path.Combine(directory, TraceFiles.Records), FileMode.Create, FileAccess.Write, FileShare.Read);
        WriteHeader();
    }

    /// <summary>The trace directory.</summary>
    public string Directory { get; }

    /// <summary>Creates (overwrites) a trace in <paramref name="directory"/>.</summary>
    public static TraceWriter Create(string directory, TraceHeader header) => new(directory, header);

    /// <summary>Appends a record and flushes it.</summary>
    public void Write(StepRecord record)
    {
        var entries = new List<EntryLine>(record.Entries.Count);
        // Encoded in slices of a fixed buffer: no byte count of a large tensor is ever formed in 32 bits.
        const int SliceValues = 1 << 16;
        var buffer = new byte[SliceValues * sizeof(double)];
        foreach (var e in record.Entries)
        {
            var t = e.Value;
            int size = t.DType.Size();
            entries.Add(new EntryLine(e.Key.Kind.Name(), e.Key.Site, t.DType.Name(), t.Shape, _tensors.Position));
            for (int start = 0; start < t.Length; start += SliceValues)
            {
                int count = Math.Min(SliceValues, t.Length - start);
                for (int i = 0; i < count; i++)
                {
                    if (t.DType == DType.Float32) BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(i * 4), (float)t.Data[start + i]);
                    else BinaryPrimitives.WriteDoubleLittleEndian(buffer.AsSpan(i * 8), t.Data[start + i]);
                }
                _tensors.Write(buffer, 0, count * size);
                _tensorsHash.Append(buffer.AsSpan(0, count * size));
            }
        }
        _tensors.Flush();
        var line = JsonSerializer.SerializeToUtf8Bytes(new RecordLine(record.Step, record.Phase.ToString().ToLowerInvariant(), entries), Json);
        var terminated = new byte[line.Length + 1];
        line.CopyTo(terminated, 0);
        terminated[^1] = (byte)'\n';
        // One write of the whole line: a crash leaves at most a torn last line without its newline.
        _records.Write(terminated);
        _records.Flush();
        _recordsHash.Append(terminated);
        _recordCount++;
    }

    /// <summary>
    /// Replaces the header (status, message, runtime info), atomically. A status other than <c>running</c> closes
    /// the trace: the header then carries the seal of everything written.
    /// </summary>
    public void UpdateHeader(Func<TraceHeader, TraceHeader> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        var next = change(_header) with { Version = FormatVersion };
        _header = next.Status == Running.RunStatus.Running ? next with { Seal = null } : next with { Seal = CurrentSeal() };
        WriteHeader();
    }

    /// <summary>Closes the files; the header keeps whatever status was last written.</summary>
    public void Dispose()
    {
        _records.Dispose();
        _tensors.Dispose();
    }

    private TraceSeal CurrentSeal() =>
        new(_recordCount, _records.Position, TraceFiles.Hex(_recordsHash.GetCurrentHashAsUInt64()), _tensors.Position,
            TraceFiles.Hex(_tensorsHash.GetCurrentHashAsUInt64()));

    private void WriteHeader() => AtomicFile.WriteText(Path.Combine(Directory, TraceFiles.Header), JsonSerializer.Serialize(_header, HeaderJson));
}
