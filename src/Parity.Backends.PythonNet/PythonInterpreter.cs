using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json;
using Parity.Backends.Workers;

namespace Parity.Backends.PythonNet;

/// <summary>
/// A Python interpreter as probed in a subprocess, before anything is loaded into the harness: its shared libpython
/// (found through its own <c>sysconfig</c>), its module path and the adapter's description. Probing in a child process
/// means a wrong path, a missing framework or an interpreter without a shared library is reported as a reason, and never
/// loads a second interpreter into a process that already hosts one.
/// </summary>
/// <param name="Executable">The interpreter's <c>sys.executable</c>.</param>
/// <param name="Version">Its version, e.g. <c>3.11.2</c>.</param>
/// <param name="LibPython">The shared library pythonnet loads.</param>
/// <param name="ModulePath">Its <c>sys.path</c>, with the adapter's folders: set in the hosted interpreter too.</param>
/// <param name="Adapter">The adapter's <c>describe()</c>: framework, version, versions, capabilities.</param>
public sealed record PythonInterpreter(string Executable, string Version, string LibPython, IReadOnlyList<string> ModulePath, JsonElement Adapter)
{
    /// <summary>Overrides the libpython found through sysconfig (pythonnet's own variable).</summary>
    public const string LibPythonVariable = "PYTHONNET_PYDLL";

    /// <summary>Time the probe may take: importing a framework on a loaded machine takes seconds.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(120);

    /// <summary>
    /// Runs <paramref name="python"/> on the probe of <c>pythonnet_host.py</c> with <paramref name="adapter"/>; returns the
    /// interpreter, or null and why it cannot host the adapter (the Python traceback's last lines when the import failed).
    /// </summary>
    public static (PythonInterpreter? Interpreter, string? Problem) Probe(string python, string adapter)
    {
        ArgumentNullException.ThrowIfNull(python);
        ArgumentNullException.ThrowIfNull(adapter);
        string host = Path.Combine(WorkerRegistry.PythonHostsDirectory, "pythonnet_host.py");
        if (!File.Exists(host)) return (null, $"the in-process host script is missing: {host}");
        if (!File.Exists(adapter)) return (null, $"the adapter module is missing: {adapter}");
        if (python.Contains('/') && !File.Exists(python))
            return (null, $"the Python interpreter '{python}' does not exist (set {WorkerRegistry.TorchPythonVariable} to an interpreter or a virtual environment)");
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { host, "probe", adapter }) start.ArgumentList.Add(arg);
        start.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new Win32Exception("not started");
        }
        catch (Win32Exception e)
        {
            return (null, $"the Python interpreter '{python}' cannot be started ({e.Message}); set {WorkerRegistry.TorchPythonVariable} to an interpreter or a virtual environment");
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(ProbeTimeout))
            {
                process.Kill(entireProcessTree: true);
                return (null, $"'{python}' did not finish probing the adapter within {ProbeTimeout.TotalSeconds:F0} s");
            }
            if (process.ExitCode != 0)
                return (null, $"'{python}' cannot import the adapter {Path.GetFileName(adapter)} (exit code {process.ExitCode}){PythonErrors.Tail(stderr.Result)}");
            return Read(python, stdout.Result);
        }
    }

    private static (PythonInterpreter?, string?) Read(string python, string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            var config = root.GetProperty("config");
            string? Var(string name) => config.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            string executable = root.GetProperty("executable").GetString() ?? python;
            string version = root.GetProperty("version").GetString() ?? "";
            string? lib = System.Environment.GetEnvironmentVariable(LibPythonVariable) is { Length: > 0 } chosen ? chosen : LibPythonOf(Var("LIBDIR"), Var("MULTIARCH"), Var("INSTSONAME"), Var("LDLIBRARY"));
            if (lib is null || !File.Exists(lib))
                return (null, $"python {version} at {executable} has no shared libpython (LIBDIR {Var("LIBDIR") ?? "unset"}, INSTSONAME {Var("INSTSONAME") ?? "unset"}; "
                    + $"an interpreter built without --enable-shared cannot be hosted in process): set {LibPythonVariable} to its libpython, or use the torch-python worker");
            var path = root.GetProperty("path").EnumerateArray().Select(p => p.GetString()!).ToList();
            return (new PythonInterpreter(executable, version, lib, path, root.GetProperty("adapter").Clone()), null);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return (null, $"'{python}' answered the probe with something else than its JSON line ({e.Message}): {json[..Math.Min(json.Length, 160)]}");
        }
    }

    /// <summary>
    /// The shared library a Python build installs: <c>INSTSONAME</c> (the versioned file, e.g. libpython3.11.so.1.0, which
    /// Debian's libpython3.11 ships without the -dev symlink) in LIBDIR or its multiarch folder, then <c>LDLIBRARY</c>.
    /// </summary>
    private static string? LibPythonOf(string? libDir, string? multiarch, string? soName, string? ldLibrary)
    {
        if (libDir is null) return null;
        var candidates = new[] { soName, ldLibrary }.OfType<string>().Where(n => n.Contains(".so", StringComparison.Ordinal))
            .SelectMany(n => new[] { Path.Combine(libDir, n), multiarch is null ? null : Path.Combine(libDir, multiarch, n) }).OfType<string>();
        return candidates.FirstOrDefault(File.Exists);
    }
}
