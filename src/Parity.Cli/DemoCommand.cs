using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Harness;
using Parity.Harness.Seeds;
using Parity.Specs;

namespace Parity.Cli;

/// <summary>
/// <c>parity demo</c>: short versions of the four seed replications (docs/seeds.md) on the embedded default
/// data (Fashion-MNIST from Debian's dataset-fashion-mnist, installed by scripts/setup, and synthetic data), one report
/// directory per seed, then one run with a bug that starts mid-run, so a newcomer sees what a caught divergence looks
/// like, and an index (index.html and index.md) a newcomer opens first: one line per part saying what it shows and what
/// came out.
/// </summary>
internal static class DemoCommand
{
    // The training seeds (000, 001, 003) run on the float32 reference; seed 000 adds TorchSharp when it can run here, so
    // the demo also shows two frameworks agreeing on the bug. Seed 002 runs every available backend but the arbiter.
    private const string TrainingReference = "reference-f32";
    private const string SecondFramework = "torchsharp";

    public static int Execute(string outDirectory, IReadOnlyList<string>? backends, BackendRegistry registry, TextWriter w)
    {
        var clock = Stopwatch.StartNew();
        // "A few minutes on 2 cores": libtorch's spinning OpenMP workers made a step 30x slower with 2 threads than with
        // 1 on this machine kind (docs/torchsharp.md); an explicit setting is left alone.
        if (Environment.ProcessorCount <= 2 && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("PARITY_TORCH_THREADS")))
            Environment.SetEnvironmentVariable("PARITY_TORCH_THREADS", "1");
        var outcomes = new List<SeedOutcome>();
        foreach (string id in SeedReplications.Ids)
        {
            var chosen = backends?.ToList() ?? DefaultBackends(id, registry);
            w.WriteLine();
            w.WriteLine($"demo: scenario {id} ({SeedReplications.Names[id]}) on {string.Join(", ", chosen)}");
            using var progress = new TerminalProgress { Label = $"scenario {id} " };
            var outcome = SeedReplications.Run(id, new SeedOptions(chosen, Quick: true), registry, Path.Combine(outDirectory, "seed" + id), progress);
            progress.Clear();
            SeedCommand.Print(outcome, w);
            outcomes.Add(outcome);
        }
        var rows = outcomes.Select(o => new IndexRow(o.Id, o.Title, o.Result, o.Reproduced, $"seed{o.Id}/index.html", $"seed{o.Id}/summary.md")).ToList();
        w.WriteLine();
        w.WriteLine($"demo: {BugTitle}");
        rows.Add(CaughtBug(Path.Combine(outDirectory, BugDirectory), registry, w));
        WriteIndex(outDirectory, rows, clock.Elapsed);
        w.WriteLine($"\ndemo: {rows.Count(o => o.Reproduced)} of {rows.Count} parts came out as expected in {clock.Elapsed.TotalSeconds:0} s; open {Path.Combine(outDirectory, "index.html")}");
        return rows.All(o => o.Reproduced) ? ExitCodes.Agree : ExitCodes.Diverge;
    }

    // ---- A bug caught mid-run: the float32 reference whose batchnorm momentum flips to 1 - m at step BugStep ----

    private const string BugDirectory = "caught-bug";
    private const string BugBackend = "momentum-flips-at-step-8";
    private const int BugStep = 8;
    private const int BugSteps = 16;
    private const string BugTitle = "A bug caught mid-run: batchnorm momentum read as 1 - m from step 8 (as a port copying Keras's convention would)";

    /// <summary>
    /// Runs synthetic-mlp-bn for <see cref="BugSteps"/> steps on the float64 reference and a float32 backend that follows
    /// the spec until step 7 and then updates its running statistics with momentum 1 - m; expected: exit 1, the first
    /// divergence at step 8 in a running statistic, and the finding bn-momentum-convention there.
    /// </summary>
    internal static IndexRow CaughtBug(string directory, BackendRegistry registry, TextWriter w)
    {
        var clock = Stopwatch.StartNew();
        var spec = SpecLoader.LoadFile(RepoPaths.Fixture("synthetic-mlp-bn.json"));
        registry.Add(BugBackend, () => new ChangedMidRunBackend(BugBackend, ReferenceBackend.Float32(),
            s => s with { Model = s.Model with { Layers = s.Model.Layers.Select(l => l is BatchNormSpec bn ? bn with { Momentum = 1 - bn.Momentum } : l).ToList() } },
            BugStep), Tensors.DType.Float32);
        var request = new RunRequest(spec, RepoPaths.Fixture("synthetic-mlp-bn.json"), [BugBackend], ReferenceBackend.Float64Name, directory, BugSteps);
        using var progress = new TerminalProgress { Label = "caught bug " };
        var report = RunSession.Execute(request, registry, progress);
        progress.Clear();
        ResultTable.Print(report, w);
        var divergence = report.Comparisons.FirstOrDefault(c => c.Backend == BugBackend)?.FirstDivergence;
        var finding = report.Findings.FirstOrDefault(f => f.Backend == BugBackend && f.Cause == Diagnostics.CauseIds.BnMomentumConvention);
        bool caught = report.ExitCode == ExitCodes.Diverge && divergence is { Step: BugStep, Kind: "runningMean" or "runningVariance" } && finding is not null;
        string result = divergence is null
            ? $"verdict {report.Verdict.Name()}: no divergence found"
            : $"verdict {report.Verdict.Name()} (exit {report.ExitCode}): first divergence at step {divergence.Step}, {divergence.Kind}:{divergence.Site}"
              + (finding is null ? "; no cause named" : $"; cause {finding.Cause}");
        w.WriteLine($"  result: {result}");
        w.WriteLine($"  {(caught ? "caught where the bug starts" : "NOT caught as expected")} in {clock.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s");
        w.WriteLine($"  report: {Path.Combine(directory, "report.html")} (also summary.md, report.json, junit.xml)");
        return new IndexRow("bug", BugTitle, result, caught, $"{BugDirectory}/report.html", $"{BugDirectory}/summary.md");
    }

    /// <summary>One row of the index: a part of the demo, what came out, whether that is what it should show, and its pages.</summary>
    internal sealed record IndexRow(string Id, string Title, string Result, bool Reproduced, string Page, string Summary);

    private static List<string> DefaultBackends(string id, BackendRegistry registry) =>
        id == "000" && SeedCommand.Available(registry, SecondFramework) ? [TrainingReference, SecondFramework]
        : id == "002" ? SeedCommand.DefaultBackends(id, registry)
        : [TrainingReference];

    /// <summary>Writes index.md and index.html: one row per seed with what it shows, the result and the report link.</summary>
    internal static void WriteIndex(string outDirectory, IReadOnlyList<IndexRow> outcomes, TimeSpan elapsed)
    {
        Directory.CreateDirectory(outDirectory);
        string when = $"{outcomes.Count} parts in {elapsed.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)} s; full versions: scripts/replicate-seed000 .. scripts/replicate-seed003, measured figures in docs/seeds.md.";
        var md = new StringBuilder("# Parity demo: the four documented scenarios, reproduced, and a bug caught\n\n")
            .Append("Each scenario is a real incident (docs/seeds.md); the last row is a bug planted mid-run, caught where it starts. Each row links its report (a page with plots, summary.md with the tables).\n\n")
            .Append("| part | shows | result | as expected | report |\n|---|---|---|---|---|\n");
        var html = new StringBuilder("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Parity demo</title>")
            .Append("<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}table{border-collapse:collapse}</style></head><body>")
            .Append("<h1>Parity demo: the four documented scenarios, reproduced, and a bug caught</h1><p>Each scenario is a real incident; the last row is a bug planted mid-run, caught where it starts. Each row links its report.</p>")
            .Append("<table><tr><th>part</th><th>shows</th><th>result</th><th>as expected</th><th>report</th></tr>");
        foreach (var o in outcomes)
        {
            string link = o.Page, summary = o.Summary;
            string ok = o.Reproduced ? "yes" : "NO";
            md.Append($"| {o.Id} | {Cell(o.Title)} | {Cell(o.Result)} | {ok} | [{link}]({link}), [{summary}]({summary}) |\n");
            html.Append($"<tr><td>{o.Id}</td><td>{E(o.Title)}</td><td>{E(o.Result)}</td><td>{ok}</td><td><a href=\"{E(link)}\">report</a> · <a href=\"{E(summary)}\">summary.md</a></td></tr>");
        }
        md.Append($"\n{when}\n");
        html.Append($"</table><p>{E(when)}</p></body></html>\n");
        File.WriteAllText(Path.Combine(outDirectory, "index.md"), md.ToString());
        File.WriteAllText(Path.Combine(outDirectory, "index.html"), html.ToString());
    }

    private static string E(string s) => WebUtility.HtmlEncode(s);

    private static string Cell(string s) => s.Replace("|", "\\|", StringComparison.Ordinal);
}
