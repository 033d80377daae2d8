using Python.Runtime;

namespace Parity.Backends.PythonNet;

/// <summary>
/// The time limit of an in-process session's calls into Python, the counterpart of a worker's per-request timeout: when
/// a call runs past <see cref="Limit"/>, a timer thread takes the GIL and raises <c>KeyboardInterrupt</c> in the calling
/// thread (<see cref="PythonEngine.Interrupt"/>, CPython's <c>PyThreadState_SetAsyncExc</c>), again every second while
/// the call has not returned, so an adapter stuck in a Python loop gives the harness back its thread.
/// </summary>
/// <remarks>
/// CPython delivers the exception only when the thread next runs Python bytecode. A native call that never returns
/// cannot be interrupted: one that holds the GIL also blocks the timer (it waits for the GIL), one that released it
/// gets the exception only when it returns. Only a worker, a separate process, can be killed in that state.
/// </remarks>
internal sealed class PythonWatchdog : IDisposable
{
    private static readonly TimeSpan Repeat = TimeSpan.FromSeconds(1);

    // Taken after the GIL wherever both are held (the call runs with the GIL; the timer takes the GIL first), never before it.
    private readonly Lock _gate = new();
    private readonly Timer _timer;
    private bool _inFlight;
    private long _call;
    private ulong _pythonThread;

    /// <summary>Creates a watchdog for calls of at most <paramref name="limit"/>.</summary>
    public PythonWatchdog(TimeSpan limit)
    {
        if (limit <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(limit), limit, "the time limit must be positive");
        Limit = limit;
        _timer = new Timer(_ => Interrupt());
    }

    /// <summary>How long one call may take.</summary>
    public TimeSpan Limit { get; }

    /// <summary>True when the last call ran past the limit and was interrupted (whether or not it then returned normally).</summary>
    public bool Fired { get; private set; }

    /// <summary>Runs <paramref name="call"/>, which the caller makes holding the GIL, under the time limit.</summary>
    public T Run<T>(Func<T> call)
    {
        lock (_gate)
        {
            _pythonThread = PythonEngine.GetPythonThreadID();
            _inFlight = true;
            _call++;
            Fired = false;
        }
        _timer.Change(Limit, Repeat);
        try
        {
            return call();
        }
        finally
        {
            _timer.Change(Timeout.Infinite, Timeout.Infinite);
            lock (_gate) _inFlight = false;
            if (Fired) Drain();
        }
    }

    /// <summary>The error of a call that ran past the limit: what it was doing, and where Python was when interrupted.</summary>
    public BackendException Expired(string backend, string what, PythonException? interrupted)
    {
        string where = "";
        if (interrupted is not null)
        {
            try
            {
                where = PythonErrors.Tail(interrupted.Format());
            }
            catch (PythonException)
            {
                where = "";
            }
        }
        return new BackendException($"'{backend}' (in process) did not return from '{what}' within {Limit.TotalSeconds:0.###} s and was interrupted "
            + "(KeyboardInterrupt raised in its Python thread); set a longer per-request timeout (--timeout) if it is legitimately slow" + where, interrupted);
    }

    public void Dispose() => _timer.Dispose();

    private void Interrupt()
    {
        long call;
        lock (_gate)
        {
            if (!_inFlight) return;
            call = _call;
        }
        using (Py.GIL())
        {
            lock (_gate)
            {
                // Holding the GIL, the call has either not returned (interrupt it) or is past its finally (leave it, and
                // leave alone a later call that began while this timer waited for the GIL).
                if (!_inFlight || _call != call) return;
                PythonEngine.Interrupt(_pythonThread);
                Fired = true;
            }
        }
    }

    /// <summary>
    /// Consumes an interrupt that arrived too late to stop the call (it returned between the timer's GIL and its own
    /// end), so that it cannot surface in this thread's next, unrelated Python call.
    /// </summary>
    private static void Drain()
    {
        for (int attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                PythonEngine.Exec("pass");
                return;
            }
            catch (PythonException)
            {
                // The pending KeyboardInterrupt, raised by the first bytecode: consumed.
            }
        }
    }
}
