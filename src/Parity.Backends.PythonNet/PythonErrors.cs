using Parity.Backends.Workers;
using Python.Runtime;

namespace Parity.Backends.PythonNet;

/// <summary>
/// Python failures as the harness reports a worker's: the message with the last lines of the Python traceback, as a
/// worker's error quotes the last lines of its stderr.
/// </summary>
internal static class PythonErrors
{
    /// <summary>The last <see cref="WorkerProtocol.StderrTailLines"/> lines of <paramref name="text"/>, indented, or a note that there were none.</summary>
    public static string Tail(string text)
    {
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToList();
        if (lines.Count == 0) return "\n  (Python wrote nothing to stderr)";
        var tail = lines.Skip(Math.Max(0, lines.Count - WorkerProtocol.StderrTailLines)).ToList();
        return $"\n  last {tail.Count} traceback line(s):\n    " + string.Join("\n    ", tail);
    }

    /// <summary>A <see cref="BackendException"/> for a Python exception raised in <paramref name="what"/>, with the traceback's last lines.</summary>
    public static BackendException From(PythonException e, string backend, string what)
    {
        string traceback;
        try
        {
            traceback = e.Format();
        }
        catch (PythonException)
        {
            traceback = e.Message;
        }
        return new BackendException($"'{backend}' (in process) failed in '{what}': {e.Type.Name}: {e.Message}{Tail(traceback)}", e);
    }
}
