using Parity.Backends.All;
using System.CommandLine;
using System.Globalization;
using Parity.Harness;
using Parity.IO;
using Parity.Specs;

namespace Parity.Cli;

/// <summary>
/// <c>parity metamorphic SPEC... --backends ...</c>: runs each spec and its identity-inserted variant in every backend,
/// compares each backend with itself and prints what the identities changed (seed 002, docs/seeds.md).
/// </summary>
internal static class MetamorphicCommand
{
    public static Command Create()
    {
        var specs = new Argument<string[]>("spec") { Description = "Scenario spec(s)", Arity = ArgumentArity.OneOrMore };
        var backends = new Option<string>("--backends") { Description = "Backends to run, comma-separated; NAME@float64 picks a dtype", DefaultValueFactory = _ => "reference" };
        var output = new Option<string>("--out") { Description = "Directory for traces and metamorphic.json (one subdirectory per spec)", DefaultValueFactory = _ => Path.Combine("out", "metamorphic") };
        var steps = Commands.StepsOption("Train this many steps instead of the spec's schedule");
        var device = new Option<string?>("--device") { Description = "Device for backends that have a choice: cpu or cuda" };
        var timeout = new Option<double?>("--timeout") { Description = "Per-request time limit for worker backends, seconds" };
        var workers = new Option<string[]>("--worker") { Description = "Add a backend NAME run by the worker COMMAND; repeatable", HelpName = "NAME=COMMAND" };
        var command = new Command("metamorphic", "Insert an identity after every linear call, run both models in each backend and compare each backend with itself")
        {
            specs, backends, output, steps, device, timeout, workers,
        };
        command.SetAction(r =>
        {
            if (r.GetValue(device) is { } d && d is not ("cpu" or "cuda")) throw new UsageException($"--device must be cpu or cuda (got '{d}')");
            var registry = BackendCatalog.Create(r.GetValue(workers));
            var list = Commands.SplitList(r.GetValue(backends)!);
            int exit = ExitCodes.Agree;
            foreach (string path in r.GetValue(specs)!)
            {
                var spec = SpecLoader.LoadFile(path);
                string dir = PathNames.ScenarioDirectory(r.GetValue(output)!, spec.Name);
                using var progress = new TerminalProgress { Label = spec.Name + " " };
                var report = Metamorphic.Execute(spec, path, list, registry, dir, r.GetValue(steps), r.GetValue(device), Commands.Timeout(r.GetValue(timeout)), progress);
                progress.Clear();
                Print(report, Console.Out);
                Console.WriteLine($"report: {Path.Combine(dir, "metamorphic.json")}");
                exit = Math.Max(exit, report.ExitCode);
            }
            return exit;
        });
        return command;
    }

    private static void Print(MetamorphicReport report, TextWriter w)
    {
        w.WriteLine($"{report.Scenario} (init {report.InitMode}, {report.Steps} steps): identity inserted as {string.Join(", ", report.InsertedCalls)}");
        foreach (var b in report.Backends)
        {
            w.WriteLine($"  {b.Backend}: {b.Status}, {(b.Identical ? "bit-for-bit identical" : $"verdict {b.Verdict}, max |diff| {b.MaxAbsDifference.ToString("G3", CultureInfo.InvariantCulture)}, first difference {b.FirstDifference}")}; identity |out - in| {b.IdentityMaxAbs.ToString("G3", CultureInfo.InvariantCulture)}");
            w.WriteLine($"    {b.Conclusion}");
            foreach (var f in b.Findings)
                w.WriteLine($"    finding [{f.Cause}] at {f.Location}: {f.Summary}{(f.DeclaredBy is { } by ? $" (declared by the backend: {by})" : "")}");
        }
    }
}
