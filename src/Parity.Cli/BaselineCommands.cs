using Parity.Backends.All;
using System.CommandLine;
using Parity.Harness;
using Parity.IO;
using Parity.Specs;

namespace Parity.Cli;

/// <summary><c>parity approve</c> and <c>parity verify</c>: approved baselines for CI regression runs (<see cref="Baselines"/>).</summary>
internal static class BaselineCommands
{
    private static Option<string> BaselinesOption() => new("--baselines")
    {
        Description = "Folder of approved baselines",
        DefaultValueFactory = _ => RepoPaths.ReferenceModels,
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
            foreach (var a in Baselines.Approve(r.GetValue(runDirectory)!, r.GetValue(baselines)!, r.GetValue(force)))
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
        var spec = new Argument<string>("spec") { Description = "Scenario spec" };
        var backends = new Option<string?>("--backends") { Description = "Backends to verify, comma-separated (default: every backend with a baseline)" };
        var baselines = BaselinesOption();
        var output = new Option<string?>("--out") { Description = "Run directory for the fresh run (default out/verify/<scenario>)" };
        var keepTraces = Commands.KeepTracesOption();
        var command = new Command("verify", "Run a spec and compare each backend's trace with its approved baseline; exit 1 with the origin when one disagrees, 2 when one has none")
        {
            spec, backends, baselines, output, keepTraces,
        };
        command.SetAction(r =>
        {
            string path = r.GetValue(spec)!;
            var scenario = SpecLoader.LoadFile(path);
            using var progress = new TerminalProgress { Label = $"verify {scenario.Name} " };
            var result = Baselines.Verify(scenario, path, r.GetValue(backends) is { } b ? Commands.SplitList(b) : null, r.GetValue(baselines)!,
                BackendCatalog.Create(), r.GetValue(output) ?? PathNames.ScenarioDirectory(Path.Combine("out", "verify"), scenario.Name), progress,
                TraceRetentions.Parse(r.GetValue(keepTraces)!));
            progress.Clear();
            foreach (var check in result.Checks)
            {
                string label = check.Verdict switch { Verdict.Agree => "ok", Verdict.Diverge => "DIFFERS", _ => "ERROR" };
                Console.WriteLine($"{label} {TerminalText.Escape(check.Backend)}: {TerminalText.Escape(check.Message, keepNewlines: true, indent: "    ")}");
            }
            Console.WriteLine($"run: {TerminalText.Escape(result.RunDirectory)}");
            return ExitCodes.Of(result.Verdict);
        });
        return command;
    }
}
