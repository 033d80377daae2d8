using Parity.Backends;
using Parity.Diagnostics;
using Parity.Harness.Seeds;
using Parity.Specs;

namespace Parity.Harness.Tests;

/// <summary>Fast versions of the seed replications (docs/seeds.md): synthetic data or small Fashion-MNIST subsets, seconds each.</summary>
[NonParallelizable]
public class SeedsTests
{
    private static BackendRegistry Registry() => StandardBackends.Create(null);

    private static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "parity-seeds-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static void RequireFashionMnist() =>
        Assert.That(File.Exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"), Is.True,
            "Fashion-MNIST is missing: run scripts/setup (Debian package dataset-fashion-mnist)");

    [Test]
    public void Removing_normalization_drops_the_batchnorm_layers_and_their_calls_and_gives_the_linear_layers_zero_biases()
    {
        var spec = SpecVariant.FromFile("cs231n-bn.json").Named("plain").WithoutNormalization().Load();

        Assert.That(spec.Model.Layers.OfType<BatchNormSpec>(), Is.Empty);
        Assert.That(spec.Model.Calls.Select(c => c.Layer), Is.EqualTo(new[] { "l1", "relu", "l2", "relu", "l3", "relu", "l4" }));
        Assert.That(spec.Model.Layers.OfType<LinearSpec>().All(l => l.Bias && l.BiasInit.Kind == "zeros"), Is.True);
    }

    [Test]
    public void Layernorm_replaces_batchnorm_with_the_same_width_and_eps_and_weight_scale_sets_every_linear_std()
    {
        var spec = SpecVariant.FromFile("cs231n-bn.json").Named("ln").BatchNormToLayerNorm().WeightScale(1e-3).Load();

        var norms = spec.Model.Layers.OfType<LayerNormSpec>().ToList();
        Assert.That(norms.Select(n => (n.Name, n.Features, n.Eps)), Is.EqualTo(new[] { ("bn1", 10, 1e-5), ("bn2", 10, 1e-5), ("bn3", 10, 1e-5) }));
        Assert.That(spec.Model.Layers.OfType<LinearSpec>().Select(l => (l.WeightInit.Kind, l.WeightInit.Std)).Distinct().Single(), Is.EqualTo(("normal", 1e-3)));
    }

    [Test]
    public void A_variant_that_breaks_the_spec_rules_names_the_variant_and_the_json_path()
    {
        var e = Assert.Throws<UsageException>(() => SpecVariant.FromFile("cs231n-bn.json").Named("bad").BatchSize(0).Load());

        Assert.That(e!.Message, Does.Contain("variant 'bad'").And.Contain("batchSize"));
    }

    [Test]
    public void Shared_batchnorm_in_miniature_blends_both_call_sites_statistics_and_is_diagnosed()
    {
        var spec = SpecVariant.FromFile("synthetic-shared-bn.json").Steps(30).Load();

        var result = Study.RunArm(new StudyArm("shared", spec, null, ["reference-f32"]), Registry(), TempDir());

        Assert.That(result.Status, Is.EqualTo("completed"));
        Assert.That(result.Has(CauseIds.SharedStatefulLayer), Is.True, string.Join("; ", result.Findings.Select(f => f.Cause)));
        var finding = result.Findings.First(f => f.Cause == CauseIds.SharedStatefulLayer);
        Assert.That(finding.Evidence["updatesPerStep"], Is.EqualTo("2 per step"));
        // The running statistics sit between the two sites' batch statistics: nearer their average than either site.
        var checks = result.RunningStatistics.Where(c => c.Instance == "bn").ToDictionary(c => c.Call);
        Assert.That(checks.Keys, Is.EquivalentTo(new[] { "bn#1", "bn#2", "mean of sites" }));
        Assert.That(checks["mean of sites"].MeanDistance, Is.LessThan(Math.Min(checks["bn#1"].MeanDistance, checks["bn#2"].MeanDistance)));
        Assert.That(result.EvalAccuracy.Steps, Is.EqualTo(new[] { 10, 20, 30 }));
    }

    [Test]
    public void A_net_with_one_instance_per_call_site_is_not_diagnosed_as_shared()
    {
        var spec = SpecVariant.FromFile("synthetic-mlp-bn.json").Steps(10).Load();

        var result = Study.RunArm(new StudyArm("separate", spec, null, ["reference-f32"]), Registry(), TempDir());

        Assert.That(result.Has(CauseIds.SharedStatefulLayer), Is.False);
        Assert.That(result.RunningStatistics.Select(c => c.Call), Does.Not.Contain("mean of sites"));
    }

    private static IReadOnlyList<StudyArm> TwoArms() =>
    [
        new StudyArm("shared", SpecVariant.FromFile("synthetic-shared-bn.json").Steps(30).Load(), null, ["reference-f32"]),
        new StudyArm("separate", SpecVariant.FromFile("synthetic-mlp-bn.json").Steps(30).Load(), null, ["reference-f32"]),
    ];

    private static string TraceHash(ArmResult arm) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(arm.Directory, "traces", "reference-f32", "tensors.bin"))));

    [Test]
    public void Arms_run_at_once_give_the_same_results_and_traces_as_one_after_another()
    {
        string dir = TempDir();

        var alone = Study.Run(TwoArms(), Registry(), Path.Combine(dir, "sequential"), atOnce: 1);
        var atOnce = Study.Run(TwoArms(), Registry(), Path.Combine(dir, "concurrent"), atOnce: 2);

        Assert.That(Study.ArmsAtOnce(TwoArms(), Registry()), Is.EqualTo(Math.Min(2, Environment.ProcessorCount)), "the reference allows concurrent sessions");
        Assert.That(atOnce.Select(a => a.Label), Is.EqualTo(new[] { "shared", "separate" }), "results come back in arm order");
        for (int i = 0; i < alone.Count; i++)
        {
            Assert.That(atOnce[i].Status, Is.EqualTo(alone[i].Status));
            Assert.That(atOnce[i].Steps, Is.EqualTo(alone[i].Steps));
            foreach (var (a, b) in new[] { (alone[i].EvalAccuracy, atOnce[i].EvalAccuracy), (alone[i].EvalLoss, atOnce[i].EvalLoss), (alone[i].TrainAccuracy, atOnce[i].TrainAccuracy), (alone[i].TrainLoss, atOnce[i].TrainLoss) })
            {
                Assert.That(b.Steps, Is.EqualTo(a.Steps));
                Assert.That(b.Values, Is.EqualTo(a.Values), "bit-identical values, not close ones");
            }
            Assert.That(atOnce[i].RunningStatistics.Select(c => (c.Instance, c.Call, c.MeanDistance, c.VarianceDistance)),
                Is.EqualTo(alone[i].RunningStatistics.Select(c => (c.Instance, c.Call, c.MeanDistance, c.VarianceDistance))));
            Assert.That(atOnce[i].Findings.Select(f => (f.Cause, f.Summary)), Is.EqualTo(alone[i].Findings.Select(f => (f.Cause, f.Summary))));
            Assert.That(TraceHash(atOnce[i]), Is.EqualTo(TraceHash(alone[i])), $"{alone[i].Label}: tensors.bin");
        }
    }

    [Test]
    public void An_arm_that_throws_lets_the_others_finish_and_then_rethrows()
    {
        string dir = TempDir();
        var arms = TwoArms().ToList();
        arms[0] = arms[0] with { Backends = ["no-such-backend"] };

        Assert.Throws<UsageException>(() => Study.Run(arms, Registry(), dir, atOnce: 2));

        Assert.That(File.Exists(Path.Combine(dir, "synthetic-mlp-bn", "report.json")), Is.True, "the other arm ran to its report");
    }

    [Test]
    public void Progress_of_arms_run_at_once_goes_arm_by_arm_each_labelled()
    {
        string dir = TempDir();
        var seen = new List<string>();
        var progress = new Recorder(seen);

        Study.Run(TwoArms(), Registry(), dir, progress, atOnce: 2);

        var labels = seen.Select(t => t.Split(", ")[^1]).ToList();
        Assert.That(labels, Has.Some.EqualTo("shared").And.Some.EqualTo("separate"));
        Assert.That(labels.SkipWhile(l => l == "shared").All(l => l == "separate"), Is.True, string.Join(" | ", labels));
    }

    private sealed class Recorder(List<string> tasks) : IProgress<Running.RunProgress>
    {
        public void Report(Running.RunProgress value)
        {
            lock (tasks) tasks.Add(value.Task ?? "");
        }
    }

    [Test]
    public void Seed001_in_miniature_names_the_slow_warmup_and_the_update_op_that_never_ran()
    {
        RequireFashionMnist();
        SpecVariant Small(string name, double momentum) =>
            SpecVariant.FromFile("seed001-warmup.json").Named(name).Subset(2000, 500).Steps(60).EvalEvery(10).BatchNormMomentum(momentum);
        string dir = TempDir();

        var slow = Study.RunArm(new StudyArm("slow", Small("slow", 0.001).Load(), null, ["reference-f32"]), Registry(), Path.Combine(dir, "slow"));
        var frozen = Study.RunArm(new StudyArm("frozen", Small("frozen", 0).Load(), null, ["reference-f32"], DiagnoseAs: Small("frozen", 0.05).Load()),
            Registry(), Path.Combine(dir, "frozen"));
        var fast = Study.RunArm(new StudyArm("fast", Small("fast", 0.05).Load(), null, ["reference-f32"]), Registry(), Path.Combine(dir, "fast"));

        Assert.That(slow.Has(CauseIds.SlowRunningStatsWarmup), Is.True, string.Join("; ", slow.Findings.Select(f => f.Summary)));
        Assert.That(slow.Has(CauseIds.RunningStatsNotUpdated), Is.False);
        Assert.That(frozen.Has(CauseIds.RunningStatsNotUpdated), Is.True, string.Join("; ", frozen.Findings.Select(f => f.Summary)));
        Assert.That(fast.Has(CauseIds.RunningStatsNotUpdated), Is.False);
        Assert.That(fast.TrainAccuracy.Values, Is.EqualTo(slow.TrainAccuracy.Values), "running statistics do not feed back into training");
        Assert.That(fast.EvalAccuracy.Values[0] - slow.EvalAccuracy.Values[0], Is.GreaterThan(SeedReplications.CatchUpGap), "decay 0.999 lags at the same weights");
        Assert.That(SeedReplications.CatchUpStep(slow, fast), Is.Null.Or.GreaterThan(10));
    }

    [Test]
    public void The_momentum_0_run_alone_is_not_flagged_because_nothing_was_asked_to_update()
    {
        RequireFashionMnist();
        var spec = SpecVariant.FromFile("seed001-warmup.json").Named("frozen").Subset(1000, 200).Steps(10).EvalEvery(10).BatchNormMomentum(0).Load();

        var result = Study.RunArm(new StudyArm("frozen", spec, null, ["reference-f32"]), Registry(), TempDir());

        Assert.That(result.Has(CauseIds.RunningStatsNotUpdated), Is.False, "without DiagnoseAs the spec itself says momentum 0");
    }

    [TestCase("l1.weight", 1e-4)]
    [TestCase("l4.bias", 1e-8)]
    [TestCase("bn1.gamma", 1e-8)]
    [TestCase("input", 1e-7)]
    public void Gradient_check_tensors_are_judged_by_cs231ns_range_for_their_role(string tensor, double upper)
    {
        Assert.That(SeedReplications.ExpectedRange(tensor).Upper, Is.EqualTo(upper));
    }

    [Test]
    public void Seed002_runs_the_identity_metamorphically_with_both_init_modes_and_writes_one_page()
    {
        string dir = TempDir();

        var outcome = SeedReplications.Run("002", new SeedOptions(["reference", "reference-f32"], Quick: true, Steps: 18), Registry(), dir);

        Assert.That(outcome.Reproduced, Is.True, outcome.Result);
        Assert.That(outcome.Result, Does.Contain("changed nothing in 4 of 4 completed backend runs (4 bit-identical"));
        foreach (string file in new[] { "index.html", "summary.md", "results.json", "injected/metamorphic.json", "framework/metamorphic.json" })
            Assert.That(File.Exists(Path.Combine(dir, file)), Is.True, file);
        Assert.That(File.ReadAllText(Path.Combine(dir, "summary.md")), Does.Contain("| injected | reference |").And.Contain("| framework | reference-f32 |"));
        // The seed's figure: per-epoch kernel sums (18 steps = 2 epochs of 9), per backend and Dense layer, equal with and
        // without the identity.
        using var results = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "results.json")));
        var sums = results.RootElement.GetProperty("kernelSums").EnumerateArray().ToList();
        Assert.That(sums, Has.Count.EqualTo(4));
        string Series(System.Text.Json.JsonElement e) => e.GetProperty("series").GetRawText();
        var series = sums[0].GetProperty("series").EnumerateArray().ToList();
        Assert.That(series.Select(x => x.GetProperty("label").GetString()),
            Is.EqualTo(new[] { "reference dense", "reference dense_1", "reference-f32 dense", "reference-f32 dense_1" }));
        Assert.That(series[0].GetProperty("x").EnumerateArray().Select(x => x.GetDouble()), Is.EqualTo(new[] { 1.0, 2.0 }));
        Assert.That(Series(sums[1]), Is.EqualTo(Series(sums[0])), "injected init: the identity changes no kernel sum");
    }

    [Test]
    public void An_unknown_seed_is_a_usage_error_listing_the_seeds()
    {
        var e = Assert.Throws<UsageException>(() => SeedReplications.Run("004", new SeedOptions(["reference-f32"], true), Registry(), TempDir()));

        Assert.That(e!.Message, Does.Contain("000, 001, 002, 003"));
    }
}
