using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Parity.Backends;
using Parity.Harness.Seeds;

namespace Parity.Cli;

/// <summary>
/// <c>parity demo</c>: short versions of the four seed replications (docs/seeds.md) on the embedded default
/// data (Fashion-MNIST from Debian's dataset-fashion-mnist, installed by scripts/setup, and synthetic data), one report
/// directory per seed, and an index (index.html and index.md) a newcomer opens first: one line per seed saying what
/// it shows and what came out.
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
            w.WriteLine($"demo: seed {id} on {string.Join(", ", chosen)}");
            var progress = new TerminalProgress { Label = $"seed {id} " };
            var outcome = SeedReplications.Run(id, new SeedOptions(chosen, Quick: true), registry, Path.Combine(outDirectory, "seed" + id), progress);
            progress.Clear();
            SeedCommand.Print(outcome, w);
            outcomes.Add(outcome);
        }
        WriteIndex(outDirectory, outcomes, clock.Elapsed);
        w.WriteLine($"\ndemo: {outcomes.Count(o => o.Reproduced)} of {outcomes.Count} seeds reproduced and diagnosed in {clock.Elapsed.TotalSeconds:0} s; open {Path.Combine(outDirectory, "index.html")}");
        return outcomes.All(o => o.Reproduced) ? ExitCodes.Agree : ExitCodes.Diverge;
    }

    private static List<string> DefaultBackends(string id, BackendRegistry registry) =>
        id == "000" && SeedCommand.Available(registry, SecondFramework) ? [TrainingReference, SecondFramework]
        : id == "002" ? SeedCommand.DefaultBackends(id, registry)
        : [TrainingReference];

    /// <summary>Writes index.md and index.html: one row per seed with what it shows, the result and the report link.</summary>
    internal static void WriteIndex(string outDirectory, IReadOnlyList<SeedOutcome> outcomes, TimeSpan elapsed)
    {
        Directory.CreateDirectory(outDirectory);
        string when = $"{outcomes.Count} seeds in {elapsed.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)} s; full versions: scripts/replicate-seed000 .. scripts/replicate-seed003, measured figures in docs/seeds.md.";
        var md = new StringBuilder("# Parity demo: the four seed documents, reproduced\n\n")
            .Append("Each seed is a real incident (docs/seeds.md); each row links its report (index.html with plots, summary.md with the tables).\n\n")
            .Append("| seed | shows | result | reproduced | report |\n|---|---|---|---|---|\n");
        var html = new StringBuilder("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Parity demo</title>")
            .Append("<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}table{border-collapse:collapse}</style></head><body>")
            .Append("<h1>Parity demo: the four seed documents, reproduced</h1><p>Each seed is a real incident; each row links its report.</p>")
            .Append("<table><tr><th>seed</th><th>shows</th><th>result</th><th>reproduced</th><th>report</th></tr>");
        foreach (var o in outcomes)
        {
            string link = $"seed{o.Id}/index.html", summary = $"seed{o.Id}/summary.md";
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
