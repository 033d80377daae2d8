using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Text.Json;
using System.Text.Json.Serialization;
using Parity.IO;
using Parity.Tensors;

namespace Parity.Tracing;

/// <summary>
/// Writes a trace directory as records arrive (docs/trace.md): <c>tensors.bin</c> holds little-endian
/// values in each tensor's dtype (raw, or one compressed frame per tensor), <c>records.jsonl</c> one line per step
/// record pointing into it, and <c>trace.json</c> the header. Records go to a writer thread that converts, compresses,
/// hashes and writes them while the next step computes: <see cref="WriteOwned"/> hands a record over whole (the writer
/// thread reads its values, then releases it), <see cref="Write"/> first copies its values for a caller that keeps it.
/// At most <see cref="QueuedRecords"/> records wait, so memory stays flat whatever the number of steps, and a crash
/// loses at most the records handed over and not yet written. Both files are hashed as they are written; the
/// final header carries the <see cref="TraceSeal"/>.
/// </summary>
public sealed class TraceWriter : IDisposable
{
    /// <summary>The format version written: 2 added the seal, 3 compressed entries (versions 1 and 2 are still read).</summary>
    public const int FormatVersion = 3;

    /// <summary>Records handed over and not yet on disk, at most: the bound that keeps a run's memory flat.</summary>
    public const int QueuedRecords = 2;

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
    private readonly TraceCompression _compression;
    private readonly BlockingCollection<PendingRecord> _queue = new(QueuedRecords);
    private readonly Thread _thread;
    private readonly object _gate = new();
    private byte[] _scratch = [];
    private byte[] _frame = [];
    private long _handedOver;
    private long _written;
    private Exception? _failure;
    private bool _failureReported;
    private bool _disposed;
    private int _recordCount;
    private TraceHeader _header;

    private TraceWriter(string directory, TraceHeader header, TraceCompression compression)
    {
        Directory = directory;
        _compression = compression;
        _header = header with { Version = FormatVersion, Seal = null };
        System.IO.Directory.CreateDirectory(directory);
        _tensors = new FileStream(Path.Combine(directory, TraceFiles.Tensors), FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16);
        _records = new FileStream(Path.Combine(directory, TraceFiles.Records), FileMode.Create, FileAccess.Write, FileShare.Read);
        WriteHeader();
        _thread = new Thread(WriteQueued) { IsBackground = true, Name = "parity trace writer" };
        _thread.Start();
    }

    /// <summary>The trace directory.</summary>
    public string Directory { get; }

    /// <summary>Creates (overwrites) a trace in <paramref name="directory"/>, its values stored as <paramref name="compression"/> says.</summary>
    public static TraceWriter Create(string directory, TraceHeader header, TraceCompression compression = TraceCompressions.Default) => new(directory, header, compression);

    /// <summary>
    /// Copies the record's values and hands them to the writer thread; waits only while <see cref="QueuedRecords"/>
    /// records are already waiting. Throws the writer thread's error (a full disk) on the first call after it happened.
    /// </summary>
    public void Write(StepRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        ThrowFailure();
        Enqueue(new PendingRecord(record.Step, record.Phase, Copied(record), null));
    }

    /// <summary>
    /// Hands <paramref name="record"/> over: the writer thread reads its values, writes them and then releases the record
    /// (<see cref="StepRecord.Release"/>), so the calling thread spends no time on it. The caller must not read, write or
    /// release the record or its tensors afterwards. Waits and throws as <see cref="Write"/> does.
    /// </summary>
    public void WriteOwned(StepRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        Enqueue(new PendingRecord(record.Step, record.Phase, null, record));
    }

    private void Enqueue(PendingRecord pending)
    {
        try
        {
            ThrowFailure();
            lock (_gate) _handedOver++;
            _queue.Add(pending);
        }
        catch
        {
            pending.Owned?.Release();
            throw;
        }
    }

    // The record's values as stored, each in a buffer rented from the shared byte pool.
    private static List<PendingEntry> Copied(StepRecord record) =>
        [.. record.Entries.Select(e => new PendingEntry(e.Key, e.Value.DType, e.Value.Shape, TensorBytes.Rent(e.Value)))];

    /// <summary>Waits until every record handed to <see cref="Write"/> or <see cref="WriteOwned"/> is on disk (or the writer thread failed).</summary>
    public void Flush()
    {
        lock (_gate)
            while (_written < _handedOver && _failure is null) Monitor.Wait(_gate);
    }

    /// <summary>
    /// Replaces the header (status, message, runtime info), atomically. A status other than <c>running</c> closes
    /// the trace: the header then carries the seal of everything written.
    /// </summary>
    public void UpdateHeader(Func<TraceHeader, TraceHeader> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        var next = change(_header) with { Version = FormatVersion };
        if (next.Status != Running.RunStatus.Running)
        {
            // The seal covers every record handed over: a failure of the writer thread not yet reported surfaces here,
            // so a trace missing records is never closed as completed.
            Flush();
            ThrowFailure();
        }
        _header = next.Status == Running.RunStatus.Running ? next with { Seal = null } : next with { Seal = CurrentSeal() };
        WriteHeader();
    }

    /// <summary>Closes the files; the header keeps whatever status was last written.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _queue.CompleteAdding();
        _thread.Join();
        _queue.Dispose();
        _records.Dispose();
        _tensors.Dispose();
    }

    private void ThrowFailure()
    {
        lock (_gate)
        {
            if (_failure is null || _failureReported) return;
            _failureReported = true;
            throw new IOException($"{Directory}: writing the trace failed: {_failure.Message}", _failure);
        }
    }

    // The writer thread: every record in the order handed over. After a failure it only returns the buffers, so a
    // caller blocked on a full queue never waits forever.
    private void WriteQueued()
    {
        foreach (var record in _queue.GetConsumingEnumerable())
        {
            var entries = record.Entries;
            try
            {
                if (_failure is null)
                {
                    entries ??= Copied(record.Owned!);
                    WriteRecord(record.Step, record.Phase, entries);
                }
            }
            catch (Exception e)
            {
                lock (_gate) _failure = e;
            }
            finally
            {
                foreach (var entry in entries ?? []) ArrayPool<byte>.Shared.Return(entry.Bytes.Array!);
                record.Owned?.Release();
                lock (_gate)
                {
                    _written++;
                    Monitor.PulseAll(_gate);
                }
            }
        }
    }

    private void WriteRecord(int step, RecordPhase phase, List<PendingEntry> pending)
    {
        var entries = new List<EntryLine>(pending.Count);
        foreach (var e in pending)
        {
            long offset = _tensors.Position;
            var stored = Stored(e, out string? codec);
            _tensors.Write(stored);
            _tensorsHash.Append(stored);
            entries.Add(new EntryLine(e.Key.Kind.Name(), e.Key.Site, e.DType.Name(), e.Shape, offset)
            {
                Codec = codec,
                Stored = codec is null ? null : stored.Length,
            });
        }
        _tensors.Flush();
        var line = JsonSerializer.SerializeToUtf8Bytes(new RecordLine(step, phase.ToString().ToLowerInvariant(), entries), Json);
        var terminated = new byte[line.Length + 1];
        line.CopyTo(terminated, 0);
        terminated[^1] = (byte)'\n';
        // One write of the whole line: a crash leaves at most a torn last line without its newline.
        _records.Write(terminated);
        _records.Flush();
        _recordsHash.Append(terminated);
        _recordCount++;
    }

    /// <summary>The bytes an entry occupies in tensors.bin: its raw values, or their compressed frame when that is shorter.</summary>
    private ReadOnlySpan<byte> Stored(PendingEntry e, out string? codec)
    {
        codec = null;
        var raw = e.Bytes.AsSpan();
        if (_compression != TraceCompression.Zstd || raw.Length < ShuffledZstd.MinBytes) return raw;
        if (_scratch.Length < raw.Length) _scratch = new byte[raw.Length];
        int bound = ShuffledZstd.Bound(raw.Length);
        if (_frame.Length < bound) _frame = new byte[bound];
        int length = ShuffledZstd.Encode(raw, e.DType.Size(), _scratch, _frame);
        if (length < 0) return raw;
        codec = ShuffledZstd.Name;
        return _frame.AsSpan(0, length);
    }

    private sealed record PendingEntry(TensorKey Key, DType DType, int[] Shape, ArraySegment<byte> Bytes);

    // A record waiting for the writer thread: its values already copied (Entries), or the record itself (Owned).
    private sealed record PendingRecord(int Step, RecordPhase Phase, List<PendingEntry>? Entries, StepRecord? Owned);

    private TraceSeal CurrentSeal() =>
        new(_recordCount, _records.Position, TraceFiles.Hex(_recordsHash.GetCurrentHashAsUInt64()), _tensors.Position,
            TraceFiles.Hex(_tensorsHash.GetCurrentHashAsUInt64()));

    private void WriteHeader() => AtomicFile.WriteText(Path.Combine(Directory, TraceFiles.Header), JsonSerializer.Serialize(_header, HeaderJson));
}
