using System.Diagnostics;
using System.Globalization;
using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Diagnostics;
using Parity.IO;
using Parity.Planning;
using Parity.Running;
using Parity.Tracing;

namespace Parity.Harness.Seeds;

/// <summary>How a seed replication runs.</summary>
/// <param name="Backends">Backends for the training runs (the first is the reference of curves and comparisons). Seed 002 runs
/// each of them metamorphically; seeds 001 and 003 use only the first (they are about one framework's behaviour).</param>
/// <param name="Quick">The short version (<c>parity demo</c>, tests): fewer steps, fewer sweep points.</param>
/// <param name="Steps">Training steps instead of the replication's schedule (seeds 000 to 002).</param>
public sealed record SeedOptions(IReadOnlyList<string> Backends, bool Quick, int? Steps = null);

/// <summary>What a seed replication produced.</summary>
/// <param name="Id">000 to 003.</param>
/// <param name="Title">Page title.</param>
/// <param name="Shows">What the replication shows.</param>
/// <param name="Result">The result in one line.</param>
/// <param name="Directory">The report directory (index.html, summary.md, results.json, each run's report).</param>
/// <param name="Reproduced">True when the replication shows what the seed reported and the harness names the cause.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record SeedOutcome(string Id, string Title, string Shows, string Result, string Directory, bool Reproduced, double Seconds);

/// <summary>
/// The four seed documents (docs/seeds.md) reproduced end to end: each builds its runs from fixtures, runs them,
/// and writes one report directory with a page (index.html, summary.md) and results.json.
/// </summary>
public static class SeedReplications
{
    /// <summary>The seed ids, in order.</summary>
    public static IReadOnlyList<string> Ids { get; } = ["000", "001", "002", "003"];

    /// <summary>
    /// Each scenario's name, by id: what it is, so "000" is not read as an RNG seed. <c>parity scenario</c> takes either;
    /// the id stays the key of fixtures, scripts and report folders.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Names { get; } = new Dictionary<string, string>
    {
        ["000"] = "shared-batchnorm",
        ["001"] = "running-statistics",
        ["002"] = "identity-layer",
        ["003"] = "cs231n-batchnorm",
    };

    /// <summary>The id of the scenario named by <paramref name="idOrName"/> (its id or its name); a usage error listing them otherwise.</summary>
    public static string Resolve(string idOrName)
    {
        ArgumentNullException.ThrowIfNull(idOrName);
        if (Names.ContainsKey(idOrName)) return idOrName;
        foreach (var (id, name) in Names)
            if (string.Equals(name, idOrName, StringComparison.OrdinalIgnoreCase)) return id;
        throw new UsageException($"unknown scenario '{idOrName}': use one of {string.Join(", ", Ids.Select(i => $"{Names[i]} ({i})"))}");
    }

    /// <summary>How outputs name scenario <paramref name="id"/> before its title, e.g. <c>Scenario 000 (shared-batchnorm): one BatchNormalization shared by two layers (Chainer)</c>.</summary>
    public static string Heading(string id, string what) => $"Scenario {id} ({Names[id]}): {what}";

    /// <summary>Runs seed <paramref name="id"/> into <paramref name="outDirectory"/>.</summary>
    public static SeedOutcome Run(string id, SeedOptions options, BackendRegistry registry, string outDirectory, IProgress<RunProgress>? progress = null)
    {
        if (options.Backends.Count == 0) throw new UsageException("give at least one backend");
        var clock = Stopwatch.StartNew();
        var (page, reproduced) = id switch
        {
            "000" => Seed000(options, registry, outDirectory, progress),
            "001" => Seed001(options, registry, outDirectory, progress),
            "002" => Seed002(options, registry, outDirectory, progress),
            "003" => Seed003(options, registry, outDirectory, progress),
            _ => throw new UsageException($"unknown scenario '{id}': use one of {string.Join(", ", Ids)}"),
        };
        return new SeedOutcome(id, page.Title, page.Shows, page.Result, outDirectory, reproduced, clock.Elapsed.TotalSeconds);
    }

    // ---- Seed 000: one batchnorm instance called after both hidden layers (Chainer) ----

    /// <summary>Steps of seed 000's cross-backend agreement check against the float64 reference (quick, full).</summary>
    public static (int Quick, int Full) Seed000AgreementSteps { get; } = (20, 60);

    private static (SeedPage, bool) Seed000(SeedOptions o, BackendRegistry registry, string dir, IProgress<RunProgress>? progress)
    {
        // The study's long runs capture the first 20 steps (what its detectors need) and the last; the fixture captures
        // more, for step-checking runs of it.
        SpecVariant Variant(string fixture)
        {
            var v = SpecVariant.FromFile(fixture).CaptureFirst(20);
            if (o.Quick) v.Steps(o.Steps ?? 300).EvalEvery(30);
            else if (o.Steps is int s) v.Steps(s);
            return v;
        }
        string[] fixtures = ["seed000-shared-bn.json", "seed000-separate-bn.json"];
        // Every backend trains both models on the whole schedule alone (its own curves and diagnosis, memory bounded by
        // streaming); agreement between backends is judged separately below, against the float64 reference.
        var arms = new List<StudyArm>();
        foreach (string backend in o.Backends)
        {
            foreach (string fixture in fixtures)
            {
                string label = (fixture.Contains("shared", StringComparison.Ordinal) ? "shared" : "separate") + (o.Backends.Count > 1 ? $" ({backend})" : "");
                var v = Variant(fixture);
                if (o.Backends.Count > 1) v.Named($"{(string)v.Load().Name}-{RunSession.Sanitize(backend)}");
                arms.Add(new StudyArm(label, v.Load(), v.Save(Path.Combine(dir, "specs")), [backend]));
            }
        }
        var results = Study.Run(arms, registry, dir, progress);
        ArmResult shared = results[0], separate = results[1];

        // Agreement: the float32 backends against the float64 reference with the float32 noise envelopes (docs/tolerances.md);
        // float32 against float32 has no envelope to judge by, so the long runs above are not compared with each other.
        var agreement = new List<IReadOnlyList<string>>();
        var others = o.Backends.Where(b => b != ReferenceBackend.Float64Name).ToList();
        int agreementSteps = o.Quick ? Seed000AgreementSteps.Quick : Seed000AgreementSteps.Full;
        if (o.Backends.Count > 1 && others.Count > 0)
        {
            foreach (string fixture in fixtures)
            {
                var v = Variant(fixture);
                var report = RunSession.Execute(new RunRequest(v.Load(), v.Save(Path.Combine(dir, "specs")), others, ReferenceBackend.Float64Name,
                    PathNames.ScenarioDirectory(Path.Combine(dir, "agreement"), v.Load().Name), agreementSteps), registry, progress);
                foreach (var c in report.Comparisons)
                    agreement.Add([(string)v.Load().Name, c.Backend, c.Against, c.Verdict.Name(), c.StepsCompared.ToString(CultureInfo.InvariantCulture),
                        c.FirstDivergence is null ? "" : $"step {c.FirstDivergence.Step} {c.FirstDivergence.Kind}:{c.FirstDivergence.Site}",
                        string.Join(", ", report.Findings.Where(f => f.Backend == c.Backend).Select(f => f.Cause).Distinct())]);
            }
        }

        var page = new SeedPage(Heading("000", "one BatchNormalization shared by two layers (Chainer)"),
            "A Chainer user called ONE L.BatchNormalization after both hidden layers of a 784-100-100-10 MLP: validation accuracy < 0.80 against 0.98 with two instances (MNIST). " +
            "Here: the same setup on Fashion-MNIST (60k/10k, Adam lr 0.01, batch 1000, momentum 0.1, eps 1e-3), both models, eval accuracy per epoch, the shared instance's running statistics against each call site's batch statistics, and the diagnosis.");
        var finding = shared.Findings.FirstOrDefault(f => f.Cause == CauseIds.SharedStatefulLayer);
        double gap = separate.FinalEvalAccuracy - shared.FinalEvalAccuracy;
        page.Result = $"after {shared.Steps} steps on {o.Backends[0]} eval accuracy {SeedPage.Number(shared.FinalEvalAccuracy)} (shared, train-mode batch accuracy {SeedPage.Number(shared.FinalTrainAccuracy)}) vs {SeedPage.Number(separate.FinalEvalAccuracy)} (separate): gap {SeedPage.Number(gap)}; " +
            (finding is null ? "shared-stateful-layer NOT diagnosed" : $"shared-stateful-layer diagnosed (running statistics updated {finding.Evidence.GetValueOrDefault("updatesPerStep")})") +
            (agreement.Count == 0 ? "" : $"; against the float64 reference over {agreementSteps} steps: {string.Join(", ", agreement.Select(r => $"{r[1]} {r[3]} ({r[0].Replace("seed000-", "", StringComparison.Ordinal)})"))}");
        page.Tables.Add(ArmTable("Both models (eval = the 10k test set with running statistics; train accuracy = the last batch in train mode):", results));
        page.Tables.Add(RunningStatisticsTable(results));
        page.Tables.Add(FindingsTable(results));
        if (agreement.Count > 0)
            page.Tables.Add(new Table($"Cross-backend agreement over the first {agreementSteps} steps, each backend against the float64 reference:",
                ["model", "backend", "against", "verdict", "steps compared", "first divergence", "findings"], agreement));
        page.Figures.Add(new Figure("Eval accuracy per epoch", "epoch", "eval accuracy", results.Select(a => Epochs(a.Label, a.EvalAccuracy, 60)).ToList()));
        page.Figures.Add(new Figure("Train-mode vs eval-mode accuracy", "epoch", "accuracy",
            results.Take(2).SelectMany(a => new[] { Epochs(a.Label + " eval", a.EvalAccuracy, 60), Epochs(a.Label + " train batch", a.TrainAccuracy, 60) }).ToList()));
        AddRunLinks(page, results, dir);
        foreach (string fixture in fixtures.Where(_ => agreement.Count > 0))
        {
            string name = Path.GetFileNameWithoutExtension(fixture);
            page.Links.Add(($"{name}: agreement report", Path.Combine("agreement", name, "report.html")));
        }
        page.Notes.Add("The running-statistics table compares, at the last traced step, the running mean/variance each instance holds with the batch statistics each of its call sites normalized with: the shared instance sits between l1's and l2's statistics (a blend), so eval mode normalizes both layers with statistics that fit neither.");
        page.Notes.Add("Capture policy: full tensors on steps 1-20 (the detector checks each step's update against the two call sites) and the last step; scalars on every step; evaluation every 60 steps (one epoch). Traces stream to disk, so memory stays bounded over 6,000 steps.");
        page.Write(dir, new { seed = "000", arms = results, agreement });
        bool reproduced = finding is not null && gap > 0 && separate.Status == "completed" && shared.Status == "completed";
        return (page, reproduced);
    }

    // ---- Seed 001: slim batch norm, decay 0.999 vs 0.95, and update ops that never run ----

    private static (SeedPage, bool) Seed001(SeedOptions o, BackendRegistry registry, string dir, IProgress<RunProgress>? progress)
    {
        string[] backend = [o.Backends[0]];
        SpecVariant Base()
        {
            var v = SpecVariant.FromFile("seed001-warmup.json");
            if (o.Quick) v.Steps(o.Steps ?? 200).EvalEvery(10);
            else if (o.Steps is int s) v.Steps(s);
            return v;
        }
        StudyArm Arm(string label, string name, double momentum, double? intended = null)
        {
            var v = Base().Named(name).BatchNormMomentum(momentum);
            var arm = new StudyArm(label, v.Load(), v.Save(Path.Combine(dir, "specs")), backend);
            return intended is double m ? arm with { DiagnoseAs = Base().Named(name).BatchNormMomentum(m).Load() } : arm;
        }
        // The notebook's own optimizer: TF1's AdagradOptimizer (accumulator 0.1, no eps) under
        // tf.train.exponential_decay(0.1, global_step, 1000, 0.95, staircase=True), with decay 0.95.
        StudyArm AdagradArm()
        {
            var v = Base().Named("seed001-adagrad-staircase").BatchNormMomentum(0.05).Optimizer(
                """{ "type": "adagrad", "lr": 0.1, "initialAccumulator": 0.1, "eps": 0, "schedule": { "type": "exponential", "decaySteps": 1000, "rate": 0.95, "staircase": true } }""");
            return new StudyArm("Adagrad (TF1: accumulator 0.1, no eps), lr 0.1 x 0.95 every 1000 updates (staircase), decay 0.95", v.Load(), v.Save(Path.Combine(dir, "specs")), backend);
        }
        var arms = Study.Run(
        [
            Arm("decay 0.999 (momentum 0.001)", "seed001-decay-0.999", 0.001),
            Arm("decay 0.95 (momentum 0.05)", "seed001-decay-0.95", 0.05),
            // TF1's update-ops pitfall [T1]: the user asked for decay 0.95, but the moving-average op never ran, which is
            // exactly momentum 0 (running statistics stay at 0 and 1). The detectors judge the trace against what the user asked for.
            Arm("decay 0.95, update ops never run", "seed001-no-update-ops", 0, intended: 0.05),
            AdagradArm(),
        ], registry, dir, progress);
        var page = new SeedPage(Heading("001", "batch-norm running statistics that warm up slowly or never update (TF-slim)"),
            "The TF-slim notes behind it: with slim's default decay 0.999 the moving statistics need ~1000 steps to warm up (use 0.95 on small data), and they only update when the train op runs the update ops. " +
            "Here: a 784-100-100-10 batchnorm MLP on a Fashion-MNIST subset, eval accuracy (running statistics) over steps for decay 0.999 and 0.95, and a run whose update op never runs; each diagnosed by its cause id.");
        bool slowFound = arms[0].Has(CauseIds.SlowRunningStatsWarmup), frozenFound = arms[2].Has(CauseIds.RunningStatsNotUpdated);
        // Running statistics never feed back into training (train mode normalizes with batch statistics), so the three runs
        // have the same weights at every step: their eval accuracies differ only by the running statistics.
        var deficit = arms[0].EvalAccuracy.Values.Zip(arms[1].EvalAccuracy.Values, (slow, fast) => fast - slow).ToList();
        int? catchUp = CatchUpStep(arms[0], arms[1]);
        bool lagsFirst = deficit.Count > 0 && deficit[0] > CatchUpGap && !arms[1].Has(CauseIds.RunningStatsNotUpdated);
        int first = arms[0].EvalAccuracy.Steps.Count > 0 ? arms[0].EvalAccuracy.Steps[0] : 0;
        page.Result = $"after {arms[0].Steps} steps eval accuracy {SeedPage.Number(arms[0].FinalEvalAccuracy)} (decay 0.999), {SeedPage.Number(arms[1].FinalEvalAccuracy)} (decay 0.95), {SeedPage.Number(arms[2].FinalEvalAccuracy)} (never updated), same weights; " +
            $"decay 0.999 trails 0.95 by {SeedPage.Number(deficit.Count > 0 ? deficit[0] : double.NaN)} at step {first} and {(catchUp is int c ? $"stays within {CatchUpGap} from step {c}" : $"has not caught up (within {CatchUpGap}) by step {arms[0].Steps}")}; " +
            $"{Found(slowFound, CauseIds.SlowRunningStatsWarmup)} on decay 0.999, {Found(frozenFound, CauseIds.RunningStatsNotUpdated)} on the frozen run; " +
            $"the notebook's Adagrad (staircase schedule) ends at eval accuracy {SeedPage.Number(arms[3].FinalEvalAccuracy)}";
        page.Tables.Add(ArmTable("The first three runs: same data, same initial weights (and, since running statistics do not feed back into training, the same weights at every step); the last: the notebook's Adagrad under its staircase schedule:", arms));
        var sample = Enumerable.Range(0, deficit.Count).Where(i => i % Math.Max(1, deficit.Count / 10) == 0 || i == deficit.Count - 1).ToList();
        page.Tables.Add(new Table("Eval accuracy at the same weights, by running-statistics momentum:",
            ["step", "decay 0.999", "decay 0.95", "never updated", "0.95 minus 0.999", "initial statistics' weight left (0.999, 0.95)"],
            sample.Select(i => (IReadOnlyList<string>)[arms[0].EvalAccuracy.Steps[i].ToString(CultureInfo.InvariantCulture), SeedPage.Number(arms[0].EvalAccuracy.Values[i]),
                SeedPage.Number(arms[1].EvalAccuracy.Values[i]), SeedPage.Number(arms[2].EvalAccuracy.Values[i]), SeedPage.Number(deficit[i]),
                $"{SeedPage.Number(Math.Pow(0.999, arms[0].EvalAccuracy.Steps[i]))}, {SeedPage.Number(Math.Pow(0.95, arms[0].EvalAccuracy.Steps[i]))}"]).ToList()));
        page.Tables.Add(FindingsTable(arms));
        page.Figures.Add(new Figure("Eval accuracy (running statistics) over steps", "step", "eval accuracy",
            arms.Select(a => new PlotSeries(a.Label, a.EvalAccuracy.Steps.Select(s => (double)s).ToList(), a.EvalAccuracy.Values)).Append(
                new PlotSeries("train-mode batch accuracy (decay 0.95)", arms[1].TrainAccuracy.Steps.Select(s => (double)s).ToList(), arms[1].TrainAccuracy.Values)).ToList()));
        AddRunLinks(page, arms, dir);
        page.Notes.Add($"With momentum m the initial running statistics keep a weight (1 - m)^t after t steps: 0.999^t falls below 5% only after {Math.Ceiling(Math.Log(0.05) / Math.Log(0.999))} steps, 0.95^t after {Math.Ceiling(Math.Log(0.05) / Math.Log(0.95))}. Evaluation every {(first > 0 ? first : 0)} steps.");
        page.Notes.Add("The Adagrad run is the notebook's optimizer as TF1 runs it: the accumulator starts at 0.1, there is no eps, and the rate is 0.1 for updates 0-999, 0.095 for 1000-1999 and so on (the staircase counts optimizer updates from 0); a run of 1000 steps or fewer never leaves 0.1.");
        page.Notes.Add("The frozen run is the spec with momentum 0 (the honest way to say the update op never ran); it is diagnosed against the spec the user wrote (decay 0.95), as a harness would judge a TF1 trace whose moving statistics never moved.");
        page.Write(dir, new { seed = "001", arms });
        return (page, slowFound && frozenFound && lagsFirst);
    }

    // ---- Seed 002: Activation('linear') inserted after a Dense layer (tf.keras 1.14) ----

    private static (SeedPage, bool) Seed002(SeedOptions o, BackendRegistry registry, string dir, IProgress<RunProgress>? progress)
    {
        var reports = new List<MetamorphicReport>();
        foreach (string mode in new[] { "injected", "framework" })
        {
            var v = SpecVariant.FromFile("seed002-no-identity.json").Named($"seed002-{mode}-init").InitMode(mode);
            string path = v.Save(Path.Combine(dir, "specs"));
            reports.Add(Metamorphic.Execute(v.Load(), path, o.Backends, registry, Path.Combine(dir, mode), o.Steps ?? (o.Quick ? 45 : null), progress: progress));
        }
        var page = new SeedPage(Heading("002", "an identity layer that changed training (tf.keras, TF 1.14)"),
            "A Stack Overflow user saw training change after inserting Activation('linear') after a Dense layer. Here: the 12-8-12 net run metamorphically (an identity inserted after every linear call) in every backend, " +
            "with injected initial weights and with each framework's own seeded initializers; each backend is compared with itself.");
        var rows = new List<IReadOnlyList<string>>();
        int completed = 0, identical = 0, rounding = 0;
        foreach (var r in reports)
        {
            foreach (var b in r.Backends)
            {
                rows.Add([r.InitMode, b.Backend, b.Status.Name(), b.Identical ? "yes" : "no", b.Verdict.Name(), SeedPage.Number(b.MaxAbsDifference), SeedPage.Number(b.IdentityMaxAbs),
                    string.Join(", ", b.Findings.Select(f => f.Cause).Distinct()), b.Message is { } m ? FirstLine(m) : b.Conclusion]);
                if (b.Status != RunStatus.Completed) continue;
                completed++;
                if (b.Identical) identical++;
                else if (b.Verdict == Verdict.Agree) rounding++;
            }
        }
        // Unchanged = bit-identical, or different only by float rounding within the tolerance policy (a framework that
        // fuses or reorders operations around an extra op). A step-0 difference would be initial-weights-mismatch.
        int unchanged = identical + rounding;
        page.Result = $"inserting identities changed nothing in {unchanged} of {completed} completed backend runs ({identical} bit-identical, {rounding} within float rounding; injected and framework init, {reports[0].Steps} steps)" +
            (completed > unchanged ? "; see the table for the ones that changed and the diagnosed cause" : "; so the reported change is not the identity's math: the unverified TF 1.14 hypothesis is a shifted initializer RNG stream (docs/conventions.md section 5), which the harness reports as initial-weights-mismatch");
        page.Tables.Add(new Table("Each backend against itself, without and with the identity:",
            ["init", "backend", "status", "bit-identical", "verdict", "max |diff|", "identity max |out-in|", "findings", "conclusion"], rows));
        foreach (var r in reports) page.Links.Add(($"metamorphic.json ({r.InitMode} init)", $"{r.InitMode}/metamorphic.json"));
        // The seed's figure: the sum of each Dense kernel's weights at the end of every epoch, without (#V1) and with (#V2)
        // the identity, one line per backend and layer.
        var seedSpec = SpecVariant.FromFile("seed002-no-identity.json").Load();
        int stepsPerEpoch = Planner.Build(seedSpec, o.Steps ?? (o.Quick ? 45 : null)).StepsPerEpoch;
        string[] kernels = [.. seedSpec.Model.Layers.OfType<Specs.LinearSpec>().Select(l => l.Name + ".weight")];
        var kernelSums = new List<object>();
        foreach (string mode in new[] { "injected", "framework" })
        {
            foreach (var (leaf, label) in new[] { ("original", "#V1, without Activation('linear')"), ("identity", "#V2, with Activation('linear')") })
            {
                var figure = KernelSums(Path.Combine(dir, mode, "traces"), leaf, stepsPerEpoch, kernels,
                    $"Sum of each Dense kernel's weights per epoch ({label}; {mode} init)");
                page.Figures.Add(figure);
                kernelSums.Add(new { mode, variant = leaf, series = figure.Series });
            }
        }
        page.Notes.Add("Figures: W_sum, the sum of each Dense kernel's weights after every epoch (the reported answer plotted this per layer). " +
            "With the identity the lines of a backend are those without it: the reported two differing plots are not reproduced by any backend here.");
        page.Notes.Add("Framework initialization: backends with seeded framework initializers (torchsharp, keras, torch-python) draw their own weights from the spec's init seed; an identity layer draws nothing, so in these frameworks it cannot shift the stream. A backend that cannot initialize natively says so in its status or declared mismatches.");
        page.Write(dir, new { seed = "002", reports, kernelSums });
        return (page, completed > 0 && unchanged == completed);
    }

    /// <summary>
    /// One line per backend and kernel: the sum of the kernel's weights at every epoch end, from the traces under
    /// <paramref name="tracesRoot"/> (Metamorphic's layout: BACKEND/original, BACKEND/identity).
    /// </summary>
    private static Figure KernelSums(string tracesRoot, string leaf, int stepsPerEpoch, IReadOnlyList<string> kernels, string title)
    {
        var series = new List<PlotSeries>();
        if (Directory.Exists(tracesRoot))
        {
            foreach (string backendDir in Directory.EnumerateDirectories(tracesRoot).Order(StringComparer.Ordinal))
            {
                string trace = Path.Combine(backendDir, leaf);
                if (!File.Exists(Path.Combine(trace, "trace.json"))) continue;
                var epochs = kernels.ToDictionary(k => k, _ => (X: new List<double>(), Y: new List<double>()));
                foreach (var record in TraceReader.Open(trace).Records())
                {
                    if (record.Phase != RecordPhase.Train || record.Step % stepsPerEpoch != 0) continue;
                    foreach (string k in kernels)
                    {
                        if (record.Find(TensorKind.Parameter, k) is not { } w) continue;
                        epochs[k].X.Add(record.Step / stepsPerEpoch);
                        epochs[k].Y.Add(w.Data.Sum());
                    }
                }
                foreach (string k in kernels)
                    if (epochs[k].X.Count > 0) series.Add(new PlotSeries($"{Path.GetFileName(backendDir)} {k[..^".weight".Length]}", epochs[k].X, epochs[k].Y));
            }
        }
        return new Figure(title, "epoch", "sum of the kernel's weights", series);
    }

    // ---- Seed 003: cs231n batch normalization: gradient checks, weight-scale and batch-size experiments ----

    /// <summary>cs231n's expected relative-error ranges (seed 003), by parameter role: the largest error each accepts.</summary>
    public static (string Range, double Upper) ExpectedRange(string tensor) => tensor switch
    {
        // cs231n's 1e-13..1e-8 is for one batchnorm layer's dx; its net-level check covers parameters only, so the whole
        // net's input gradient is held to parity gradcheck's default threshold.
        GradientCheck.InputTensor => ("not in cs231n's net check (one layer's dx: 1e-13 .. 1e-8); parity gradcheck: <= 1e-7", 1e-7),
        _ when tensor.EndsWith(".weight", StringComparison.Ordinal) => ("1e-10 .. 1e-4 (W)", 1e-4),
        _ when tensor.EndsWith(".bias", StringComparison.Ordinal) => ("1e-10 .. 1e-8 (b)", 1e-8),
        _ => ("1e-9 .. 1e-8 (gamma, beta)", 1e-8),
    };

    private static (SeedPage, bool) Seed003(SeedOptions o, BackendRegistry registry, string dir, IProgress<RunProgress>? progress)
    {
        string backend = o.Backends[0];
        var page = new SeedPage(Heading("003", "cs231n batch normalization (gradient checks, weight scale, batch size)"),
            "The cs231n batch-normalization assignment: numerical gradient checks of batchnorm and layernorm nets, then the weight-initialization-scale experiment (8-layer nets, with and without batchnorm) and the batch-size experiment (batchnorm vs layernorm), here on Fashion-MNIST subsets (1000 train / 500 eval).");

        // Gradient checks (float64 reference, central differences), next to the notebook's expected ranges.
        var gradRows = new List<IReadOnlyList<string>>();
        bool gradientsOk = true;
        foreach (string fixture in new[] { "cs231n-bn.json", "cs231n-layernorm.json" })
        {
            var plan = Planner.Build(SpecVariant.FromFile(fixture).Load(), 1);
            foreach (var r in GradientCheck.Run(plan, 1))
            {
                var (range, upper) = ExpectedRange(r.Tensor);
                bool within = !r.Identifiable || r.RelativeError <= upper;
                gradientsOk &= within;
                gradRows.Add([plan.Spec.Name, r.Tensor, r.RelativeError.ToString("0.00e+00", CultureInfo.InvariantCulture), r.ScaledError.ToString("0.00e+00", CultureInfo.InvariantCulture),
                    range, !r.Identifiable ? "not identifiable (true gradient 0)" : within ? "within" : "ABOVE"]);
            }
        }
        page.Tables.Add(new Table("Gradient checks (float64 reference, central differences h = 1e-5, cs231n rel_error):",
            ["net", "tensor", "rel error", "scaled error", "cs231n expects", "verdict"], gradRows));

        // Weight-initialization scale: 20 scales log-spaced 1e-4..1 (quick: 5), with and without batchnorm.
        int scaleCount = o.Quick ? 5 : 20, epochs = o.Quick ? 2 : 10;
        var scales = Enumerable.Range(0, scaleCount).Select(i => Math.Pow(10, -4 + 4.0 * i / (scaleCount - 1))).ToList();
        var scaleArms = new List<StudyArm>();
        foreach (double scale in scales)
        {
            foreach (bool bn in new[] { true, false })
            {
                var v = SpecVariant.FromFile("seed003-weight-scale.json").Epochs(epochs).WeightScale(scale)
                    .Named($"seed003-ws-{SpecVariant.Short(scale)}-{(bn ? "batchnorm" : "baseline")}");
                if (!bn) v.WithoutNormalization();
                scaleArms.Add(new StudyArm(bn ? "batchnorm" : "baseline", v.Load(), v.Save(Path.Combine(dir, "specs")), [backend]));
            }
        }
        var scaleResults = Study.Run(scaleArms, registry, Path.Combine(dir, "runs"), progress);
        var scaleRows = new List<IReadOnlyList<string>>();
        for (int i = 0; i < scales.Count; i++)
        {
            ArmResult bn = scaleResults[2 * i], plain = scaleResults[2 * i + 1];
            scaleRows.Add([SpecVariant.Short(scales[i]), SeedPage.Number(bn.BestEvalAccuracy), SeedPage.Number(plain.BestEvalAccuracy),
                SeedPage.Number(bn.FinalTrainLoss), SeedPage.Number(plain.FinalTrainLoss), Stopped(bn) + Stopped(plain)]);
        }
        page.Tables.Add(new Table($"Weight-initialization scale, 784-[50 x 7]-10 (8 linear layers), Adam lr 1e-3, batch 50, {epochs} epochs:",
            ["weight scale", "best eval acc (batchnorm)", "best eval acc (baseline)", "final train loss (batchnorm)", "final train loss (baseline)", "note"], scaleRows));
        page.Figures.Add(new Figure("Best eval accuracy vs weight scale", "weight initialization scale", "best eval accuracy",
            [Series("batchnorm", scales, scaleResults.Where((_, i) => i % 2 == 0).Select(a => a.BestEvalAccuracy)),
             Series("baseline", scales, scaleResults.Where((_, i) => i % 2 == 1).Select(a => a.BestEvalAccuracy))], LogX: true));
        page.Figures.Add(new Figure("Final train loss vs weight scale", "weight initialization scale", "final train loss",
            [Series("batchnorm", scales, scaleResults.Where((_, i) => i % 2 == 0).Select(a => a.FinalTrainLoss)),
             Series("baseline", scales, scaleResults.Where((_, i) => i % 2 == 1).Select(a => a.FinalTrainLoss))], LogX: true));

        // Batch size: 5, 10, 50 with batchnorm and with layernorm, and the baseline at 5 (cs231n's layout).
        var batchArms = new List<StudyArm>();
        foreach (string norm in new[] { "baseline", "batchnorm", "layernorm" })
        {
            foreach (int batch in norm == "baseline" ? new[] { 5 } : new[] { 5, 10, 50 })
            {
                var v = SpecVariant.FromFile("seed003-batch-size.json").Epochs(epochs).BatchSize(batch).EvalEvery(1000 / batch)
                    .Named($"seed003-bs-{batch}-{norm}");
                if (norm == "baseline") v.WithoutNormalization();
                if (norm == "layernorm") v.BatchNormToLayerNorm();
                batchArms.Add(new StudyArm($"{norm} batch {batch}", v.Load(), v.Save(Path.Combine(dir, "specs")), [backend]));
            }
        }
        var batchResults = Study.Run(batchArms, registry, Path.Combine(dir, "runs"), progress);
        page.Tables.Add(new Table($"Batch size, 784-[100 x 5]-10, weight scale 2e-2, Adam lr 10^-3.5, {epochs} epochs:",
            ["run", "best eval acc", "final eval acc", "final train loss", "seconds"],
            batchResults.Select(a => (IReadOnlyList<string>)[a.Label, SeedPage.Number(a.BestEvalAccuracy), SeedPage.Number(a.FinalEvalAccuracy), SeedPage.Number(a.FinalTrainLoss), SeedPage.Number(a.Seconds)]).ToList()));
        page.Figures.Add(new Figure("Eval accuracy per epoch by batch size", "epoch", "eval accuracy",
            batchResults.Select(a => new PlotSeries(a.Label, a.EvalAccuracy.Steps.Select((_, i) => (double)(i + 1)).ToList(), a.EvalAccuracy.Values)).ToList()));

        var bnSmall = batchResults.First(a => a.Label == "batchnorm batch 5");
        var bnLarge = batchResults.First(a => a.Label == "batchnorm batch 50");
        var lnSmall = batchResults.First(a => a.Label == "layernorm batch 5");
        int bnWins = Enumerable.Range(0, scales.Count).Count(i => scaleResults[2 * i].BestEvalAccuracy > scaleResults[2 * i + 1].BestEvalAccuracy);
        page.Result = $"gradient checks {(gradientsOk ? "within" : "NOT within")} cs231n's ranges; batchnorm beats the baseline at {bnWins} of {scales.Count} weight scales; " +
            $"best eval accuracy batchnorm batch 5 {SeedPage.Number(bnSmall.BestEvalAccuracy)} vs batch 50 {SeedPage.Number(bnLarge.BestEvalAccuracy)}, layernorm batch 5 {SeedPage.Number(lnSmall.BestEvalAccuracy)}";
        page.Notes.Add($"Runs on {backend}; each run's spec is in specs/ (repeat one with: parity run specs/NAME.json). Eval accuracy uses the first 500 test images; cs231n's notebook uses a validation split of CIFAR-10, so the numbers differ in scale but the shapes (batchnorm flat over 4 decades of weight scale, the baseline only trainable in a narrow band; batchnorm worse at tiny batches, layernorm not) are the assignment's.");
        page.Notes.Add("A run whose loss became NaN or infinite stops there ('diverged' in the note column): its best accuracy is over the steps before.");
        page.Write(dir, new { seed = "003", gradientChecks = gradRows, weightScale = scaleResults, batchSize = batchResults });
        bool reproduced = gradientsOk && bnWins > scales.Count / 2;
        return (page, reproduced);
    }

    // ---- shared page pieces ----

    /// <summary>How close (in eval accuracy) the slow arm must stay to the fast one to count as caught up.</summary>
    public const double CatchUpGap = 0.02;

    /// <summary>
    /// The first evaluated step from which <paramref name="slow"/>'s eval accuracy stays within <see cref="CatchUpGap"/> of
    /// <paramref name="fast"/>'s (same weights, different running-statistics momentum); null when it never does.
    /// </summary>
    public static int? CatchUpStep(ArmResult slow, ArmResult fast)
    {
        var steps = slow.EvalAccuracy.Steps;
        int? from = null;
        for (int i = 0; i < Math.Min(steps.Count, fast.EvalAccuracy.Values.Count); i++)
        {
            bool within = fast.EvalAccuracy.Values[i] - slow.EvalAccuracy.Values[i] <= CatchUpGap;
            from = within ? from ?? steps[i] : null;
        }
        return from;
    }

    private static Table ArmTable(string caption, IReadOnlyList<ArmResult> arms) => new(caption,
        ["model", "backends", "status", "steps", "final eval acc", "best eval acc", "final train acc", "train - eval", "final eval loss", "verdict", "seconds per backend"],
        arms.Select(a => (IReadOnlyList<string>)[a.Label, string.Join(", ", a.Backends), a.Status + (a.Message is null ? "" : $" ({FirstLine(a.Message)})"), a.Steps.ToString(CultureInfo.InvariantCulture),
            SeedPage.Number(a.FinalEvalAccuracy), SeedPage.Number(a.BestEvalAccuracy), SeedPage.Number(a.FinalTrainAccuracy),
            SeedPage.Number(a.FinalTrainAccuracy - a.FinalEvalAccuracy), SeedPage.Number(a.EvalLoss.Values.LastOrDefault(double.NaN)), a.Verdict ?? "(one backend)",
            string.Join(", ", a.BackendSeconds.Select(kv => $"{kv.Key} {kv.Value:0.0} s"))]).ToList());

    private static Table RunningStatisticsTable(IReadOnlyList<ArmResult> arms) => new(
        "Running statistics against the batch statistics each call site normalized with (last traced step, mean |difference| over features; first features shown):",
        ["model", "instance", "compared with", "step", "mean distance", "variance distance", "running mean (first)", "batch mean (first)"],
        arms.SelectMany(a => a.RunningStatistics.Select(c => (IReadOnlyList<string>)[a.Label, c.Instance, c.Call, c.Step.ToString(CultureInfo.InvariantCulture),
            SeedPage.Number(c.MeanDistance), SeedPage.Number(c.VarianceDistance), string.Join(" ", c.RunningMeanHead.Select(SeedPage.Number)),
            string.Join(" ", c.BatchMeanHead.Select(SeedPage.Number))])).ToList());

    private static Table FindingsTable(IReadOnlyList<ArmResult> arms) => new("Findings (docs/causes.md):",
        ["model", "cause", "backend", "summary"],
        arms.SelectMany(a => a.Findings.Select(f => (IReadOnlyList<string>)[a.Label, f.Cause, f.Backend, f.Summary])).ToList());

    private static void AddRunLinks(SeedPage page, IReadOnlyList<ArmResult> arms, string dir)
    {
        foreach (var a in arms)
        {
            string relative = Path.GetRelativePath(dir, a.Directory);
            page.Links.Add(File.Exists(Path.Combine(a.Directory, "report.html"))
                ? ($"{a.Label}: cross-backend report", Path.Combine(relative, "report.html"))
                : ($"{a.Label}: trace", Path.Combine(relative, "traces")));
        }
    }

    private static PlotSeries Epochs(string label, Curve curve, int stepsPerEpoch) =>
        new(label, curve.Steps.Select(s => (double)s / stepsPerEpoch).ToList(), curve.Values);

    private static PlotSeries Series(string label, IReadOnlyList<double> x, IEnumerable<double> y) => new(label, x, y.ToList());

    // Native stack traces (libtorch) would swamp a table cell; the trace header keeps the whole message.
    private static string FirstLine(string message)
    {
        string line = message.Split('\n')[0];
        return line.Length <= 240 ? line : line[..240] + " ...";
    }

    private static string Found(bool found, string cause) => found ? cause : $"{cause} NOT found";

    private static string Stopped(ArmResult a) => a.Message is { } m && m.StartsWith("stopped", StringComparison.Ordinal) ? $"{a.Label} diverged ({m}) " : "";
}
