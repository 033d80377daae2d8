using Parity.Backends.All;
using System.CommandLine;
using System.Globalization;
using Parity.Backends;
using Parity.Harness;
using Parity.Harness.Seeds;

namespace Parity.Cli;

/// <summary>
/// <c>parity seed ID</c>: one seed replication (docs/seeds.md) end to end into one report directory:
/// 000 shared batchnorm, 001 running-statistics warm-up and frozen updates, 002 identity insertion, 003 cs231n
/// gradient checks and sweeps. The scripts/replicate-seedNNN scripts call it with the full schedules.
/// </summary>
internal static class SeedCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "Seed: 000, 001, 002 or 003" };
        var output = new Option<string?>("--out") { Description = "Report directory (default out/seedNNN)" };
        var backends = new Option<string?>("--backends") { Description = "Backends, comma-separated; the first is the reference (default: reference-f32; seed 002: every available backend)" };
        var quick = new Option<bool>("--quick") { Description = "The short version parity demo runs (fewer steps and sweep points)" };
        var steps = Commands.StepsOption("Training steps instead of the replication's schedule (seeds 000-002)");
        var workers = new Option<string[]>("--worker") { Description = "Add a backend NAME run by the worker COMMAND; repeatable", HelpName = "NAME=COMMAND" };
        var command = new Command("seed", "Reproduce one seed document end to end and write its report (index.html, summary.md, results.json)")
        {
            id, output, backends, quick, steps, workers,
        };
        command.SetAction(r =>
        {
            string seed = r.GetValue(id)!;
            if (!SeedReplications.Ids.Contains(seed)) throw new UsageException($"unknown seed '{seed}': use one of {string.Join(", ", SeedReplications.Ids)}");
            var registry = BackendCatalog.Create(r.GetValue(workers));
            var chosen = r.GetValue(backends) is { } b ? Commands.SplitList(b) : DefaultBackends(seed, registry);
            string dir = r.GetValue(output) ?? Path.Combine("out", "seed" + seed);
            using var progress = new TerminalProgress { Label = $"seed {seed} " };
            var outcome = SeedReplications.Run(seed, new SeedOptions(chosen, r.GetValue(quick), r.GetValue(steps)), registry, dir, progress);
            progress.Clear();
            Print(outcome, Console.Out);
            return outcome.Reproduced ? ExitCodes.Agree : ExitCodes.Diverge;
        });
        return command;
    }

    /// <summary>reference-f32 for the training seeds; every available backend (the arbiter left out) for seed 002's metamorphic runs.</summary>
    internal static List<string> DefaultBackends(string seed, BackendRegistry registry) =>
        seed == "002"
            ? registry.Names.Where(n => n != OnnxArbitration.BackendName && Available(registry, n)).ToList()
            : ["reference-f32"];

    internal static bool Available(BackendRegistry registry, string name)
    {
        try
        {
            return registry.Contains(name) && registry.Create(name).Describe().Available;
        }
        catch (Exception)
        {
            return false;
        }
    }

    internal static void Print(SeedOutcome outcome, TextWriter w)
    {
        w.WriteLine($"{outcome.Title}");
        w.WriteLine($"  result: {outcome.Result}");
        w.WriteLine($"  {(outcome.Reproduced ? "reproduced and diagnosed" : "NOT reproduced as expected")} in {outcome.Seconds.ToString("0.0", CultureInfo.InvariantCulture)} s");
        w.WriteLine($"  report: {Path.Combine(outcome.Directory, "index.html")} (also summary.md, results.json)");
    }
}
