using System.Globalization;

namespace Parity.Cli;

/// <summary>
/// Progress of a whole run on stderr: backend k of n with its step and ETA, then the compare, diagnose and report phases,
/// and the time since the run started. On a terminal, one self-overwriting line, redrawn at most a few times a second and
/// at least every second; on anything else (a CI log, a pipe), a plain line when the phase or item changes and at least
/// every <see cref="LogInterval"/> while nothing changes, so a log is never silent for long. Colour only on a terminal and
/// never when <c>NO_COLOR</c> is set (https://no-color.org).
/// </summary>
internal sealed class TerminalProgress : IProgress<RunProgress>, IDisposable
{
    /// <summary>The longest a non-terminal waits between two lines while the run goes on.</summary>
    public static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan RedrawInterval = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan TickInterval = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private readonly TextWriter _writer;
    private readonly TimeProvider _time;
    private readonly ITimer? _ticker;
    private readonly long _started;
    private RunProgress? _last;
    private readonly HashSet<(string Label, RunPhase Phase, int Item, string? Task, string Backend)> _shown = [];
    private long _lastLine;
    private bool _drawn;

    /// <summary>Progress on the process's stderr, as a line of its own on a terminal and as plain lines elsewhere.</summary>
    public TerminalProgress()
        : this(TerminalWriter.RawError, interactive: !Console.IsErrorRedirected, color: ColorAllowed(Environment.GetEnvironmentVariable("NO_COLOR")), TimeProvider.System)
    {
    }

    /// <summary>Progress on <paramref name="writer"/>.</summary>
    /// <param name="writer">Where the progress goes (stderr, unescaped: every name in it is escaped here).</param>
    /// <param name="interactive">True for a terminal (one redrawn line), false for a log (plain lines).</param>
    /// <param name="color">True to colour the phase; ignored when not <paramref name="interactive"/>.</param>
    /// <param name="time">The clock, and the ticker that keeps the output alive while nothing is reported.</param>
    /// <param name="tick">False to leave ticking to the caller (<see cref="Tick"/>), as tests do.</param>
    public TerminalProgress(TextWriter writer, bool interactive, bool color, TimeProvider time, bool tick = true)
    {
        _writer = writer;
        Interactive = interactive;
        Color = interactive && color;
        _time = time;
        _started = time.GetTimestamp();
        _lastLine = _started;
        if (tick) _ticker = time.CreateTimer(_ => Tick(), null, TickInterval, TickInterval);
    }

    /// <summary>True for a terminal: one redrawn line; false for a log: plain lines.</summary>
    public bool Interactive { get; }

    /// <summary>True when the phase is coloured.</summary>
    public bool Color { get; }

    /// <summary>Prefix naming the scenario or part of a demo.</summary>
    public string Label { get; set; } = "";

    /// <summary>False when <c>NO_COLOR</c> holds any value (https://no-color.org: present and not empty).</summary>
    public static bool ColorAllowed(string? noColor) => string.IsNullOrEmpty(noColor);

    public void Report(RunProgress value)
    {
        lock (_gate)
        {
            // A new phase or a new item (the next backend) shows at once; anything else waits for its interval. Items that run
            // at once (a worker training beside the reference, comparisons on several cores) take turns in the line.
            bool changed = _shown.Add((Label, value.Phase, value.Item, value.Task, value.Backend));
            _last = value;
            var since = _time.GetElapsedTime(_lastLine);
            if (Interactive ? changed || since >= RedrawInterval || value.Step == value.TotalSteps : changed || since >= LogInterval) Write(value);
        }
    }

    /// <summary>
    /// Called by the ticker every second: on a terminal the line is redrawn (the time since the start moves on); on a log a
    /// line is written when none was for <see cref="LogInterval"/>, so a long phase that reports nothing is not silent.
    /// </summary>
    public void Tick()
    {
        lock (_gate)
        {
            if (_last is not { } last) return;
            if (_time.GetElapsedTime(_lastLine) >= (Interactive ? TickInterval : LogInterval)) Write(last);
        }
    }

    /// <summary>Stops the ticker and clears the line before normal output continues.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _ticker?.Dispose();
            _last = null;
            if (!Interactive || !_drawn) return;
            _writer.Write("\r" + new string(' ', Width) + "\r");
            _writer.Flush();
            _drawn = false;
        }
    }

    public void Dispose() => Clear();

    /// <summary>
    /// The progress in words: <c>backend 2 of 5 keras: step 40/100 (40%), ETA 1:02:03</c>, <c>compare 1 of 2 keras (step
    /// checks): step 4/10 (40%), ETA 0:03</c>, <c>diagnose (12 detectors)</c>, <c>report 2 of 4 html (writing report files)</c>.
    /// </summary>
    public static string Describe(RunProgress value)
    {
        string phase = value.Phase switch
        {
            RunPhase.Train => "backend",
            _ => value.Phase.ToString().ToLowerInvariant(),
        };
        string item = value.Items > 0 ? $" {value.Item} of {value.Items}" : "";
        string subject = value.Backend.Length > 0 ? $" {TerminalText.Escape(value.Backend)}" : "";
        string task = value.Task is null ? "" : $" ({TerminalText.Escape(value.Task)})";
        string steps = "";
        if (value.TotalSteps > 0)
        {
            steps = value.Step == 0
                ? ": starting"
                : $": step {value.Step}/{value.TotalSteps} ({100.0 * value.Step / value.TotalSteps:F0}%)";
            if (value.Step > 0 && value.Step < value.TotalSteps)
                steps += $", ETA {Duration(TimeSpan.FromSeconds(value.Elapsed.TotalSeconds / value.Step * (value.TotalSteps - value.Step)))}";
        }
        return $"{phase}{item}{subject}{task}{steps}";
    }

    /// <summary>A duration as <c>m:ss</c>, or <c>h:mm:ss</c> from an hour on (hours keep counting past a day).</summary>
    public static string Duration(TimeSpan t)
    {
        if (t < TimeSpan.Zero) t = TimeSpan.Zero;
        return t.TotalHours >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{(long)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}")
            : string.Create(CultureInfo.InvariantCulture, $"{t.Minutes}:{t.Seconds:00}");
    }

    private static int Width => Math.Min(Console.IsErrorRedirected || Console.BufferWidth <= 0 ? 100 : Console.BufferWidth - 1, 160);

    private void Write(RunProgress value)
    {
        string elapsed = Duration(_time.GetElapsedTime(_started));
        string words = Describe(value);
        string label = TerminalText.Escape(Label);
        if (Interactive)
        {
            // One line that fits the terminal, or the carriage return no longer overwrites it; the padding is computed on the
            // visible text, so the colour codes do not shorten the line.
            int over = label.Length + words.Length + elapsed.Length + 3 - Width;
            if (over > 0) words = words[..Math.Max(0, words.Length - over)];
            string visible = $"{label}{words} [{elapsed}]";
            string shown = Color ? $"{label}\u001b[1;36m{words}\u001b[0m [{elapsed}]" : visible;
            _writer.Write("\r" + shown + new string(' ', Math.Max(0, Width - visible.Length)));
            _drawn = true;
        }
        else
        {
            _writer.WriteLine($"progress [{elapsed}] {label}{words}");
        }
        _writer.Flush();
        _lastLine = _time.GetTimestamp();
    }
}
