using NUnit.Framework.Internal;
using Parity.NUnit;
using Parity.Specs;

namespace Parity.Cli.Tests;

/// <summary>The README's command reference is the one generated from the command definitions; ParityAssert attaches its report.</summary>
public sealed class CliReferenceTests
{
    [Test]
    public void The_readme_command_table_is_the_one_generated_from_the_command_definitions()
    {
        string readme = File.ReadAllText(Path.Combine(Harness.RepoPaths.Root, "README.md"));
        int start = readme.IndexOf(CliReference.Start, StringComparison.Ordinal);
        int end = readme.IndexOf(CliReference.End, StringComparison.Ordinal);
        Assert.That(start >= 0 && end > start, Is.True, $"README.md lacks the markers {CliReference.Start} ... {CliReference.End}");
        string actual = readme[(start + CliReference.Start.Length)..end].Trim('\n');
        string expected = CliReference.Markdown(CommandLine.Root()).Trim('\n');

        Assert.That(actual, Is.EqualTo(expected),
            $"README.md's command table differs from the command definitions; run scripts/cli-table, or paste this between the markers:\n\n{expected}\n");
    }

    [Test]
    public void The_table_has_a_row_for_every_command_and_option_and_none_for_hidden_ones()
    {
        string table = CliReference.Markdown(CommandLine.Root());
        Assert.That(table, Does.Contain("| `run` |").And.Contain("|  | `--steps-range A..B` |").And.Contain("| `scenario` (alias `seed`) |"));
        Assert.That(table, Does.Contain("| every command | `--verbose` |").And.Contain("| every command | `--version` |"));
        Assert.That(table, Does.Not.Contain("cli-reference"));
    }

    [Test]
    public void ParityAssert_attaches_the_report_files_of_a_kept_run_to_the_test_result()
    {
        var spec = SpecLoader.LoadFile(CliRunner.Fixture("synthetic-mlp-bn.json"));
        ParityAssert.Agree(spec, new ParityOptions(Steps: 1, KeepRunDirectory: true), "reference-f32");

        var attached = TestExecutionContext.CurrentContext.CurrentResult.TestAttachments.ToList();
        try
        {
            Assert.That(attached.Select(a => Path.GetFileName(a.FilePath)), Is.EquivalentTo(new[] { "report.html", "report.json", "junit.xml" }));
            Assert.That(attached.Select(a => a.Description), Has.Some.Contains("open in a browser"));
            Assert.That(attached.All(a => File.Exists(a.FilePath)), Is.True);
        }
        finally
        {
            if (attached.Count > 0) Directory.Delete(Path.GetDirectoryName(attached[0].FilePath)!, recursive: true);
        }
    }
}
