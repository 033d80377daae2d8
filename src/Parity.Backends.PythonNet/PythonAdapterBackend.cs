using System.Text.Json;
using Parity.Backends.Workers;
using Parity.Planning;
using Parity.Tensors;

namespace Parity.Backends.PythonNet;

/// <summary>
/// A Python adapter (docs/python-adapters.md) run in the harness's own process through pythonnet: the same module a
/// Python worker serves over stdio, without the protocol. <see cref="TorchPythonNet"/> is the built-in one, the PyTorch
/// adapter of the torch-python worker.
/// </summary>
/// <remarks>
/// In process costs isolation: a crash in native code (a segfault in a framework's kernels) takes the harness down with
/// it, and one process hosts one interpreter. The worker is the isolated alternative (docs/backends.md).
/// </remarks>
public sealed class PythonAdapterBackend : IBackend
{
    /// <summary>The built-in in-process PyTorch backend's name.</summary>
    public const string TorchPythonNetName = "torch-pythonnet";

    private readonly Lock _gate = new();
    private (PythonInterpreter? Interpreter, BackendDescription Description)? _probed;

    /// <summary>Creates the backend.</summary>
    /// <param name="name">Backend name for <c>--backends</c>, traces and reports.</param>
    /// <param name="adapter">The adapter module (a .py file).</param>
    /// <param name="python">The interpreter whose libpython is hosted: its path, a name on PATH, or a virtual environment's folder.</param>
    public PythonAdapterBackend(string name, string adapter, string python)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(adapter);
        ArgumentException.ThrowIfNullOrWhiteSpace(python);
        Name = name;
        Adapter = Path.GetFullPath(adapter);
        Python = WorkerRegistry.PythonInterpreterAt(python);
    }

    /// <summary>The in-process PyTorch backend: the torch-python worker's adapter and interpreter.</summary>
    public static PythonAdapterBackend TorchPythonNet() => new(TorchPythonNetName, WorkerRegistry.TorchAdapter, WorkerRegistry.TorchPythonInterpreter)
    {
        // PyTorch's libtorch aborts the process when TorchSharp's is already loaded (measured: std::system_error, SIGABRT).
        Prerequisite = () => LoadedLibraries.Find(LoadedLibraries.TorchSharp) is string torchSharp
            ? $"TorchSharp's libtorch is loaded in this process ({torchSharp}, by torchsharp) and PyTorch's own libtorch aborts beside it: "
                + "run torch-pythonnet in a run without torchsharp, or use the torch-python worker"
            : null,
    };

    /// <summary>The command-line option that adds a user's adapter: <c>--python-adapter NAME=ADAPTER.py</c>.</summary>
    public const string Option = "--python-adapter";

    /// <summary>What the worker twin of an option's adapter adds to its name: NAME runs in process, NAME-worker as a worker.</summary>
    public const string WorkerSuffix = "-worker";

    /// <summary>
    /// Registers the backends of one <c>--python-adapter NAME=ADAPTER.py</c> value: <c>NAME</c>, the module in this
    /// process, and <c>NAME-worker</c>, the same module served by the worker shell, both on the PyTorch backends'
    /// interpreter. A relative path is taken from the current directory now. A malformed value, a missing module or a
    /// name already registered is an <see cref="ArgumentException"/> naming the value.
    /// </summary>
    public static void AddFromOption(BackendRegistry registry, string nameEqualsAdapter)
    {
        ArgumentNullException.ThrowIfNull(registry);
        var (name, adapter) = WorkerRegistry.NameAndValue(nameEqualsAdapter, Option, "NAME=ADAPTER.py", "mine=./my_adapter.py");
        string path = Path.GetFullPath(adapter.Trim());
        if (!path.EndsWith(".py", StringComparison.Ordinal))
            throw new ArgumentException($"{Option} '{nameEqualsAdapter}': {path} is not a Python module (a .py file, docs/python-adapters.md)");
        if (!File.Exists(path)) throw new ArgumentException($"{Option} '{nameEqualsAdapter}': the adapter module {path} does not exist");
        string worker = name + WorkerSuffix;
        foreach (string taken in new[] { name, worker }.Where(registry.Contains))
            throw new ArgumentException($"{Option} '{nameEqualsAdapter}': a backend named '{taken}' already exists");
        registry.Add(name, () => new PythonAdapterBackend(name, path, WorkerRegistry.TorchPythonInterpreter));
        registry.Add(worker, () => WorkerRegistry.AdapterWorker(worker, path));
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <summary>The adapter module.</summary>
    public string Adapter { get; }

    /// <summary>The interpreter asked for.</summary>
    public string Python { get; }

    /// <summary>Threads the framework may use (passed to the adapter's build); null leaves its default.</summary>
    public int? Threads { get; init; }

    /// <summary>
    /// Why the adapter cannot be loaded into this process now (a native library it clashes with is loaded), or null when
    /// it can; checked by <see cref="Describe"/> and <see cref="Open"/>, so a run's "every available backend" leaves it out.
    /// </summary>
    public Func<string?>? Prerequisite { get; init; }

    /// <inheritdoc />
    /// <remarks>Unavailable because of <see cref="Prerequisite"/>, it still names the interpreter, libpython and framework it found.</remarks>
    public BackendDescription Describe()
    {
        var description = Probed().Description;
        return description.Available && Prerequisite?.Invoke() is string problem
            ? description with { Available = false, Reason = $"{problem} (found: {description.Reason})" }
            : description;
    }

    /// <inheritdoc />
    public IBackendSession Open(Plan plan, BackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(options);
        var (interpreter, description) = Probed();
        if (interpreter is null) throw new BackendException($"'{Name}' cannot run: {description.Reason}");
        if (Prerequisite?.Invoke() is string problem) throw new BackendException($"'{Name}' cannot run in this process: {problem}");
        if (description.Capabilities.Refusal(plan, options) is string refusal) throw new BackendException($"'{Name}' {refusal}");
        PythonRuntime.Start(interpreter);
        return PythonAdapterSession.Open(Name, Adapter, plan, options, Threads, description.Versions);
    }

    private (PythonInterpreter? Interpreter, BackendDescription Description) Probed()
    {
        lock (_gate)
        {
            return _probed ??= Probe();
        }
    }

    private (PythonInterpreter?, BackendDescription) Probe()
    {
        var (interpreter, problem) = PythonInterpreter.Probe(Python, Adapter);
        if (interpreter is null) return (null, Unavailable(problem!));
        if (PythonRuntime.Hosted is { } hosted && (hosted.LibPython != interpreter.LibPython || hosted.Executable != interpreter.Executable))
            return (null, Unavailable($"this process already hosts Python {hosted.Version} ({hosted.Executable}); one interpreter per process, so {interpreter.Executable} cannot run in process too"));
        var adapter = interpreter.Adapter;
        var versions = new Dictionary<string, string>(StringComparer.Ordinal);
        if (adapter.TryGetProperty("versions", out var vs) && vs.ValueKind == JsonValueKind.Object)
            foreach (var v in vs.EnumerateObject()) versions[v.Name] = v.Value.ValueKind == JsonValueKind.String ? v.Value.GetString()! : v.Value.GetRawText();
        versions["python"] = $"{interpreter.Version} ({interpreter.Executable})";
        versions["libpython"] = interpreter.LibPython;
        versions["pythonnet"] = typeof(Python.Runtime.PythonEngine).Assembly.GetName().Version?.ToString(3) ?? "unknown";
        string framework = adapter.TryGetProperty("framework", out var f) ? f.GetString() ?? "?" : "?";
        string version = adapter.TryGetProperty("version", out var fv) ? fv.GetString() ?? "?" : "?";
        var caps = adapter.TryGetProperty("capabilities", out var c) ? c : default;
        bool Flag(string key, bool fallback) => caps.ValueKind == JsonValueKind.Object && caps.TryGetProperty(key, out var b) && b.ValueKind is JsonValueKind.True or JsonValueKind.False ? b.GetBoolean() : fallback;
        IEnumerable<string> List(string key, string fallback) => caps.ValueKind == JsonValueKind.Object && caps.TryGetProperty(key, out var l) && l.ValueKind == JsonValueKind.Array
            ? l.EnumerateArray().Select(x => x.GetString() ?? "") : [fallback];
        var dtypes = new HashSet<DType>(List("dtypes", "float32").Select(DTypes.TryParse).OfType<DType>());
        // An adapter reports its optimizer state by contract (docs/python-adapters.md), so its steps are checked one by one.
        var capabilities = new BackendCapabilities(dtypes, new HashSet<string>(List("devices", "cpu")), Flag("training", true), Flag("sharedInstances", true),
            Flag("frameworkInit", false), OptimizerState: true);
        string reason = $"{framework} {version} in process (pythonnet): {Path.GetFileName(Adapter)} on {interpreter.Executable}";
        return (interpreter, new BackendDescription(Name, true, reason, versions, capabilities));
    }

    private BackendDescription Unavailable(string reason) =>
        new(Name, false, reason, new Dictionary<string, string>(), new BackendCapabilities(new HashSet<DType>(), new HashSet<string>()));
}
