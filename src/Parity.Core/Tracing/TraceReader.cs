using System.Buffers.Binary;
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
        : Header.Version < TraceWriter.FormatVersion ? $"{Directory}: written in trace format version {Header.Version}, before traces were sealed; its bytes cannot be checked"
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
    /// raises <see cref="InvalidDataException"/> naming the file and line.
    /// </summary>
    public IEnumerable<StepRecord> Records()
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
        byte[] buffer = [];
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
                int size = dtype.Size();
                if (e.Offset != next)
                    throw new InvalidDataException($"{where}: entry {e.Kind}:{e.Site} starts at byte {e.Offset} of {TraceFiles.Tensors}; the values before it end at byte {next} (values are stored back to back)");
                int length = (int)count * size;
                if (next + length > tensors.Length)
                {
                    if (IsSealed) throw new InvalidDataException($"{where}: entry {e.Kind}:{e.Site} reaches past the end of {tensorsPath}");
                    complete = false;
                    break;
                }
                next += length;
                if (buffer.Length < length) buffer = new byte[length];
                tensors.Position = e.Offset;
                tensors.ReadExactly(buffer, 0, length);
                var data = new double[count];
                for (int i = 0; i < count; i++)
                    data[i] = dtype == DType.Float32 ? BinaryPrimitives.ReadSingleLittleEndian(buffer.AsSpan(i * 4)) : BinaryPrimitives.ReadDoubleLittleEndian(buffer.AsSpan(i * 8));
                record.Add(kind, e.Site, new Tensor(e.Shape, data, dtype));
            }
            if (!complete) yield break;
            yield return record;
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
        if (h.Version < TraceWriter.FormatVersion)
            return h.Seal is null ? null : $"format version {h.Version} has no seal";
        if (h.Status == RunStatus.Running)
            return h.Seal is null ? null : "status running with a seal: a trace is sealed only when it closes";
        if (h.Seal is not { } s) return $"status {h.Status.ToString().ToLowerInvariant()} but no seal: a closed trace of version {TraceWriter.FormatVersion} always has one (the header was edited)";
        if (s.Records < 0 || s.RecordsLength < 0 || s.TensorsLength < 0 || s.RecordsXxh3 is null || s.TensorsXxh3 is null) return "the seal is incomplete";
        return null;
    }

    private void CheckSeal(TraceSeal seal)
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
