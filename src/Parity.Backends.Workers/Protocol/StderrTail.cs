using System.Text;

namespace Parity.Backends.Workers.Protocol;

/// <summary>
/// The last lines a worker wrote to stderr, drained continuously by a background thread so a chatty
/// worker never blocks on a full pipe, and quoted in every error message about that worker.
/// </summary>
internal sealed class StderrTail
{
    private const int MaxLineLength = 400;
    private readonly Queue<string> _lines = new();
    private readonly int _capacity;
    private readonly Lock _gate = new();
    private readonly Thread _drain;

    public StderrTail(StreamReader stderr, int capacity)
    {
        _capacity = capacity;
        _drain = new Thread(() => Drain(stderr)) { IsBackground = true, Name = "worker stderr" };
        _drain.Start();
    }

    /// <summary>Waits briefly for the drain to reach end of stream (after the process exited).</summary>
    public void WaitForEnd(TimeSpan timeout) => _drain.Join(timeout);

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_gate) return [.. _lines];
        }
    }

    /// <summary>The tail as an indented block for messages, or a note that stderr was empty.</summary>
    public string Describe()
    {
        var lines = Lines;
        if (lines.Count == 0) return "\n  (the worker wrote nothing to stderr)";
        return $"\n  last {lines.Count} stderr line(s):\n    " + string.Join("\n    ", lines);
    }

    private void Drain(StreamReader stderr)
    {
        // Line by line, but never more than MaxLineLength characters of one line in memory: a worker that writes an
        // endless line to stderr costs nothing.
        var line = new StringBuilder();
        bool cut = false;
        var chunk = new char[4096];
        try
        {
            int read;
            while ((read = stderr.Read(chunk, 0, chunk.Length)) > 0)
            {
                for (int i = 0; i < read; i++)
                {
                    char c = chunk[i];
                    if (c == '\n')
                    {
                        Keep(line, cut);
                        line.Clear();
                        cut = false;
                    }
                    else if (line.Length < MaxLineLength) line.Append(c);
                    else cut = true;
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The process went away; what was read is kept.
        }
        if (line.Length > 0) Keep(line, cut);
    }

    private void Keep(StringBuilder line, bool cut)
    {
        string text = line.ToString().TrimEnd('\r') + (cut ? " ..." : "");
        lock (_gate)
        {
            _lines.Enqueue(text);
            while (_lines.Count > _capacity) _lines.Dequeue();
        }
    }
}
