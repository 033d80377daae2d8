using System.Reflection;
using System.Text;

namespace Parity.Backends.Workers;

/// <summary>
/// The built-in workers and <c>--worker NAME=COMMAND</c> workers, created the same way: a name and a
/// command line for a <see cref="WorkerBackend"/>.
/// </summary>
public static class WorkerRegistry
{
    /// <summary>Overrides the folder holding <c>keras/</c> and <c>torch-python/</c>.</summary>
    public const string WorkersDirectoryVariable = "PARITY_WORKERS_DIR";

    /// <summary>
    /// Overrides the Python interpreter of the torch-python worker and the torch-pythonnet backend (default
    /// /usr/bin/python3, Debian's python3-torch): an interpreter's path, or a virtual environment's folder.
    /// </summary>
    public const string TorchPythonVariable = "PARITY_TORCH_PYTHON";

    /// <summary>The built-in workers: <c>keras</c> (Node + TF.js) and <c>torch-python</c> (PyTorch).</summary>
    public static IEnumerable<(string Name, Func<IBackend> Factory)> BuiltIns()
    {
        yield return ("keras", Keras);
        yield return ("torch-python", TorchPython);
    }

    /// <summary>Registers the built-in workers in <paramref name="registry"/>.</summary>
    public static BackendRegistry AddBuiltInWorkers(this BackendRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        foreach (var (name, factory) in BuiltIns()) registry.Add(name, factory);
        return registry;
    }

    /// <summary>
    /// A worker backend from a command line, split like a POSIX shell would split it (quotes and
    /// backslashes; no expansion). A relative program path (<c>./my-worker</c>) is resolved against the
    /// current directory now, so the worker's own working directory does not change its meaning.
    /// </summary>
    public static IBackend FromCommandLine(string name, string command)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var words = SplitCommandLine(command);
        if (words.Count == 0) throw new ArgumentException($"--worker {name}=: the command is empty");
        if (words[0].Contains('/') && !Path.IsPathRooted(words[0])) words[0] = Path.GetFullPath(words[0]);
        return new WorkerBackend(name, words);
    }

    /// <summary>Parses <c>NAME=COMMAND</c> as given to <c>--worker</c>.</summary>
    public static IBackend FromOption(string nameEqualsCommand)
    {
        var (name, command) = NameAndValue(nameEqualsCommand, "--worker", "NAME=COMMAND", "mine=./my-worker.py");
        return FromCommandLine(name, command);
    }

    /// <summary>
    /// Splits a <c>NAME=VALUE</c> option value (<c>--worker</c>, <c>--python-adapter</c>) at its first '='; an
    /// <see cref="ArgumentException"/> names the option and the value when either part is missing or the name could not
    /// be written in <c>--backends</c>.
    /// </summary>
    public static (string Name, string Value) NameAndValue(string option, string flag, string form, string example)
    {
        ArgumentNullException.ThrowIfNull(option);
        int eq = option.IndexOf('=');
        if (eq <= 0 || eq == option.Length - 1)
            throw new ArgumentException($"{flag} '{option}': expected {form}, e.g. {flag} {example}");
        string name = option[..eq].Trim();
        if (name.Contains('@') || name.Contains(','))
            throw new ArgumentException($"{flag} '{option}': the name may not contain '@' or ','");
        return (name, option[(eq + 1)..]);
    }

    /// <summary>
    /// A Python adapter module (docs/python-adapters.md) served as a worker by the adapter-independent shell
    /// <c>workers/python/adapter_worker.py</c>, on the interpreter of the PyTorch backends.
    /// </summary>
    public static WorkerBackend AdapterWorker(string name, string adapter)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(adapter);
        string shell = Path.Combine(PythonHostsDirectory, "adapter_worker.py");
        string module = Path.GetFullPath(adapter);
        return new WorkerBackend(name, [TorchPythonInterpreter, "-u", shell, module], environment: new Dictionary<string, string> { ["PYTHONDONTWRITEBYTECODE"] = "1" })
        {
            Prerequisite = () => !File.Exists(shell) ? $"the Python worker shell is missing: {shell}"
                : !File.Exists(module) ? $"the adapter module is missing: {module}" : null,
        };
    }

    /// <summary>Splits a command line into words: whitespace separates, '...' is literal, "..." and \ escape.</summary>
    public static List<string> SplitCommandLine(string command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var words = new List<string>();
        var word = new StringBuilder();
        bool inWord = false;
        for (int i = 0; i < command.Length; i++)
        {
            char c = command[i];
            if (char.IsWhiteSpace(c))
            {
                if (inWord) words.Add(word.ToString());
                word.Clear();
                inWord = false;
                continue;
            }
            inWord = true;
            if (c == '\'')
            {
                int end = command.IndexOf('\'', i + 1);
                if (end < 0) throw new ArgumentException($"unterminated ' in command line: {command}");
                word.Append(command, i + 1, end - i - 1);
                i = end;
            }
            else if (c == '"')
            {
                for (i++; ; i++)
                {
                    if (i >= command.Length) throw new ArgumentException($"unterminated \" in command line: {command}");
                    if (command[i] == '"') break;
                    if (command[i] == '\\' && i + 1 < command.Length && command[i + 1] is '"' or '\\' or '$' or '`') i++;
                    word.Append(command[i]);
                }
            }
            else if (c == '\\' && i + 1 < command.Length)
            {
                word.Append(command[++i]);
            }
            else
            {
                word.Append(c);
            }
        }
        if (inWord) words.Add(word.ToString());
        return words;
    }

    /// <summary>
    /// The folder with the worker programs: <c>PARITY_WORKERS_DIR</c>, else <c>workers/</c> beside this
    /// assembly (copied by the build), else the source folder recorded at build time.
    /// </summary>
    public static string WorkersDirectory
    {
        get
        {
            if (System.Environment.GetEnvironmentVariable(WorkersDirectoryVariable) is { Length: > 0 } dir) return dir;
            string beside = Path.Combine(AppContext.BaseDirectory, "workers");
            if (Directory.Exists(beside)) return beside;
            return SourceWorkersDirectory ?? beside;
        }
    }

    /// <summary>The <c>keras</c> worker: <c>node workers/keras/worker.js</c>.</summary>
    public static WorkerBackend Keras()
    {
        string script = Path.Combine(WorkersDirectory, "keras", "worker.js");
        string? modules = KerasNodeModules();
        var environment = new Dictionary<string, string>();
        // node_modules is not copied to build outputs (300 MB): Node finds it through NODE_PATH.
        if (modules is not null) environment["NODE_PATH"] = modules;
        return new WorkerBackend("keras", ["node", script], environment: environment)
        {
            Prerequisite = () =>
                !File.Exists(script) ? $"the keras worker script is missing: {script}"
                : modules is null ? "the keras worker's npm packages are not installed (@tensorflow/tfjs 4.22.0): run scripts/setup, or, with the NuGet packages, npm ci in the keras folder of a copy of the workers folder and set PARITY_WORKERS_DIR to that copy"
                : null,
        };
    }

    /// <summary>The <c>torch-python</c> worker: <c>/usr/bin/python3 workers/torch-python/worker.py</c>.</summary>
    public static WorkerBackend TorchPython()
    {
        string script = Path.Combine(WorkersDirectory, "torch-python", "worker.py");
        return new WorkerBackend("torch-python", [TorchPythonInterpreter, "-u", script], environment: new Dictionary<string, string> { ["PYTHONDONTWRITEBYTECODE"] = "1" })
        {
            Prerequisite = () => File.Exists(script) ? null : $"the torch-python worker script is missing: {script}",
        };
    }

    /// <summary>The PyTorch adapter module, shared by the torch-python worker and the torch-pythonnet backend.</summary>
    public static string TorchAdapter => Path.Combine(WorkersDirectory, "torch-python", "torch_adapter.py");

    /// <summary>The folder of the adapter-independent Python hosts: the worker shell and the in-process host.</summary>
    public static string PythonHostsDirectory => Path.Combine(WorkersDirectory, "python");

    /// <summary>
    /// The Python interpreter that runs PyTorch, in the worker and in process alike: <c>PARITY_TORCH_PYTHON</c> (an
    /// interpreter, or a virtual environment's folder, whose <c>bin/python</c> is taken), else Debian's
    /// <c>/usr/bin/python3</c> (the one <c>python3-torch</c> installs into; a <c>python3</c> earlier on PATH, such as a
    /// pyenv shim, may lack torch), else <c>python3</c> on PATH.
    /// </summary>
    public static string TorchPythonInterpreter
    {
        get
        {
            if (System.Environment.GetEnvironmentVariable(TorchPythonVariable) is { Length: > 0 } chosen) return PythonInterpreterAt(chosen);
            return File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        }
    }

    /// <summary>The interpreter <paramref name="interpreterOrEnvironment"/> names: itself, or a virtual environment folder's <c>bin/python</c>.</summary>
    public static string PythonInterpreterAt(string interpreterOrEnvironment) =>
        Directory.Exists(interpreterOrEnvironment) ? Path.Combine(interpreterOrEnvironment, "bin", "python") : interpreterOrEnvironment;

    private static string? KerasNodeModules()
    {
        foreach (string root in new[] { WorkersDirectory, SourceWorkersDirectory }.OfType<string>().Distinct())
        {
            string modules = Path.Combine(root, "keras", "node_modules");
            if (Directory.Exists(Path.Combine(modules, "@tensorflow", "tfjs"))) return modules;
        }
        return null;
    }

    private static string? SourceWorkersDirectory =>
        typeof(WorkerRegistry).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "ParityWorkersSource")?.Value is { } dir && Directory.Exists(dir) ? dir : null;
}
