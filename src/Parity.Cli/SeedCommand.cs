using Parity.Backends.All;
using System.CommandLine;
using System.Globalization;
using Parity.Backends;
using Parity.Harness;
using Parity.Harness.Seeds;

namespace Parity.Cli;

/// <summary>
/// <c>parity scenario NAME|ID</c> (alias <c>parity seed ID</c>): one scenario's replication (docs/seeds.md) end to end into
/// one report directory: 000 shared-batchnorm, 001 running-statistics (warm-up and frozen updates), 002 identity-layer,
/// 003 cs231n-batchnorm (gradient checks and sweeps). The scripts/replicate-seedNNN scripts call it with the full schedules.
/// </summary>
internal static class SeedCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("scenario") { Description = $"Scenario name or id: {string.Join(", ", SeedReplications.Ids.Select(i => $"{SeedReplications.Names[i]} ({i})"))}" };
        var output = new Option<string?>("--out") { Description = "Report directory (default out/seedNNN)" };
        var backends = new Option<string?>("--backends") { Description = "Backends, comma-separated; the first is the reference (default: reference-f32; identity-layer (002): every available backend)" };
        var quick = new Option<bool>("--quick") { Description = "The short version parity demo runs (fewer steps and sweep points)" };
        var steps = Commands.StepsOption("Training steps instead of the replication's schedule (scenarios 000-002)");
        var workers = new Option<string[]>("--worker") { Description = "Add a backend NAME run by the worker COMMAND; repeatable", HelpName = "NAME=COMMAND" };
        var command = new Command("scenario", "Reproduce one of the four documented scenarios end to end and write its report (index.html, summary.md, results.json)")
        {
            id, output, backends, quick, steps, workers,
        };
        command.Aliases.Add("seed");
        command.SetAction(r =>
        {
            string seed = SeedReplications.Resolve(r.GetValue(id)!);
            var registry = BackendCatalog.Create(r.GetValue(workers));
            var chosen = r.GetValue(backends) is { } b ? Commands.SplitList(b) : DefaultBackends(seed, registry);
            string dir = r.GetValue(output) ?? Path.Combine("out", "seed" + seed);
            using var progress = new TerminalProgress { Label = $"scenario {seed} " };
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
