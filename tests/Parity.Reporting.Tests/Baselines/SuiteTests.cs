using System.Text.Json.Nodes;
using System.Xml.Linq;
using Parity.Backends.Reference;
using Parity.Harness;
using Parity.Specs;

namespace Parity.Reporting.Tests.Baselines;

/// <summary>
/// A regression suite of the small fixtures, approved on a 2-step run, verified whole and in 3 shards, the shards merged:
/// the same verdicts either way, one of them an error (a spec changed after its approval), every spec in exactly one shard.
/// </summary>
[NonParallelizable]
public sealed class SuiteTests
{
    private const int Steps = 2;
    private static readonly string[] Fixtures = ["synthetic-mlp-bn.json", "synthetic-layernorm-sgd.json", "synthetic-activations.json", "blobs-csv.json"];

    private TempDirectory _dir = null!;
    private string _baselines = "";
    private List<string> _specs = [];

    [OneTimeSetUp]
    public void ApproveEverySpec()
    {
        _dir = new TempDirectory("suite");
        _baselines = Path.Combine(_dir.Path, "reference-models");
        _specs = [.. Fixtures.Select(Repository.Fixture)];
        // One more spec, approved as written, then changed: its verification is an error (stale baseline).
        var changed = JsonNode.Parse(File.ReadAllText(Repository.Fixture("synthetic-shared-bn.json")))!.AsObject();
        string stale = Path.Combine(_dir.Path, "synthetic-shared-bn.json");
        File.WriteAllText(stale, changed.ToJsonString());
        _specs.Add(stale);
        foreach (string spec in _specs)
        {
            string run = Path.Combine(_dir.Path, "runs", Path.GetFileNameWithoutExtension(spec));
            RunSession.Execute(new RunRequest(SpecLoader.LoadFile(spec), spec, [ReferenceBackend.Float32Name], ReferenceBackend.Float64Name, run, Steps), StandardBackends.Create());
            Harness.Baselines.Approve(run, _baselines, force: false);
        }
        changed["optimizer"]!["lr"] = 0.0123;
        File.WriteAllText(stale, changed.ToJsonString());
    }

    [OneTimeTearDown]
    public void Remove() => _dir.Dispose();

    private static HashSet<string> Verdicts(SuiteResult suite) =>
        [.. suite.Entries.SelectMany(e => e.Checks.Select(c => $"{e.Scenario}/{c.Backend}: {c.Verdict}"))];

    [Test]
    public void Three_shards_merged_give_the_verdicts_of_the_unsharded_suite()
    {
        var whole = Suites.Verify(_specs, null, null, _baselines, StandardBackends.Create(), Path.Combine(_dir.Path, "whole"));
        var shardDirs = Enumerable.Range(1, 3).Select(k => Path.Combine(_dir.Path, $"shard-{k}")).ToList();
        var shards = shardDirs.Select((d, i) => Suites.Verify(_specs, new Shard(i + 1, 3), null, _baselines, StandardBackends.Create(), d)).ToList();
        var merged = Suites.Merge(shardDirs, Path.Combine(_dir.Path, "merged"));

        Assert.That(Verdicts(whole), Has.Count.EqualTo(10), "5 specs x 2 backends");
        Assert.That(Verdicts(whole), Does.Contain("synthetic-shared-bn/reference: Error"), "the changed spec's baseline is stale");
        Assert.That(Verdicts(whole).Count(v => v.EndsWith(": Agree", StringComparison.Ordinal)), Is.EqualTo(8));
        Assert.That(Verdicts(merged), Is.EquivalentTo(Verdicts(whole)));
        Assert.That(merged.Verdict, Is.EqualTo(whole.Verdict));
        Assert.That(merged.Shards, Is.EqualTo(new[] { "1/3", "2/3", "3/3" }));
        Assert.That(shards.SelectMany(s => s.Entries.Select(e => e.Spec)), Is.EquivalentTo(_specs), "every spec in exactly one shard");
        Assert.That(shards, Has.All.Matches<SuiteResult>(s => s.Entries.Count >= 1), "5 specs over 3 shards leave none empty");

        // The merged junit.xml counts what the unsharded one counts, and its links lead to the shards' run reports.
        var junit = XDocument.Load(Path.Combine(_dir.Path, "merged", "junit.xml")).Root!;
        var wholeJunit = XDocument.Load(Path.Combine(_dir.Path, "whole", "junit.xml")).Root!;
        foreach (string count in new[] { "tests", "failures", "errors" })
            Assert.That(junit.Attribute(count)!.Value, Is.EqualTo(wholeJunit.Attribute(count)!.Value), count);
        foreach (var entry in merged.Entries.Where(e => e.Run is not null))
            Assert.That(File.Exists(Path.Combine(_dir.Path, "merged", entry.Run!, "report.html")), entry.Scenario);
    }

    [Test]
    public void The_split_is_deterministic_and_balanced_by_cost()
    {
        var costs = new List<(string, double)> { ("a", 10), ("b", 9), ("c", 1), ("d", 1), ("e", 1) };
        // a to shard 1, b to 2, c to 2 (9 < 10), d to 1 (a tie goes to the lower shard), e to 2: 11 and 11.
        Assert.That(Suites.Select(costs, new Shard(1, 2)), Is.EqualTo(new[] { "a", "d" }));
        Assert.That(Suites.Select(costs, new Shard(2, 2)), Is.EqualTo(new[] { "b", "c", "e" }));
        var reordered = new List<(string, double)> { costs[4], costs[2], costs[0], costs[3], costs[1] };
        Assert.That(Suites.Select(reordered, new Shard(1, 2)), Is.EquivalentTo(new[] { "a", "d" }), "the split does not depend on the order given");
        Assert.That(Assert.Throws<UsageException>(() => Shard.Parse("4/3"))!.Message, Does.Contain("not K/N"));
    }

    [Test]
    public void A_missing_or_repeated_shard_is_refused_by_merge()
    {
        var dirs = Enumerable.Range(1, 3).Select(k => Path.Combine(_dir.Path, $"refuse-{k}")).ToList();
        var parts = Enumerable.Range(1, 3).Select(k => Suites.Verify([_specs[0]], new Shard(k, 3), null, _baselines, StandardBackends.Create(), dirs[k - 1])).ToList();
        Assert.That(parts.Select(p => p.Entries.Count), Is.EqualTo(new[] { 1, 0, 0 }));
        Assert.That(parts[1].Verdict, Is.EqualTo(Verdict.Agree), "a shard with nothing to do is not a failure of the suite");
        var missing = Assert.Throws<UsageException>(() => Suites.Merge([dirs[0], dirs[2]], Path.Combine(_dir.Path, "m1")))!;
        Assert.That(missing.Message, Does.Contain("shard 2/3 is missing"));
        var twice = Assert.Throws<UsageException>(() => Suites.Merge([dirs[0], dirs[0], dirs[1]], Path.Combine(_dir.Path, "m2")))!;
        Assert.That(twice.Message, Does.Contain("shard 1/3 is given twice"));
    }
}
