using Parity.Backends.Workers.Protocol;
using Parity.Planning;
using Parity.Tensors;

namespace Parity.Backends.Workers;

/// <summary>
/// A backend run by an external worker program that speaks the worker protocol
/// (docs/worker-protocol.md). Built-in workers (<c>keras</c>, <c>torch-python</c>) and user workers from
/// <c>--worker NAME=COMMAND</c> are both this type; see <see cref="WorkerRegistry"/>.
/// </summary>
/// <remarks>
/// <see cref="Describe"/> starts the worker once to read its ready line (capabilities and versions); the
/// started process is kept and handed to the next <see cref="Open"/>, so a run pays the start-up once.
/// Requests time out after <see cref="BackendOptions.Timeout"/>, or <see cref="WorkerProtocol.DefaultRequestTimeout"/>
/// when that is not set; a worker that times out is killed with its whole process group and tree, and a worker
/// never outlives the harness (<see cref="Protocol.WorkerLauncher"/>).
/// </remarks>
public sealed class WorkerBackend : IBackend
{
    private readonly Lock _gate = new();
    private WorkerProcess? _spare;
    private BackendDescription? _description;

    /// <summary>Creates a worker backend.</summary>
    /// <param name="name">Backend name for <c>--backends</c>, traces and reports.</param>
    /// <param name="command">Program and arguments (no shell involved).</param>
    /// <param name="workingDirectory">Working directory of the process, or null for the harness's.</param>
    /// <param name="environment">Variables added to the worker's environment.</param>
    public WorkerBackend(string name, IReadOnlyList<string> command, string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(command);
        Name = name;
        Command = [.. command];
        WorkingDirectory = workingDirectory;
        Environment = environment ?? new Dictionary<string, string>();
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <summary>Program and arguments.</summary>
    public IReadOnlyList<string> Command { get; }

    /// <summary>Working directory of the worker process (null: the harness's).</summary>
    public string? WorkingDirectory { get; }

    /// <summary>Variables added to the worker's environment.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; }

    /// <summary>Time from start to the ready line.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = WorkerProtocol.DefaultHandshakeTimeout;

    /// <summary>Tensors with more raw bytes than this are exchanged as files (docs/worker-protocol.md).</summary>
    public long FileThresholdBytes { get; init; } = WorkerProtocol.DefaultFileThresholdBytes;

    /// <summary>The longest stdout line accepted from the worker, in bytes (<see cref="WorkerProtocol.MaxLineBytes"/>).</summary>
    public long MaxLineBytes { get; init; } = WorkerProtocol.MaxLineBytes;

    /// <summary>Threads the worker's framework may use (sent in <c>build</c>); null leaves the framework's default.</summary>
    public int? Threads { get; init; }

    /// <summary>
    /// Checks that run before the worker is started, returning why it cannot run (e.g. "node_modules
    /// missing: run scripts/setup") or null when it can. Lets a built-in worker say what to install.
    /// </summary>
    public Func<string?>? Prerequisite { get; init; }

    /// <inheritdoc />
    public BackendDescription Describe()
    {
        lock (_gate)
        {
            if (_description is not null) return _description;
            string? missing = SafePrerequisite();
            if (missing is not null) return _description = Unavailable(missing);
            try
            {
                _spare ??= StartAndHandshake();
                var hello = _spare.Hello!;
                return _description = new BackendDescription(Name, true, $"{hello.Framework} {hello.Version} worker: {string.Join(" ", Command)}",
                    hello.Versions, hello.Capabilities with { ConcurrentSessions = true }); // each session is a process of its own
            }
            catch (BackendException e)
            {
                return _description = Unavailable(e.Message);
            }
        }
    }

    /// <inheritdoc />
    public IBackendSession Open(Plan plan, BackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(options);
        if (SafePrerequisite() is string missing) throw new BackendException($"worker '{Name}' cannot run: {missing}");
        WorkerProcess worker;
        lock (_gate)
        {
            worker = _spare is { HasExited: false } spare ? spare : StartAndHandshake();
            if (!ReferenceEquals(worker, _spare)) _spare?.Dispose();
            _spare = null;
        }
        try
        {
            if (worker.Hello!.Capabilities.Refusal(plan, options) is string refusal)
                throw new BackendException($"worker '{Name}' ({worker.Hello.Framework}) {refusal}");
            return WorkerSession.Open(worker, plan, options, options.Timeout ?? WorkerProtocol.DefaultRequestTimeout, FileThresholdBytes, Threads);
        }
        catch
        {
            worker.Dispose();
            throw;
        }
    }

    private WorkerProcess StartAndHandshake()
    {
        var worker = WorkerProcess.Start(Name, Command, WorkingDirectory, Environment, MaxLineBytes);
        try
        {
            worker.Handshake(HandshakeTimeout);
            return worker;
        }
        catch
        {
            worker.Dispose();
            throw;
        }
    }

    private string? SafePrerequisite()
    {
        try
        {
            return Prerequisite?.Invoke();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return e.Message;
        }
    }

    private BackendDescription Unavailable(string reason) =>
        new(Name, false, reason, new Dictionary<string, string>(), new BackendCapabilities(new HashSet<DType>(), new HashSet<string>()));
}
