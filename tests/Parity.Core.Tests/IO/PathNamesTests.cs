using Parity.Specs;

namespace Parity.IO.Tests;

public sealed class PathNamesTests
{
    [TestCase("synthetic-mlp-bn")]
    [TestCase("seed002-injected-init+identity")]
    [TestCase("a.b_c-9")]
    [TestCase("_private")]
    public void A_scenario_name_is_an_identifier_that_becomes_its_own_folder(string name)
    {
        Assert.That(PathNames.ScenarioNameProblem(name), Is.Null);
        Assert.That(PathNames.Segment(name), Is.EqualTo(name));
        Assert.That(PathNames.ScenarioDirectory("out", name), Is.EqualTo(Path.Combine("out", name)));
    }

    // The names of the findings: each would have written outside out/ or crashed the CLI.
    [TestCase("..")]
    [TestCase(".")]
    [TestCase("../../escaped")]
    [TestCase("/some/abs/dir")]
    [TestCase("a/b")]
    [TestCase("a\\b")]
    [TestCase("a\0b")]
    [TestCase("x\nverdict: agree")]
    [TestCase("\u001b]0;pwned\u0007")]
    [TestCase(".hidden")]
    [TestCase("-rf")]
    [TestCase("")]
    [TestCase("modèle")]
    public void A_name_that_is_not_an_identifier_is_refused_at_its_json_path(string name)
    {
        Assert.That(PathNames.ScenarioNameProblem(name), Is.Not.Null);
        var e = Assert.Throws<SpecException>(() => PathNames.ScenarioDirectory("out", name))!;
        Assert.That(e.JsonPath, Is.EqualTo("$.name"));
        Assert.That(e.Message, Does.Not.Contain("\0").And.Not.Contain("\u001b").And.Not.Contain("\n"), "the name is quoted with escapes");
    }

    [Test]
    public void Two_hundred_cjk_characters_are_a_name_error_not_a_file_system_error()
    {
        Assert.That(PathNames.ScenarioNameProblem(new string('\u6771', 200)), Does.Contain("ASCII"));
        Assert.That(PathNames.ScenarioNameProblem(new string('a', 201)), Does.Contain("found 201 characters"));
    }

    [TestCase("..", "_.")]
    [TestCase(".", "_")]
    [TestCase("", "_")]
    [TestCase("torchsharp@float64", "torchsharp_float64")]
    [TestCase("../../x", "_._.._x")]
    [TestCase("/etc", "_etc")]
    [TestCase("-flag", "_flag")]
    public void A_display_name_maps_onto_one_directory_name(string name, string expected) =>
        Assert.That(PathNames.Segment(name), Is.EqualTo(expected));

    [Test]
    public void A_long_display_name_keeps_its_start_and_a_hash_of_the_whole()
    {
        string a = PathNames.Segment(new string('v', 300) + "1"), b = PathNames.Segment(new string('v', 300) + "2");
        Assert.That(a, Has.Length.EqualTo(PathNames.MaxLength));
        Assert.That(a, Is.Not.EqualTo(b));
        Assert.That(a, Does.StartWith(new string('v', 150)));
    }

    [TestCase("..")]
    [TestCase("../..")]
    [TestCase("/abs")]
    [TestCase("a/../../b")]
    public void Under_stays_directly_below_its_root(string name)
    {
        using var root = new Parity.Tests.TempDirectory();
        string path = PathNames.Under(root.Path, name);
        Assert.That(Path.GetDirectoryName(Path.GetFullPath(path)), Is.EqualTo(Path.GetFullPath(root.Path)));
    }
}
