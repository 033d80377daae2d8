using System.Buffers.Binary;
using System.Text.Json;
using Parity.Tensors;

namespace Parity.Tracing;

/// <summary>Reads a trace directory written by <see cref="TraceWriter"/>, one record at a time.</summary>
public sealed class TraceReader : ITrace
{
    private TraceReader(string directory, TraceHeader header)
    {
        Directory = directory;
        Header = header;
    }

    /// <summary>The trace directory.</summary>
    public string Directory { get; }

    /// <summary>The header as last written.</summary>
    public TraceHeader Header { get; }

    /// <summary>Opens a trace; throws <see cref="InvalidDataException"/> naming the file when it is not a readable trace.</summary>
    public static TraceReader Open(string directory)
    {
        string path = Path.Combine(directory, "trace.json");
        if (!File.Exists(path)) throw new InvalidDataException($"{directory}: not a trace directory (no trace.json)");
        TraceHeader? header;
        try
        {
            header = JsonSerializer.Deserialize<TraceHeader>(File.ReadAllText(path), TraceWriter.Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: unreadable trace header: {e.Message}");
        }
        if (header is null || header.Format != "parity-trace") throw new InvalidDataException($"{path}: not a parity trace header");
        if (header.Version != TraceWriter.FormatVersion)
            throw new InvalidDataException($"{path}: trace format version {header.Version}; this build reads version {TraceWriter.FormatVersion}");
        return new TraceReader(directory, header);
    }

    /// <summary>Streams the records in the order they were written. A torn last line (a crash mid-write) ends the stream.</summary>
    public IEnumerable<StepRecord> Records()
    {
        string recordsPath = Path.Combine(Directory, "records.jsonl");
        if (!File.Exists(recordsPath)) yield break;
        using var tensors = new FileStream(Path.Combine(Directory, "tensors.bin"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var lines = new StreamReader(new FileStream(recordsPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        byte[] buffer = [];
        int lineNumber = 0;
        while (lines.ReadLine() is { } line)
        {
            lineNumber++;
            RecordLine? r;
            try
            {
                r = JsonSerializer.Deserialize<RecordLine>(line, TraceWriter.Json);
            }
            catch (JsonException)
            {
                yield break; // a torn last line: the writer crashed mid-record
            }
            if (r is null) yield break;
            string where = $"{recordsPath} line {lineNumber}";
            // Names only: Enum.TryParse would also take numbers and comma-joined names.
            var phase = Enum.GetValues<RecordPhase>().Cast<RecordPhase?>().FirstOrDefault(p => string.Equals(p.ToString(), r.Phase, StringComparison.OrdinalIgnoreCase))
                ?? throw new InvalidDataException($"{where}: unknown record phase '{r.Phase}'");
            if (r.Entries is null) throw new InvalidDataException($"{where}: no entries");
            var record = new StepRecord(r.Step, phase);
            bool complete = true;
            foreach (var e in r.Entries)
            {
                var dtype = DTypes.TryParse(e.DType) ?? throw new InvalidDataException($"{where}: unknown dtype '{e.DType}'");
                var kind = TensorKinds.TryParse(e.Kind) ?? throw new InvalidDataException($"{where}: unknown tensor kind '{e.Kind}'");
                if (e.Shape is null || e.Shape.Any(d => d < 0) || e.Offset < 0 || e.Site is null)
                    throw new InvalidDataException($"{where}: entry {e.Kind}:{e.Site} has no valid shape, site or offset");
                long count = e.Shape.Aggregate(1L, (a, b) => a * b);
                if (count * dtype.Size() > int.MaxValue) throw new InvalidDataException($"{where}: entry {e.Kind}:{e.Site} is too large ({count} elements)");
                int bytes = (int)count * dtype.Size();
                if (e.Offset + bytes > tensors.Length)
                {
                    complete = false;
                    break;
                }
                if (buffer.Length < bytes) buffer = new byte[bytes];
                tensors.Position = e.Offset;
                tensors.ReadExactly(buffer, 0, bytes);
                var data = new double[(int)count];
                for (int i = 0; i < count; i++)
                    data[i] = dtype == DType.Float32 ? BinaryPrimitives.ReadSingleLittleEndian(buffer.AsSpan(i * 4)) : BinaryPrimitives.ReadDoubleLittleEndian(buffer.AsSpan(i * 8));
                record.Add(kind, e.Site, new Tensor(e.Shape, data, dtype));
            }
            if (!complete) yield break;
            yield return record;
        }
    }
}
