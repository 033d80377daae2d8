using Parity.Backends.All;
using System.CommandLine;
using Parity.Harness;
using Parity.IO;
using Parity.Specs;

namespace Parity.Cli;

/// <summary><c>parity approve</c> and <c>parity verify</c>: approved baselines for CI regression runs (<see cref="Baselines"/>).</summary>
internal static class BaselineCommands
{
    private static Option<string?> BaselinesOption() => new("--baselines")
    {
        Description = $"Folder of approved baselines (default: {BaselineLocation.FolderName}/ at the root of the git work tree holding the spec, else beside the spec)",
        HelpName = "DIR",
    };

    public static Command Approve()
    {
        var runDirectory = new Argument<string>("run-dir") { Description = "Run directory of a 'parity run' (its --out)" };
        var force = new Option<bool>("--force") { Description = "Replace a baseline already approved for the same backend versions" };
        var baselines = BaselinesOption();
        var command = new Command("approve", "Store each backend's trace of a run as the approved baseline of its scenario, backend and framework versions")
        {
            runDirectory, force, baselines,
        };
        command.SetAction(r =>
        {
            string run = r.GetValue(runDirectory)!;
            foreach (var a in Baselines.Approve(run, r.GetValue(baselines) ?? BaselineLocation.ForRun(run), r.GetValue(force)))
            {
                Console.WriteLine($"{(a.Replaced ? "replaced" : "approved")} {TerminalText.Escape(a.Backend)}: {TerminalText.Escape(a.Directory)}");
                Console.WriteLine($"  {TerminalText.Escape(a.Change ?? "no previous baseline of this backend", keepNewlines: true, indent: "    ")}");
            }
            return ExitCodes.Agree;
        });
        return command;
    }

    public static Command Verify()
    {
        var specs = new Argument<string[]>("spec") { Description = "Scenario specs, or directories of them (a suite)", Arity = ArgumentArity.OneOrMore };
        var backends = new Option<string?>("--backends") { Description = "Backends to verify, comma-separated (default: every backend with a baseline)" };
        var baselines = BaselinesOption();
        var output = new Option<string?>("--out") { Description = "Run directory for the fresh run (default out/verify/<scenario>; a suite: out/suite, a shard: out/suite-shard-K-of-N)" };
        var keepTraces = Commands.KeepTracesOption();
        var shard = new Option<string?>("--shard") { Description = "Verify only shard K of N of the suite (deterministic, balanced by estimated cost)", HelpName = "K/N" };
        var json = Commands.JsonOption("the checks as JSON (a suite: its suite.json)");
        var command = new Command("verify", "Run specs and compare each backend's trace with its approved baseline; exit 1 with the origin when one disagrees, 2 when one has none")
        {
            specs, backends, baselines, output, keepTraces, shard, json,
        };
        command.SetAction(r =>
        {
            var paths = r.GetValue(specs)!;
            var keep = TraceRetentions.Parse(r.GetValue(keepTraces)!);
            var only = r.GetValue(backends) is { } b ? Commands.SplitList(b) : null;
            Shard? part = r.GetValue(shard) is { } text ? Shard.Parse(text) : null;
            string root = r.GetValue(baselines) ?? BaselineLocation.For(paths[0]);
            if (paths.Length > 1 || part is not null || Directory.Exists(paths[0]))
                return VerifySuite(paths, part, only, root, r.GetValue(output), keep, r.GetValue(json));
            string path = paths[0];
            var scenario = SpecLoader.LoadFile(path);
            using var progress = new TerminalProgress { Label = $"verify {scenario.Name} " };
            var result = Baselines.Verify(scenario, path, only, root,
                BackendCatalog.Create(), r.GetValue(output) ?? PathNames.ScenarioDirectory(Path.Combine("out", "verify"), scenario.Name), progress, keep);
            progress.Clear();
            if (r.GetValue(json))
            {
                var checks = new System.Text.Json.Nodes.JsonArray([.. result.Checks.Select(c => (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject
                {
                    ["backend"] = c.Backend, ["verdict"] = c.Verdict.ToString().ToLowerInvariant(), ["message"] = c.Message, ["baseline"] = c.Baseline,
                })]);
                Console.WriteLine(new System.Text.Json.Nodes.JsonObject
                {
                    ["verdict"] = result.Verdict.ToString().ToLowerInvariant(), ["run"] = result.RunDirectory, ["checks"] = checks,
                }.ToJsonString(Commands.PrintedJson));
                return ExitCodes.Of(result.Verdict);
            }
            foreach (var check in result.Checks)
                Console.WriteLine($"{Suites.Label(check.Verdict)} {TerminalText.Escape(check.Backend)}: {TerminalText.Escape(check.Message, keepNewlines: true, indent: "    ")}");
            Console.WriteLine($"run: {TerminalText.Escape(result.RunDirectory)}");
            return ExitCodes.Of(result.Verdict);
        });
        return command;
    }

    public static Command Merge()
    {
        var shards = new Argument<string[]>("shard") { Description = "Suite directories written by 'parity verify --shard K/N'", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out") { Description = "Directory for the merged suite.json, junit.xml, summary.md and index.html", DefaultValueFactory = _ => Path.Combine("out", "suite-merged") };
        var command = new Command("merge", "Combine the shards of a suite into one result; refuses a missing or repeated shard") { shards, output };
        command.SetAction(r =>
        {
            var merged = Suites.Merge(r.GetValue(shards)!, r.GetValue(output)!);
            Print(merged, r.GetValue(output)!);
            return ExitCodes.Of(merged.Verdict);
        });
        return command;
    }

    private static int VerifySuite(string[] paths, Shard? shard, IReadOnlyList<string>? backends, string baselines, string? output, TraceRetention keep, bool json)
    {
        var specs = Suites.Expand(paths);
        string outDirectory = output ?? Path.Combine("out", shard is { } s ? $"suite-shard-{s.Index}-of-{s.Count}" : "suite");
        using var progress = new TerminalProgress { Label = "suite " };
        var result = Suites.Verify(specs, shard, backends, baselines, BackendCatalog.Create(), outDirectory, progress, keep);
        progress.Clear();
        if (json) Console.WriteLine(File.ReadAllText(Path.Combine(outDirectory, Suites.ResultFile)));
        else Print(result, outDirectory);
        return ExitCodes.Of(result.Verdict);
    }

    private static void Print(SuiteResult suite, string directory)
    {
        foreach (var e in suite.Entries)
            foreach (var c in e.Checks)
                Console.WriteLine($"{Suites.Label(c.Verdict)} {TerminalText.Escape(e.Scenario)} {TerminalText.Escape(c.Backend)}: {TerminalText.Escape(c.Message.Split('\n')[0])}");
        Console.WriteLine($"suite{(suite.Shards.Count == 1 ? " shard " + suite.Shards[0] : "")}: {suite.Entries.Count} spec(s), "
            + $"{suite.Entries.Sum(e => e.Checks.Count)} check(s), verdict {suite.Verdict.ToString().ToLowerInvariant()}; {TerminalText.Escape(Path.Combine(directory, "index.html"))}");
    }
}
