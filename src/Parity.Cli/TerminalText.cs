using System.Globalization;
using System.Text;

namespace Parity.Cli;

/// <summary>
/// Text from specs, workers and files made safe for a terminal: control characters (ESC, BEL, CR, the rest of C0
/// and C1, DEL), line and paragraph separators and bidirectional overrides are written as visible escapes
/// (<c>\x1b</c>, <c>\u202e</c>), so a spec name or a worker's stderr cannot move the cursor, set the title, clear the
/// screen or reorder what is shown. Every terminal writer of the CLI goes through <see cref="Escape"/>:
/// <see cref="TerminalWriter"/> wraps stdout and stderr for the whole command.
/// </summary>
internal static class TerminalText
{
    /// <summary>
    /// <paramref name="text"/> with every unsafe character escaped. With <paramref name="keepNewlines"/> a newline
    /// passes and every line after the first is indented by <paramref name="indent"/>, so a value cannot start a line
    /// that looks like the CLI's own output (<c>verdict: agree</c>); without it a newline is escaped too.
    /// </summary>
    public static string Escape(string? text, bool keepNewlines = false, string indent = "")
    {
        if (string.IsNullOrEmpty(text)) return text ?? "";
        StringBuilder? escaped = null;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            string? replacement = c == '\n' ? (keepNewlines ? "\n" + indent : "\\n")
                : c == '\t' ? (keepNewlines ? null : "\\t")
                : IsUnsafe(c) ? Visible(c)
                : null;
            if (replacement is null)
            {
                escaped?.Append(c);
                continue;
            }
            escaped ??= new StringBuilder(text, 0, i, text.Length + 16);
            escaped.Append(replacement);
        }
        return escaped?.ToString() ?? text;
    }

    /// <summary>True for characters a terminal acts on instead of showing (newline and tab excepted).</summary>
    public static bool IsUnsafe(char c) =>
        (char.IsControl(c) && c is not '\n' and not '\t')
        || c is '\u061C' or '\u200E' or '\u200F' or '\u2028' or '\u2029'
        || c is >= '\u202A' and <= '\u202E'
        || c is >= '\u2066' and <= '\u2069';

    private static string Visible(char c) => c <= '\u00FF'
        ? "\\x" + ((int)c).ToString("x2", CultureInfo.InvariantCulture)
        : "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture);
}

/// <summary>
/// A writer that escapes every unsafe character (<see cref="TerminalText.IsUnsafe"/>) on its way to the terminal;
/// newlines and tabs pass. <see cref="Install"/> puts one over stdout and stderr for the length of a command.
/// </summary>
internal sealed class TerminalWriter(TextWriter inner) : TextWriter
{
    /// <summary>Stderr as it was before <see cref="Install"/>, for the progress line's own carriage return.</summary>
    public static TextWriter RawError { get; private set; } = Console.Error;

    public override Encoding Encoding => inner.Encoding;

    /// <summary>Wraps stdout and stderr until the returned scope is disposed.</summary>
    public static IDisposable Install()
    {
        var (stdout, stderr) = (Console.Out, Console.Error);
        RawError = stderr;
        Console.SetOut(new TerminalWriter(stdout));
        Console.SetError(new TerminalWriter(stderr));
        return new Restore(stdout, stderr);
    }

    public override void Write(char value)
    {
        if (TerminalText.IsUnsafe(value)) inner.Write(TerminalText.Escape(value.ToString(), keepNewlines: true));
        else inner.Write(value);
    }

    public override void Write(string? value) => inner.Write(TerminalText.Escape(value, keepNewlines: true));

    public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

    public override void WriteLine(string? value) => inner.WriteLine(TerminalText.Escape(value, keepNewlines: true));

    public override void Flush() => inner.Flush();

    private sealed class Restore(TextWriter stdout, TextWriter stderr) : IDisposable
    {
        public void Dispose()
        {
            Console.Out.Flush();
            Console.Error.Flush();
            Console.SetOut(stdout);
            Console.SetError(stderr);
            RawError = stderr;
        }
    }
}
