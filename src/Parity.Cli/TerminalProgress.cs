using System.Diagnostics;

namespace Parity.Cli;

/// <summary>
/// Progress on stderr for long runs: one self-overwriting line with backend, step and ETA, at most a few
/// times a second, and nothing at all when stderr is not a terminal (CI logs stay clean).
/// </summary>
internal sealed class TerminalProgress : IProgress<RunProgress>
{
    private readonly Stopwatch _sinceLastDraw = Stopwatch.StartNew();
    private readonly bool _enabled = !Console.IsErrorRedirected;
    private bool _drawn;

    /// <summary>Prefix naming the scenario or phase.</summary>
    public string Label { get; set; } = "";

    public void Report(RunProgress value)
    {
        if (!_enabled || (_sinceLastDraw.ElapsedMilliseconds < 200 && value.Step != value.TotalSteps)) return;
        _sinceLastDraw.Restart();
        double perStep = value.Elapsed.TotalSeconds / Math.Max(1, value.Step);
        var eta = TimeSpan.FromSeconds(perStep * (value.TotalSteps - value.Step));
        string line = $"{TerminalText.Escape(Label)}{TerminalText.Escape(value.Backend)}: step {value.Step}/{value.TotalSteps} ({100.0 * value.Step / value.TotalSteps:F0}%), ETA {eta:mm\\:ss}";
        TerminalWriter.RawError.Write("\r" + line.PadRight(Math.Min(Console.BufferWidth > 0 ? Console.BufferWidth - 1 : 100, 100)));
        _drawn = true;
    }

    /// <summary>Clears the line before normal output continues.</summary>
    public void Clear()
    {
        if (!_enabled || !_drawn) return;
        TerminalWriter.RawError.Write("\r" + new string(' ', 100) + "\r");
        _drawn = false;
    }
}
