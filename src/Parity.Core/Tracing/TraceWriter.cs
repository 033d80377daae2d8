using System.Buffers.Binary;
using System.Text.Json;
using Parity.IO;
using Parity.Tensors;

namespace Parity.Tracing;

/// <summary>
/// Writes a trace directory as records arrive (docs/trace.md): <c>tensors.bin</c> holds little-endian
/// values in each tensor's dtype, <c>records.jsonl</c> one line per step record pointing into it, and
/// <c>trace.json</c> the header. Each record is flushed before the next step runs, so memory stays flat
/// whatever the number of steps and a crash loses at most the step in flight.
/// </summary>
public sealed class TraceWriter : IDisposable
{
    /// <summary>The format version written.</summary>
    public const int FormatVersion = 1;

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = false };
    private static readonly JsonSerializerOptions HeaderJson = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private readonly FileStream _tensors;
    private readonly StreamWriter _records;
    private TraceHeader _header;

    private TraceWriter(string directory, TraceHeader header)
    {
        Directory = directory;
        _header = header;
        System.IO.Directory.CreateDirectory(directory);
        _tensors = new FileStream(Path.Combine(directory, "tensors.bin"), FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16);
        _records = new StreamWriter(new FileStream(Path.Combine(directory, "records.jsonl"), FileMode.Create, FileAccess.Write, FileShare.Read));
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
        byte[] buffer = [];
        foreach (var e in record.Entries)
        {
            var t = e.Value;
            int size = t.DType.Size();
            if (buffer.Length < t.Length * size) buffer = new byte[t.Length * size];
            for (int i = 0; i < t.Length; i++)
            {
                if (t.DType == DType.Float32) BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(i * 4), (float)t.Data[i]);
                else BinaryPrimitives.WriteDoubleLittleEndian(buffer.AsSpan(i * 8), t.Data[i]);
            }
            entries.Add(new EntryLine(e.Key.Kind.Name(), e.Key.Site, t.DType.Name(), t.Shape, _tensors.Position));
            _tensors.Write(buffer, 0, t.Length * size);
        }
        _tensors.Flush();
        _records.WriteLine(JsonSerializer.Serialize(new RecordLine(record.Step, record.Phase.ToString().ToLowerInvariant(), entries), Json));
        _records.Flush();
    }

    /// <summary>Replaces the header (status, message, runtime info), atomically.</summary>
    public void UpdateHeader(Func<TraceHeader, TraceHeader> change)
    {
        _header = change(_header);
        WriteHeader();
    }

    /// <summary>Closes the files; the header keeps whatever status was last written.</summary>
    public void Dispose()
    {
        _records.Dispose();
        _tensors.Dispose();
    }

    private void WriteHeader() => AtomicFile.WriteText(Path.Combine(Directory, "trace.json"), JsonSerializer.Serialize(_header, HeaderJson));
}
