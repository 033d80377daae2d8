using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Parity.Backends.Workers.Protocol;

/// <summary>
/// One running worker: the process, a stdout line reader, the stderr tail and the request/response
/// exchange with timeouts. Every failure becomes a <see cref="BackendException"/> naming the worker, the
/// request, the cause and the last stderr lines; after a fatal one (crash, hang, garbage) the process
/// is killed with everything it started and every later request fails at once with the same message.
/// Nothing a worker writes can make the harness hold more than <see cref="WorkerProtocol.MaxLineBytes"/> of
/// one stdout line, and a worker that exits is reported as exited even when a child keeps its stdout open.
/// </summary>
internal sealed class WorkerProcess : IDisposable
{
    private const int PreviewLength = 160;
    private const int MaxDepth = 64;
    private readonly Process _process;
    private readonly Stream _stdin;
    private readonly BlockingCollection<StdoutLine> _lines = new();
    private readonly StderrTail _stderr;
    private readonly long _maxLineBytes;
    private readonly ManualResetEventSlim _stdoutEnded = new();
    private int _nextId = 1;
    private string? _fatal;
    private long _deadline = long.MaxValue;
    private TimeSpan _timeout;

    private WorkerProcess(string name, Process process, long maxLineBytes)
    {
        Name = name;
        _process = process;
        _maxLineBytes = maxLineBytes;
        _stdin = process.StandardInput.BaseStream;
        _stderr = new StderrTail(process.StandardError, WorkerProtocol.StderrTailLines);
        var reader = new Thread(() => ReadStdout(process.StandardOutput.BaseStream)) { IsBackground = true, Name = "worker stdout" };
        reader.Start();
        // The exit, not only the end of stdout: a child of the worker may hold stdout open long after the worker died.
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => OnExited();
    }

    public string Name { get; }

    /// <summary>The ready line's content, set by <see cref="Handshake"/>.</summary>
    public WorkerHello? Hello { get; private set; }

    public bool HasExited => _process.HasExited;

    /// <summary>Milliseconds spent encoding and writing the last request, and waiting for and parsing its answer line.</summary>
    public (double WriteMs, double WaitMs) LastExchange { get; private set; }

    /// <summary>Starts the worker; a missing or non-executable program is reported before anything runs.</summary>
    public static WorkerProcess Start(string name, IReadOnlyList<string> command, string? workingDirectory,
        IReadOnlyDictionary<string, string> environment, long maxLineBytes = WorkerProtocol.MaxLineBytes)
    {
        if (command.Count == 0 || command[0].Length == 0) throw new BackendException($"worker '{name}': the command line is empty");
        string program = command[0];
        CheckProgram(name, program);
        var info = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardErrorEncoding = Encoding.UTF8,
        };
        if (workingDirectory is not null) info.WorkingDirectory = workingDirectory;
        foreach (var (key, value) in environment) info.Environment[key] = value;
        try
        {
            return new WorkerProcess(name, WorkerLauncher.Start(info, program, command.Skip(1)), maxLineBytes);
        }
        catch (Exception e) when (e is Win32Exception or InvalidOperationException)
        {
            throw new BackendException($"worker '{name}': cannot start '{program}': {e.Message}", e);
        }
    }

    /// <summary>Waits for the ready line and checks the protocol version.</summary>
    public WorkerHello Handshake(TimeSpan timeout)
    {
        using var doc = ReadLine("the ready handshake", timeout,
            $"the ready line must come within {timeout.TotalSeconds:0.#} s of the start (WorkerBackend.HandshakeTimeout); print it before loading anything slow");
        var root = doc.RootElement;
        if (!root.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "ready")
            throw Fatal($"its first stdout line is not the ready handshake (expected {{\"type\":\"ready\",...}}): {Preview(root.GetRawText())}");
        var hello = WorkerHello.Parse(root, Name, message => Fatal(message));
        if (hello.Protocol is < WorkerProtocol.OldestVersion or > WorkerProtocol.Version)
            throw Fatal($"it speaks worker protocol {hello.Protocol}; this harness speaks protocol {string.Join(" or ", Enumerable.Range(WorkerProtocol.OldestVersion, WorkerProtocol.Version - WorkerProtocol.OldestVersion + 1))} (docs/worker-protocol.md)");
        Hello = hello;
        return hello;
    }

    /// <summary>
    /// Sends one request and returns its response. <paramref name="body"/> writes the request's fields
    /// after <c>id</c> and <c>op</c>. A response carrying <c>error</c> raises a non-fatal exception.
    /// </summary>
    public JsonDocument Request(string op, Action<Utf8JsonWriter>? body, TimeSpan timeout)
    {
        if (_fatal is not null) throw new BackendException(_fatal);
        long started = Stopwatch.GetTimestamp();
        _timeout = timeout;
        _deadline = started + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        int id = _nextId++;
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("id", id);
            w.WriteString("op", op);
            body?.Invoke(w);
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        try
        {
            _stdin.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
            _stdin.Flush();
        }
        catch (IOException)
        {
            // The pipe broke: the worker is gone. Report it the way a crash is reported.
            throw Crashed($"'{op}'");
        }

        long written = Stopwatch.GetTimestamp();
        var doc = ReadLine($"'{op}'", timeout, "set a longer per-request timeout (--timeout) if the step is legitimately slow");
        LastExchange = (Stopwatch.GetElapsedTime(started, written).TotalMilliseconds, Stopwatch.GetElapsedTime(written).TotalMilliseconds);
        var root = doc.RootElement;
        if (!root.TryGetProperty("id", out var idElement) || idElement.ValueKind != JsonValueKind.Number || !idElement.TryGetInt32(out int gotId))
        {
            doc.Dispose();
            throw Fatal($"its answer to '{op}' has no integer \"id\": {Preview(root.GetRawText())}");
        }
        if (gotId != id)
        {
            doc.Dispose();
            throw Fatal($"it answered request {gotId} while request {id} ('{op}') was pending");
        }
        if (root.TryGetProperty("error", out var error))
        {
            string message = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String
                ? m.GetString()!
                : error.GetRawText();
            doc.Dispose();
            throw new BackendException($"worker '{Name}' refused '{op}': {message}{_stderr.Describe()}");
        }
        return doc;
    }

    /// <summary>Fails the pending request when its time limit has passed (reading an answer's tensor files counts too).</summary>
    public void CheckDeadline(string answer)
    {
        if (Stopwatch.GetTimestamp() > _deadline)
            throw Fatal($"its {answer} answer was not read within {_timeout.TotalSeconds:0.#} s (tensor files included); the worker process tree was killed");
    }

    /// <summary>A protocol violation found while reading a response: kills the worker and reports it with stderr.</summary>
    public BackendException Fatal(string problem)
    {
        Kill();
        _fatal ??= $"worker '{Name}': {problem}{_stderr.Describe()}";
        return new BackendException(_fatal);
    }

    /// <summary>Asks the worker to shut down, then kills its process tree if it is still there.</summary>
    public void Dispose()
    {
        try
        {
            if (_fatal is null && !_process.HasExited)
            {
                try
                {
                    Request("shutdown", null, TimeSpan.FromSeconds(2)).Dispose();
                }
                catch (BackendException)
                {
                    // Killed below.
                }
                _stdin.Close();
                _process.WaitForExit(2000);
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            // Already gone.
        }
        finally
        {
            Kill();
            _process.Dispose();
        }
    }

    private JsonDocument ReadLine(string during, TimeSpan timeout, string hint)
    {
        StdoutLine line;
        try
        {
            if (!_lines.TryTake(out line, timeout))
                throw Fatal($"no answer to {during} within {timeout.TotalSeconds:0.#} s; the worker process tree was killed ({hint})");
        }
        catch (InvalidOperationException)
        {
            throw Crashed(during);
        }
        switch (line.Kind)
        {
            case LineKind.EndOfStream:
                throw Crashed(during);
            case LineKind.Partial:
                throw Fatal($"it wrote a partial line on stdout (no newline before end of stream) during {during}: {Preview(line)}");
            case LineKind.Overlong:
                throw Fatal($"it wrote a stdout line longer than the cap of {_maxLineBytes} bytes (WorkerProtocol.MaxLineBytes) during {during}; "
                    + $"send large tensors as files in the exchange directory (docs/worker-protocol.md, section 4): {Preview(line)}");
        }
        try
        {
            var doc = JsonDocument.Parse(line.Bytes, new JsonDocumentOptions { MaxDepth = MaxDepth });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                doc.Dispose();
                throw Fatal($"it wrote a stdout line that is not a JSON object during {during} (stdout is for protocol lines only; log to stderr): {Preview(line)}");
            }
            return doc;
        }
        catch (JsonException)
        {
            if (DepthOf(line.Bytes) is int depth)
                throw Fatal($"it wrote a JSON line nested {depth} levels deep during {during}; protocol lines nest at most {MaxDepth} levels: {Preview(line)}");
            throw Fatal($"it wrote a stdout line that is not protocol JSON during {during} (stdout is for protocol lines only; log to stderr): {Preview(line)}");
        }
    }

    /// <summary>The nesting depth of <paramref name="bytes"/> when it is valid JSON only too deep for the protocol; else null.</summary>
    private static int? DepthOf(byte[] bytes)
    {
        try
        {
            var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = int.MaxValue });
            int depth = 0;
            while (reader.Read()) depth = Math.Max(depth, reader.CurrentDepth + 1);
            return depth > MaxDepth ? depth : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private void OnExited()
    {
        // Whatever the worker left behind dies with it; then the end of stdout comes, unless a process out of reach
        // (docs/worker-protocol.md) still holds it: the exit is reported after a grace for the last line to arrive.
        // Runs on a thread-pool thread, where an exception would end the harness: nothing may escape.
        try
        {
            WorkerLauncher.KillAll(_process);
            if (!_stdoutEnded.Wait(TimeSpan.FromSeconds(1))) _lines.Add(new StdoutLine([], LineKind.EndOfStream, 0));
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException or IOException or UnauthorizedAccessException)
        {
            // Disposed meanwhile: nobody waits for this worker any more.
        }
    }

    private BackendException Crashed(string during)
    {
        bool exited = _process.WaitForExit(5000);
        _stderr.WaitForEnd(TimeSpan.FromSeconds(1));
        string how = !exited ? "closed its stdout but is still running"
            : _process.ExitCode > 128 ? $"died with exit code {_process.ExitCode} (signal {_process.ExitCode - 128})"
            : $"exited with code {_process.ExitCode}";
        return Fatal($"the worker process {how} during {during}");
    }

    private void Kill() => WorkerLauncher.KillAll(_process);

    private void ReadStdout(Stream stdout)
    {
        var pending = new MemoryStream();
        var chunk = new byte[1 << 16];
        try
        {
            int read;
            while ((read = stdout.Read(chunk, 0, chunk.Length)) > 0)
            {
                int start = 0;
                while (true)
                {
                    int newline = Array.IndexOf(chunk, (byte)'\n', start, read - start);
                    int end = newline < 0 ? read : newline;
                    if (pending.Length + end - start > _maxLineBytes)
                    {
                        // Stop reading: the line is refused whatever follows, and the worker is killed for it.
                        pending.Write(chunk, start, Math.Min(end - start, PreviewLength * 4));
                        _lines.Add(new StdoutLine(pending.ToArray(), LineKind.Overlong, pending.Length + end - start));
                        return;
                    }
                    pending.Write(chunk, start, end - start);
                    if (newline < 0) break;
                    var bytes = pending.ToArray();
                    pending.SetLength(0);
                    start = newline + 1;
                    // Blank lines carry nothing; a worker may flush an empty line harmlessly.
                    if (bytes.AsSpan().Trim((byte)'\r').Length > 0) _lines.Add(new StdoutLine(bytes, LineKind.Complete, bytes.Length));
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The process went away: treated as end of stream.
        }
        if (pending.Length > 0) _lines.Add(new StdoutLine(pending.ToArray(), LineKind.Partial, pending.Length));
        _lines.Add(new StdoutLine([], LineKind.EndOfStream, 0));
        _stdoutEnded.Set();
    }

    private static void CheckProgram(string name, string program)
    {
        if (program.Contains('/'))
        {
            if (Directory.Exists(program)) throw new BackendException($"worker '{name}': '{program}' is a directory, not a program");
            if (!File.Exists(program)) throw new BackendException($"worker '{name}': the program '{program}' does not exist");
            if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(program) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
                throw new BackendException($"worker '{name}': '{program}' is not executable (chmod +x it, or name its interpreter first: python3 {program})");
            return;
        }
        string? path = Environment.GetEnvironmentVariable("PATH");
        bool found = path?.Split(Path.PathSeparator).Any(dir => dir.Length > 0 && File.Exists(Path.Combine(dir, program))) ?? false;
        if (!found) throw new BackendException($"worker '{name}': the program '{program}' is not on PATH");
    }

    /// <summary>The start of a line as quoted text, with the line's real length when it is longer than the preview.</summary>
    private static string Preview(StdoutLine line)
    {
        string text = Encoding.UTF8.GetString(line.Bytes, 0, (int)Math.Min(line.Bytes.Length, PreviewLength * 4)).ReplaceLineEndings(" ");
        if (text.Length <= PreviewLength && line.Length == line.Bytes.Length) return $"'{text}'";
        return $"'{text[..Math.Min(text.Length, PreviewLength)]}...' ({(line.Kind == LineKind.Overlong ? "more than " : "")}{line.Length} bytes)";
    }

    /// <summary>Quoted text cut to the preview length, for values in messages.</summary>
    internal static string Preview(string text)
    {
        text = text.ReplaceLineEndings(" ");
        return text.Length <= PreviewLength ? $"'{text}'" : $"'{text[..PreviewLength]}...' ({text.Length} characters)";
    }

    private enum LineKind
    {
        Complete,
        Partial,
        Overlong,
        EndOfStream,
    }

    /// <summary>A stdout line (or its start, for an overlong one) and its length in bytes.</summary>
    private readonly record struct StdoutLine(byte[] Bytes, LineKind Kind, long Length);
}
