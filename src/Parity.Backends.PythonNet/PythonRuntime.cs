using Python.Runtime;

namespace Parity.Backends.PythonNet;

/// <summary>
/// The one Python interpreter a process can host (a pythonnet and CPython limitation): started once, on first use, from
/// any thread; the GIL is released as soon as it is up and taken only around each call into Python, so several sessions
/// (NUnit fixtures, the backends of one run) share it safely, one call at a time. A backend asking for another
/// interpreter than the hosted one is refused with both paths named.
/// </summary>
internal static class PythonRuntime
{
    private static readonly Lock Gate = new();
    private static PythonInterpreter? _hosted;

    /// <summary>The interpreter this process hosts, or null before the first in-process session.</summary>
    public static PythonInterpreter? Hosted
    {
        get
        {
            lock (Gate) return _hosted;
        }
    }

    /// <summary>Starts <paramref name="interpreter"/> in this process, or checks that it is the one already hosted.</summary>
    public static void Start(PythonInterpreter interpreter)
    {
        lock (Gate)
        {
            if (_hosted is not null)
            {
                if (_hosted.LibPython != interpreter.LibPython || _hosted.Executable != interpreter.Executable)
                    throw new BackendException($"this process already hosts Python {_hosted.Version} ({_hosted.Executable}, {_hosted.LibPython}); "
                        + $"one interpreter per process, so {interpreter.Executable} cannot run in process too: run it as a worker (torch-python)");
                return;
            }
            Runtime.PythonDLL = interpreter.LibPython;
            PythonEngine.Initialize();
            // The embedded interpreter's own path search knows nothing of the interpreter it was probed as (a virtual
            // environment's site-packages, the adapter's folders): take the probed path, so both import the same modules.
            using (var sys = Py.Import("sys"))
            {
                using var path = new PyList([.. interpreter.ModulePath.Select(p => (PyObject)new PyString(p))]);
                sys.SetAttr("path", path);
                using var executable = new PyString(interpreter.Executable);
                sys.SetAttr("executable", executable);
            }
            PythonEngine.BeginAllowThreads();
            _hosted = interpreter;
        }
    }

    /// <summary>
    /// Runs <paramref name="call"/> holding the GIL; a Python exception becomes a <see cref="BackendException"/> with its
    /// traceback tail. Under a <paramref name="watchdog"/>, a call that runs past its limit is interrupted and reported as such.
    /// </summary>
    public static T Call<T>(string backend, string what, Func<T> call, PythonWatchdog? watchdog = null)
    {
        using (Py.GIL())
        {
            T result;
            try
            {
                result = watchdog is null ? call() : watchdog.Run(call);
            }
            catch (PythonException e)
            {
                throw watchdog is { Fired: true } ? watchdog.Expired(backend, what, e) : PythonErrors.From(e, backend, what);
            }
            // Interrupted, yet returned (the adapter swallowed the KeyboardInterrupt, or it came as the call ended): still over time.
            if (watchdog is { Fired: true }) throw watchdog.Expired(backend, what, null);
            return result;
        }
    }
}
