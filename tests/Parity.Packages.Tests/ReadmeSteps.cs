using System.Text.RegularExpressions;

namespace Parity.Packages.Tests;

/// <summary>
/// The README section that takes a user from <c>dotnet new nunit</c> to a green TorchSharp test: its shell commands
/// and the test file it shows, read from README.md so that the suite runs what the README says.
/// </summary>
internal sealed partial record ReadmeSteps(IReadOnlyList<string> Commands, string TestFileName, string TestFile)
{
    /// <summary>The heading of the section.</summary>
    public const string Heading = "## Use Parity in your own tests";

    /// <summary>The folder the README packs into; the test packs into a temporary one instead.</summary>
    public const string FeedInReadme = "~/parity-packages";

    /// <summary>
    /// Reads the section: the first <c>sh</c> block (one command per line, trailing comments removed; the comment line
    /// that says to write the test file is kept, it marks where) and the first <c>csharp</c> block (the test file, named
    /// by the comment line).
    /// </summary>
    public static ReadmeSteps Read(string readmePath)
    {
        string readme = File.ReadAllText(readmePath);
        int start = readme.IndexOf("\n" + Heading + "\n", StringComparison.Ordinal);
        if (start < 0) throw new InvalidDataException($"{readmePath}: no section '{Heading}'");
        int end = readme.IndexOf("\n## ", start + Heading.Length + 2, StringComparison.Ordinal);
        string section = end < 0 ? readme[start..] : readme[start..end];

        string shell = Block(section, "sh", readmePath);
        var commands = shell.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.StartsWith('#') ? line : TrailingComment().Replace(line, ""))
            .ToList();
        string? write = commands.FirstOrDefault(c => c.StartsWith("# write ", StringComparison.Ordinal))
            ?? throw new InvalidDataException($"{readmePath}: the commands of '{Heading}' have no '# write FILE' line");
        string fileName = write["# write ".Length..].Split(' ')[0];
        return new ReadmeSteps(commands, fileName, Block(section, "csharp", readmePath));
    }

    private static string Block(string section, string language, string readmePath)
    {
        var match = Regex.Match(section, "^```" + language + "\n(.*?)^```$", RegexOptions.Singleline | RegexOptions.Multiline);
        if (!match.Success) throw new InvalidDataException($"{readmePath}: section '{Heading}' has no ```{language} block");
        return match.Groups[1].Value;
    }

    [GeneratedRegex(@"\s+#\s.*$")]
    private static partial Regex TrailingComment();
}
