using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Parity.Specs;

namespace Parity.IO;

/// <summary>
/// The one place where a name that comes from a spec, a backend or a worker becomes part of a path. A scenario
/// name is an identifier and is refused when it is not one; a backend, worker or version name is mapped onto
/// one directory name. Either way the result is a single directory directly under the root the caller chose:
/// no separator, no <c>.</c> or <c>..</c>, no hidden or option-like name, nothing that leaves the root.
/// </summary>
public static class PathNames
{
    /// <summary>The longest scenario name and the longest directory name made from a display name.</summary>
    public const int MaxLength = 200;

    /// <summary>
    /// Null when <paramref name="name"/> is a valid scenario name, else what is wrong with it: 1..200 ASCII
    /// letters, digits, <c>-</c>, <c>_</c>, <c>.</c> or <c>+</c>, not starting with <c>.</c> or <c>-</c>.
    /// </summary>
    public static string? ScenarioNameProblem(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        const string Rule = "a scenario name names its output folder: use 1..200 ASCII letters, digits, '-', '_', '.' or '+', not starting with '.' or '-'";
        if (name.Length is 0 or > MaxLength) return $"{Rule} (found {name.Length} characters)";
        return name.All(IsNameCharacter) && name[0] is not ('.' or '-') ? null : $"{Rule} (found {Quote(name)})";
    }

    /// <summary>
    /// <paramref name="root"/>/<paramref name="scenarioName"/>: the folder of a scenario under a root the user chose.
    /// </summary>
    /// <exception cref="SpecException">The name is not a scenario name (<c>$.name</c>).</exception>
    public static string ScenarioDirectory(string root, string scenarioName)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (ScenarioNameProblem(scenarioName) is { } problem) throw new SpecException("$.name", problem);
        return Contained(root, scenarioName);
    }

    /// <summary>
    /// <paramref name="root"/>/<see cref="Segment"/>(<paramref name="displayName"/>): the folder of a backend, worker or
    /// version key under a root the user chose.
    /// </summary>
    public static string Under(string root, string displayName)
    {
        ArgumentNullException.ThrowIfNull(root);
        return Contained(root, Segment(displayName));
    }

    /// <summary>
    /// A display name as one directory name: every character but ASCII letters, digits, <c>-</c>, <c>_</c>, <c>.</c> and <c>+</c>
    /// becomes <c>_</c>, a leading <c>.</c> or <c>-</c> too (so <c>..</c> is <c>_.</c>), an empty name is <c>_</c>, and a
    /// name longer than 200 characters keeps its first 187 and a hash of the whole. A valid scenario name maps to itself.
    /// </summary>
    public static string Segment(string displayName)
    {
        ArgumentNullException.ThrowIfNull(displayName);
        var chars = displayName.Select(c => IsNameCharacter(c) ? c : '_').ToArray();
        if (chars.Length == 0) return "_";
        if (chars[0] is '.' or '-') chars[0] = '_';
        string segment = new(chars);
        if (segment.Length <= MaxLength) return segment;
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(displayName)))[..12];
        return segment[..(MaxLength - hash.Length - 1)] + "_" + hash;
    }

    /// <summary>A name as a JSON string literal, at most 32 characters of it: control characters and escapes stay visible and inert.</summary>
    public static string Quote(string name) => JsonSerializer.Serialize(name.Length <= 32 ? name : name[..32] + "...");

    private static bool IsNameCharacter(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '+';

    // The segment is safe by construction; the check states the promise where it is kept.
    private static string Contained(string root, string segment)
    {
        string path = Path.Combine(root, segment);
        string parent = Path.GetFullPath(root).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        if (!Path.GetFullPath(path).StartsWith(parent, StringComparison.Ordinal) || segment is "." or "..")
            throw new InvalidOperationException($"{Quote(segment)} would leave {root}");
        return path;
    }
}
