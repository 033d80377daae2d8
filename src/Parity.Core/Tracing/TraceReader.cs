using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Text.Json;
using Parity.Running;
using Parity.Tensors;

namespace Parity.Tracing;

/// <summary>
/// Reads a trace directory written by <see cref="TraceWriter"/>, one record at a time. Everything read is checked
/// (docs/trace.md, "Validation"): the header when the trace opens, the files against the seal of a finished trace,
/// and every record line as it streams. A damaged trace raises <see cref="InvalidDataException"/> naming the file
/// and what is wrong; it never reads as data.
/// </summary>
public sealed class TraceReader : ITrace
{
    /// <summary>Formats this build reads: 1 (no seal) and the current one.</summary>
    public const int OldestFormatVersion = 1;

    // The versions that brought the seal and compressed entries (docs/trace.md, "Versioning").
    private const int SealedSince = 2;
    private const int CodecsSince = 3;

    // A header is a few kilobytes and a record line a few hundred bytes per tensor: anything far larger is not a trace.
    private const long MaxHeaderBytes = 16 << 20;
    private const int MaxLineBytes = 64 << 20;

    private TraceReader(string directory, TraceHeader header)
    {
        Directory = directory;
        Header = header;
    }

    /// <summary>The trace directory.</summary>
    public string Directory { get; }

    /// <summary>The header as last written.</summary>
    public TraceHeader Header { get; }

    /// <summary>True when the trace was closed with a seal and its files match it (checked by <see cref="Open"/>).</summary>
    public bool IsSealed => Header.Seal is not null;

    /// <summary>Why the trace's files could not be checked against a seal, or null when they were.</summary>
    public string? Unsealed => IsSealed ? null
        : Header.Version < SealedSince ? $"{Directory}: written in trace format version {Header.Version}, before traces were sealed; its bytes cannot be checked"
        : $"{Directory}: status {Header.Status.ToString().ToLowerInvariant()}: its run did not close the trace (still running, or its process died), so it has no seal and its bytes cannot be checked";

    /// <summary>
    /// Opens a trace: reads and checks the header and, for a sealed trace, the length and hash of both files and the
    /// number of record lines. Throws <see cref="InvalidDataException"/> naming the file and the problem.
    /// </summary>
    public static TraceReader Open(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!System.IO.Directory.Exists(directory))
            throw new InvalidDataException(File.Exists(directory) ? $"{directory}: not a trace directory (it is a file)" : $"{directory}: the trace directory does not exist");
        string path = Path.Combine(directory, TraceFiles.Header);
        if (!File.Exists(path)) throw new InvalidDataException($"{directory}: not a trace directory (no {TraceFiles.Header})");
        if (new FileInfo(path).Length > MaxHeaderBytes) throw new InvalidDataException($"{path}: {new FileInfo(path).Length} bytes; a trace header is far smaller");
        TraceHeader? header;
        string text = File.ReadAllText(path);
        try
        {
            header = JsonSerializer.Deserialize<TraceHeader>(text, TraceWriter.Json);
        }
        catch (JsonException e) when (e.Path == "$.status")
        {
            throw new InvalidDataException($"{path}: unknown status {StatusText(text)} (expected running, completed, failed or unavailable)");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: unreadable trace header: {e.Message}");
        }
        if (header is null || header.Format != "parity-trace") throw new InvalidDataException($"{path}: not a parity trace header");
        if (header.Version < OldestFormatVersion || header.Version > TraceWriter.FormatVersion)
            throw new InvalidDataException($"{path}: trace format version {header.Version}; this build reads versions {OldestFormatVersion} to {TraceWriter.FormatVersion}");
        if (HeaderProblem(header) is string problem) throw new InvalidDataException($"{path}: {problem}");
        var reader = new TraceReader(directory, header);
        if (header.Seal is { } seal) reader.CheckSeal(seal);
        return reader;
    }

    /// <summary>
    /// Streams the records in the order they were written. In a trace without a seal a torn last line (a crash
    /// mid-write) or a last record whose values never reached <c>tensors.bin</c> ends the stream; any other damage
    /// raises <see cref="InvalidDataException"/> naming the file and line (or, for a damaged compressed frame,
    /// <c>tensors.bin</c>, the tensor and its step).
    /// </summary>
    public IEnumerable<StepRecord> Records() => Read(null);

    /// <summary>
    /// The values of one tensor, read by seeking to its bytes (its frame, in a compressed trace) without decoding any
    /// other tensor; null when the trace has no such entry. Every record line before it is still checked.
    /// </summary>
    public Tensor? ReadTensor(int step, RecordPhase phase, TensorKey key) =>
        Read((s, p, k) => s == step && p == phase && k == key).FirstOrDefault(r => r.Entries.Count > 0)?.Entries[0].Value;

    // Every record line, checked; the values of the entries `select` takes (all when null) are read and decoded.
    private IEnumerable<StepRecord> Read(Func<int, RecordPhase, TensorKey, bool>? select)
    {
        string recordsPath = Path.Combine(Directory, TraceFiles.Records);
        string tensorsPath = Path.Combine(Directory, TraceFiles.Tensors);
        if (!File.Exists(recordsPath))
        {
            if (File.Exists(tensorsPath) && new FileInfo(tensorsPath).Length > 0)
                throw new InvalidDataException($"{recordsPath}: missing, while {TraceFiles.Tensors} holds values");
            yield break;
        }
        if (!File.Exists(tensorsPath)) throw new InvalidDataException($"{tensorsPath}: missing, while {TraceFiles.Records} exists");
        using var tensors = new FileStream(tensorsPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var records = new FileStream(recordsPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var buffers = new ValueBuffers();
        long next = 0;
        foreach (var (bytes, terminated, lineNumber) in Lines(records, recordsPath))
        {
            string where = $"{recordsPath} line {lineNumber}";
            if (!terminated)
            {
                // The writer ends every line with one write of its bytes and newline: only a crash leaves a line without one.
                if (IsSealed) throw new InvalidDataException($"{where}: the last line has no newline");
                yield break;
            }
            var r = ParseLine(bytes, where);
            var record = new StepRecord(r.Step, Phase(r.Phase, where));
            bool complete = true;
            foreach (var e in r.Entries)
            {
                var (kind, dtype, count) = CheckEntry(e, where);
                if (e.Offset != next)
                    throw new InvalidDataException($"{where}: entry {e.Kind}:{e.Site} starts at byte {e.Offset} of {TraceFiles.Tensors}; the values before it end at byte {next} (values are stored back to back)");
                long stored = StoredLength(e, count * dtype.Size(), where);
                if (next + stored > tensors.Length)
                {
                    if (IsSealed) throw new InvalidDataException($"{where}: entry {e.Kind}:{e.Site} reaches past the end of {tensorsPath}");
                    complete = false;
                    break;
                }
                next += stored;
                if (select is null || select(record.Step, record.Phase, new TensorKey(kind, e.Site)))
                    record.Add(kind, e.Site, new Tensor(e.Shape, ReadValues(tensors, e, dtype, (int)count, (int)stored, buffers,
                        () => $"{tensorsPath}: {kind.Name()}:{e.Site} of {record.Phase.ToString().ToLowerInvariant()} step {record.Step} ({where})"), dtype));
            }
            if (!complete) yield break;
            yield return record;
        }
    }

    /// <summary>Bytes the entry occupies in tensors.bin: its raw size, or the length of its compressed frame (format version 3).</summary>
    private long StoredLength(EntryLine e, long rawLength, string where)
    {
        if (e.Codec is null && e.Stored is null) return rawLength;
        if (Header.Version < CodecsSince) throw new InvalidDataException($"{where}: entry {e.Kind}:{e.Site} has a codec; format version {Header.Version} stores raw values only");
        if (e.Codec != ShuffledZstd.Name) throw new InvalidDataException($"{where}: entry {e.Kind}:{e.Site} has unknown codec '{e.Codec}' (this build reads {ShuffledZstd.Name})");
        // A frame is never longer than zstd's bound for the raw bytes (about 1/256 more): anything else is not a frame of them.
        if (e.Stored is not { } stored || stored <= 0 || stored > rawLength + (rawLength >> 7) + 1024)
            throw new InvalidDataException($"{where}: entry {e.Kind}:{e.Site} of {rawLength} raw bytes has a stored length of {e.Stored?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(none)"}");
        return stored;
    }

    private static double[] ReadValues(FileStream tensors, EntryLine e, DType dtype, int count, int stored, ValueBuffers buffers, Func<string> what)
    {
        int rawLength = count * dtype.Size();
        var bytes = ValueBuffers.Grow(ref buffers.Stored, stored);
        tensors.Position = e.Offset;
        tensors.ReadExactly(bytes, 0, stored);
        var raw = bytes.AsSpan(0, stored);
        if (e.Codec is not null)
        {
            var decoded = ValueBuffers.Grow(ref buffers.Raw, rawLength);
            if (ShuffledZstd.Decode(raw, dtype.Size(), ValueBuffers.Grow(ref buffers.Scratch, rawLength), decoded.AsSpan(0, rawLength)) is string problem)
                throw new InvalidDataException($"{what()}: its compressed frame at byte {e.Offset} ({stored} bytes) is damaged: {problem}");
            raw = decoded.AsSpan(0, rawLength);
        }
        var data = GC.AllocateUninitializedArray<double>(count); // every element is read into
        TensorBytes.Read(raw, dtype, data);
        return data;
    }

    /// <summary>Buffers one read reuses from tensor to tensor.</summary>
    private sealed class ValueBuffers
    {
        public byte[] Stored = [];
        public byte[] Scratch = [];
        public byte[] Raw = [];

        public static byte[] Grow(ref byte[] buffer, int length)
        {
            if (buffer.Length < length) buffer = new byte[length];
            return buffer;
        }
    }

    // The status as written, for a message that names the bad value rather than a .NET type.
    private static string StatusText(string headerJson)
    {
        try
        {
            using var doc = JsonDocument.Parse(headerJson);
            return doc.RootElement.TryGetProperty("status", out var status) ? $"'{status}'" : "(none)";
        }
        catch (JsonException)
        {
            return "(unreadable)";
        }
    }

    private static string? HeaderProblem(TraceHeader h)
    {
        foreach (var (name, value) in new[] { ("backend", h.Backend), ("dType", h.DType), ("scenario", h.Scenario), ("specHash", h.SpecHash) })
            if (string.IsNullOrEmpty(value)) return $"no \"{name}\"";
        if (DTypes.TryParse(h.DType) is null) return $"unknown dType '{h.DType}'";
        if (h.Status is not (RunStatus.Running or RunStatus.Completed or RunStatus.Failed or RunStatus.Unavailable))
            return $"status '{h.Status.ToString().ToLowerInvariant()}' is not one a trace is written with (running, completed, failed, unavailable)";
        if (h.StepsCompleted < 0) return $"negative stepsCompleted {h.StepsCompleted}";
        if (h.Runtime is null || h.Runtime.Values.Any(v => v is null)) return "\"runtime\" is not an object of strings";
        if (h.Mismatches is null || h.Mismatches.Any(m => m is null || m.Setting is null || m.Spec is null || m.Backend is null || m.Affects is null || m.Affects.Any(a => a is null)))
            return "\"mismatches\" is not a list of {setting, spec, backend, affects}";
        if (h.Version < SealedSince)
            return h.Seal is null ? null : $"format version {h.Version} has no seal";
        if (h.Status == RunStatus.Running)
            return h.Seal is null ? null : "status running with a seal: a trace is sealed only when it closes";
        if (h.Seal is not { } s) return $"status {h.Status.ToString().ToLowerInvariant()} but no seal: a closed trace of version {h.Version} always has one (the header was edited)";
        if (s.Records < 0 || s.RecordsLength < 0 || s.TensorsLength < 0 || s.RecordsXxh3 is null || s.TensorsXxh3 is null) return "the seal is incomplete";
        return null;
    }

    // Traces whose files matched their seal in this process, with the files' length and modification time then: a run opens
    // each trace several times (comparisons, step checks, detectors), and a file that changed since has a new time.
    private static readonly ConcurrentDictionary<string, (TraceSeal Seal, FileStamp Records, FileStamp Tensors)> s_checked = new();

    private readonly record struct FileStamp(long Length, DateTime Written)
    {
        public static FileStamp Of(string path)
        {
            var info = new FileInfo(path);
            return info.Exists ? new FileStamp(info.Length, info.LastWriteTimeUtc) : default;
        }
    }

    private void CheckSeal(TraceSeal seal)
    {
        string key = Path.GetFullPath(Directory);
        var stamps = (seal, FileStamp.Of(Path.Combine(Directory, TraceFiles.Records)), FileStamp.Of(Path.Combine(Directory, TraceFiles.Tensors)));
        if (s_checked.TryGetValue(key, out var known) && known == stamps) return;
        Hash(seal);
        s_checked[key] = stamps;
    }

    private void Hash(TraceSeal seal)
    {
        var (recordsHash, lines) = HashFile(TraceFiles.Records, seal.RecordsLength);
        if (recordsHash != seal.RecordsXxh3) throw Changed(TraceFiles.Records);
        if (lines != seal.Records) throw new InvalidDataException($"{Path.Combine(Directory, TraceFiles.Records)}: {lines} record line(s); the seal says {seal.Records}");
        var (tensorsHash, _) = HashFile(TraceFiles.Tensors, seal.TensorsLength);
        if (tensorsHash != seal.TensorsXxh3) throw Changed(TraceFiles.Tensors);
    }

    private InvalidDataException Changed(string file) =>
        new($"{Path.Combine(Directory, file)}: its bytes do not match the seal's XXH3 hash; the file changed after the run closed the trace (damaged or edited)");

    /// <summary>XXH3 of a trace file of the sealed length, and its number of newlines.</summary>
    private (string Hash, long Lines) HashFile(string file, long sealedLength)
    {
        string path = Path.Combine(Directory, file);
        if (!File.Exists(path)) throw new InvalidDataException($"{path}: missing; the seal says {sealedLength} bytes");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16);
        if (stream.Length != sealedLength)
            throw new InvalidDataException($"{path}: {stream.Length} bytes; the seal says {sealedLength} ({(stream.Length < sealedLength ? "truncated" : "appended to")})");
        var hash = new XxHash3();
        var chunk = new byte[1 << 16];
        long lines = 0;
        int read;
        while ((read = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            hash.Append(chunk.AsSpan(0, read));
            lines += chunk.AsSpan(0, read).Count((byte)'\n');
        }
        return (TraceFiles.Hex(hash.GetCurrentHashAsUInt64()), lines);
    }

    /// <summary>The lines of records.jsonl as bytes, each with whether a newline ended it and its 1-based number.</summary>
    private static IEnumerable<(byte[] Bytes, bool Terminated, int Number)> Lines(Stream stream, string path)
    {
        var pending = new MemoryStream();
        var chunk = new byte[1 << 16];
        int number = 0;
        int read;
        while ((read = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            int start = 0;
            while (true)
            {
                int newline = Array.IndexOf(chunk, (byte)'\n', start, read - start);
                int end = newline < 0 ? read : newline;
                if (pending.Length + end - start > MaxLineBytes)
                    throw new InvalidDataException($"{path} line {number + 1}: longer than {MaxLineBytes >> 20} MiB; a record line is far shorter");
                pending.Write(chunk, start, end - start);
                if (newline < 0) break;
                yield return (pending.ToArray(), true, ++number);
                pending.SetLength(0);
                start = newline + 1;
            }
        }
        if (pending.Length > 0) yield return (pending.ToArray(), false, number + 1);
    }

    private static RecordLine ParseLine(byte[] bytes, string where)
    {
        RecordLine? r;
        try
        {
            r = JsonSerializer.Deserialize<RecordLine>(bytes, TraceWriter.Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{where}: not a record line ({e.Message})");
        }
        if (r is null) throw new InvalidDataException($"{where}: not a record line (null)");
        if (r.Entries is null) throw new InvalidDataException($"{where}: no entries");
        if (r.Step < 0) throw new InvalidDataException($"{where}: negative step {r.Step}");
        return r;
    }

    // Names only: Enum.TryParse would also take numbers and comma-joined names.
    private static RecordPhase Phase(string? name, string where) =>
        Enum.GetValues<RecordPhase>().Cast<RecordPhase?>().FirstOrDefault(p => string.Equals(p.ToString(), name, StringComparison.OrdinalIgnoreCase))
            ?? throw new InvalidDataException($"{where}: unknown record phase '{name}'");

    /// <summary>Checks one entry's kind, dtype, site and shape; returns them with the element count.</summary>
    private static (TensorKind Kind, DType DType, long Count) CheckEntry(EntryLine? e, string where)
    {
        if (e is null) throw new InvalidDataException($"{where}: a null entry");
        var kind = TensorKinds.TryParse(e.Kind) ?? throw new InvalidDataException($"{where}: unknown tensor kind '{e.Kind}'");
        var dtype = DTypes.TryParse(e.DType) ?? throw new InvalidDataException($"{where}: unknown dtype '{e.DType}'");
        if (e.Shape is null || e.Shape.Any(d => d < 0) || e.Site is null)
            throw new InvalidDataException($"{where}: entry {e.Kind}:{e.Site} has no valid shape or site");
        if (kind.IsScalar() ? e.Site.Length != 0 || e.Shape.Length != 0 : e.Site.Length == 0)
            throw new InvalidDataException($"{where}: entry {e.Kind}:{e.Site} of shape [{string.Join(",", e.Shape)}]: {kind.Name()} is {(kind.IsScalar() ? "a scalar without a site" : "at a named site")}");
        long count = 1;
        foreach (int d in e.Shape)
        {
            if (d > 0 && count > Array.MaxLength / dtype.Size() / d)
                throw new InvalidDataException($"{where}: entry {e.Kind}:{e.Site} of shape [{string.Join(",", e.Shape)}] is too large for one tensor");
            count *= d;
        }
        return (kind, dtype, count);
    }
}
