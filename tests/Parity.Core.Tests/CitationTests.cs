using System.Text;
using System.Text.RegularExpressions;

namespace Parity.Tests;

/// <summary>
/// What the code, the docs, the scripts, the tests and the fixtures cite must be in the repository: a user has
/// neither the documents the project was planned from nor its issue tracker. Framework conventions are cited as
/// docs/conventions.md sections and source keys, and those must exist there.
/// </summary>
public sealed partial class CitationTests
{
    private static readonly string[] WalkedFolders = ["src", "docs", "scripts", "tests", "fixtures"];
    private static readonly string[] WalkedFiles = ["README.md", "Directory.Packages.props", "Directory.Build.props", "Directory.Build.targets"];

    // Build outputs, test results, npm packages and hidden folders: ignored by git, not the project's text.
    private static readonly HashSet<string> SkippedFolders = new(StringComparer.Ordinal) { "bin", "obj", "out", "TestResults", "node_modules" };

    private static readonly (Regex Pattern, string What)[] OutsideReferences =
    [
        (PlanningDocument(), "a planning document that is not in the repository"),
        (SharedFolder(), "the shared planning folder, not in the repository"),
        (IssueWord(), "an issue number"),
        (IssueHash(), "an issue number"),
    ];

    // Upper-case names: the project's own docs are lower case (docs/conventions.md).
    [GeneratedRegex(@"\b(?:CONVENTIONS|DESIGN|HOPPER|ENVIRONMENT|STYLE)\.md\b")]
    private static partial Regex PlanningDocument();

    // Not the shared-framework folder of a .NET installation.
    [GeneratedRegex(@"\.\.\/shared\b|\bshared\/(?:seeds|findings|hooks)\b")]
    private static partial Regex SharedFolder();

    [GeneratedRegex(@"\b[Ii]ssues?\s+(?:no\.\s*)?#?\d")]
    private static partial Regex IssueWord();

    // A hash right before a number, as trackers number issues; not call ids such as bn#1, HTML entities, colours,
    // anchors such as #1-batchnorm, or an upstream "PR #1496".
    [GeneratedRegex(@"(?<![\w&#/`])(?<!PR )#\d+(?![\w-])")]
    private static partial Regex IssueHash();

    private const string Key = @"(?:P\d+|K\d[a-g]?|T\d+|TS|TD|JS[a-f]?|C[a-f]?|CS|O\d?|S\d?|S-train)";

    [GeneratedRegex(@"\[(" + Key + @"(?:,\s*" + Key + @")*)\]")]
    private static partial Regex SourceKeys();

    [GeneratedRegex(@"conventions\.md(?:#[\w-]+)?\)?,?\s+sections?\s+(\d+(?:\s*(?:-|and|,)\s*\d+)*)")]
    private static partial Regex SectionCitation();

    [GeneratedRegex(@"conventions\.md#([\w-]+)")]
    private static partial Regex AnchorLink();

    [GeneratedRegex(@"^#{2,}\s+(.+?)\s*$", RegexOptions.Multiline)]
    private static partial Regex Heading();

    [GeneratedRegex(@"^##\s+(\d+)\.\s", RegexOptions.Multiline)]
    private static partial Regex NumberedSection();

    [GeneratedRegex(@"^\|\s*([A-Za-z0-9-]+)\s*\|", RegexOptions.Multiline)]
    private static partial Regex TableFirstCell();

    private sealed record Line(string File, int Number, string Text)
    {
        public string Where => $"{File}:{Number}";
    }

    private static readonly Lazy<List<Line>> Lines = new(ReadLines);

    private static List<Line> ReadLines()
    {
        var paths = new List<string>();
        foreach (string name in WalkedFiles)
        {
            string path = Path.Combine(Repository.Root, name);
            if (File.Exists(path)) paths.Add(path);
        }
        foreach (string folder in WalkedFolders) Walk(new DirectoryInfo(Path.Combine(Repository.Root, folder)), paths);

        var lines = new List<Line>();
        foreach (string path in paths.Order(StringComparer.Ordinal))
        {
            byte[] bytes = File.ReadAllBytes(path);
            if (Array.IndexOf(bytes, (byte)0, 0, Math.Min(bytes.Length, 8192)) >= 0) continue; // binary
            string relative = Path.GetRelativePath(Repository.Root, path).Replace('\\', '/');
            string[] text = Encoding.UTF8.GetString(bytes).Split('\n');
            for (int i = 0; i < text.Length; i++) lines.Add(new Line(relative, i + 1, text[i].TrimEnd('\r')));
        }
        return lines;
    }

    private static void Walk(DirectoryInfo dir, List<string> paths)
    {
        if (!dir.Exists) return;
        foreach (var file in dir.EnumerateFiles()) paths.Add(file.FullName);
        foreach (var sub in dir.EnumerateDirectories())
            if (!SkippedFolders.Contains(sub.Name) && !sub.Name.StartsWith('.')) Walk(sub, paths);
    }

    private static IEnumerable<string> OutsideReferencesIn(string text) =>
        OutsideReferences.SelectMany(r => r.Pattern.Matches(text).Select(m => $"'{m.Value}' ({r.What})"));

    private static string Conventions => File.ReadAllText(Repository.Docs("conventions.md"));

    // GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
    private static string Anchor(string heading) =>
        new string(heading.ToLowerInvariant().Where(c => char.IsLetterOrDigit(c) || c is ' ' or '-' or '_').ToArray()).Replace(' ', '-');

    private static IEnumerable<int> CitedSections(string list)
    {
        foreach (Match m in Regex.Matches(list, @"(\d+)\s*-\s*(\d+)|(\d+)"))
        {
            if (m.Groups[3].Success) { yield return int.Parse(m.Groups[3].Value); continue; }
            int from = int.Parse(m.Groups[1].Value), to = int.Parse(m.Groups[2].Value);
            for (int s = from; s <= to; s++) yield return s;
        }
    }

    [Test]
    public void The_walk_reads_the_code_the_docs_and_the_scripts()
    {
        var files = Lines.Value.Select(l => l.File).Distinct().ToList();
        Assert.That(files, Does.Contain("README.md").And.Contain("docs/conventions.md").And.Contain("scripts/torchsharp-fix")
            .And.Contain("src/Parity.Diagnostics/Detectors/BnEpsilonDetector.cs"));
        Assert.That(files, Has.None.Contains("/bin/").And.None.Contains("/obj/").And.None.Contains("node_modules"));
    }

    [TestCase("see the " + "CONVENTIONS" + ".md section 1")]
    [TestCase("(" + "DESIGN" + ".md \"Reports\")")]
    [TestCase("../sha" + "red/seeds/000")]
    [TestCase("shared" + "/seeds")]
    [TestCase("(is" + "sue 9)")]
    [TestCase("Is" + "sue 2 item 7")]
    [TestCase("fixed in #" + "6")]
    [TestCase("(#" + "12)")]
    public void An_outside_reference_is_recognised(string text) =>
        Assert.That(OutsideReferencesIn(text), Is.Not.Empty);

    [TestCase("docs/conventions.md section 1")]
    [TestCase("calls bn#1 and bn#2")]
    [TestCase("color:#1d2430")]
    [TestCase("[section 1](conventions.md#1-batchnorm)")]
    [TestCase("TorchSharp PR #1496")]
    [TestCase("cp -a \"$root/shared" + "/Microsoft.NETCore.App\"")]
    public void An_inside_reference_is_not_flagged(string text) =>
        Assert.That(OutsideReferencesIn(text), Is.Empty);

    [Test]
    public void No_file_cites_a_document_outside_the_repository_or_an_issue_number()
    {
        var found = Lines.Value.SelectMany(l => OutsideReferencesIn(l.Text).Select(what => $"{l.Where}: {what}")).ToList();
        Assert.That(found, Is.Empty, "cite docs/ instead (docs/conventions.md, docs/seeds.md, ...):\n" + string.Join("\n", found));
    }

    [Test]
    public void Every_cited_conventions_section_exists()
    {
        var sections = NumberedSection().Matches(Conventions).Select(m => int.Parse(m.Groups[1].Value)).ToHashSet();
        var citations = Lines.Value.SelectMany(l => SectionCitation().Matches(l.Text).Select(m => (Line: l, List: m.Groups[1].Value))).ToList();
        Assert.That(citations, Is.Not.Empty, "the code cites docs/conventions.md by section");
        var missing = citations.SelectMany(c => CitedSections(c.List).Where(s => !sections.Contains(s)).Select(s => $"{c.Line.Where}: section {s}")).ToList();
        Assert.That(missing, Is.Empty, "no such section in docs/conventions.md:\n" + string.Join("\n", missing));
    }

    [Test]
    public void Every_link_into_conventions_names_one_of_its_headings()
    {
        var anchors = Heading().Matches(Conventions).Select(m => Anchor(m.Groups[1].Value)).ToHashSet(StringComparer.Ordinal);
        var links = Lines.Value.SelectMany(l => AnchorLink().Matches(l.Text).Select(m => (Line: l, Anchor: m.Groups[1].Value)))
            .Concat(Lines.Value.Where(l => l.File == "docs/conventions.md")
                .SelectMany(l => Regex.Matches(l.Text, @"\]\(#([\w-]+)\)").Select(m => (Line: l, Anchor: m.Groups[1].Value))))
            .ToList();
        Assert.That(links, Is.Not.Empty);
        var broken = links.Where(k => !anchors.Contains(k.Anchor)).Select(k => $"{k.Line.Where}: #{k.Anchor}").ToList();
        Assert.That(broken, Is.Empty, "no such heading in docs/conventions.md:\n" + string.Join("\n", broken));
    }

    [Test]
    public void Every_source_key_in_brackets_is_in_the_conventions_legend()
    {
        string doc = Conventions;
        int sources = doc.IndexOf("\n## Sources", StringComparison.Ordinal);
        Assert.That(sources, Is.GreaterThan(0), "docs/conventions.md has a Sources section");
        var legend = TableFirstCell().Matches(doc[sources..]).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        var uses = Lines.Value.SelectMany(l => SourceKeys().Matches(l.Text)
            .SelectMany(m => m.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries)).Select(k => (Line: l, Key: k))).ToList();
        Assert.That(uses, Is.Not.Empty);
        var unknown = uses.Where(u => !legend.Contains(u.Key)).Select(u => $"{u.Line.Where}: [{u.Key}]").ToList();
        Assert.That(unknown, Is.Empty, "source keys missing from the legend of docs/conventions.md:\n" + string.Join("\n", unknown));
    }
}
