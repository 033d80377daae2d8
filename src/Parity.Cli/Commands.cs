using Parity.Backends;
using Parity.Backends.All;
using Parity.Backends.PythonNet;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Parity.Backends.Reference;
using Parity.Harness;
using Parity.Comparison;
using Parity.IO;
using Parity.Planning;
using Parity.Specs;

namespace Parity.Cli;

/// <summary>The commands and their options.</summary>
internal static class Commands
{
    internal static readonly Option<string[]> WorkerOption = new("--worker")
    {
        Description = "Add a backend NAME run by the worker COMMAND (docs/worker-protocol.md); repeatable",
        HelpName = "NAME=COMMAND",
        AllowMultipleArgumentsPerToken = false,
    };

    internal static readonly Option<string[]> PythonAdapterOption = new(PythonAdapterBackend.Option)
    {
        Description = "Add a Python adapter module (docs/python-adapters.md) as backend NAME, run in process, and NAME-worker, the same module as a worker; repeatable",
        HelpName = "NAME=ADAPTER.py",
        AllowMultipleArgumentsPerToken = false,
    };

    /// <summary>The catalog with the <c>--worker</c> and <c>--python-adapter</c> backends of the command line.</summary>
    private static BackendRegistry Catalog(ParseResult r) => BackendCatalog.Create(r.GetValue(WorkerOption), r.GetValue(PythonAdapterOption));

    public static Command Run()
    {
        var spec = new Argument<string>("spec") { Description = "Scenario spec (JSON, docs/spec.md)" };
        var backends = new Option<string>("--backends") { Description = "Backends to run, comma-separated; NAME@float64 picks a dtype", DefaultValueFactory = _ => "reference,reference-f32" };
        var reference = new Option<string>("--reference") { Description = "Backend every other is compared with", DefaultValueFactory = _ => ReferenceBackend.Float64Name };
        var steps = StepsOption("Train this many steps instead of the spec's schedule");
        var output = new Option<string?>("--out") { Description = "Run directory (default out/<scenario>)" };
        var device = new Option<string?>("--device") { Description = "Device for backends that have a choice: cpu or cuda" };
        var timeout = new Option<double?>("--timeout") { Description = "Per-request time limit for worker backends and per-call time limit for in-process Python adapters, seconds" };
        var tolerance = new Option<string?>("--tolerance") { Description = "Tolerance overrides: kind=atol:rtol, all=atol:rtol, multiple=M, floor=F, comma-separated (docs/tolerances.md)" };
        var trajectoryOnly = new Option<bool>("--trajectory-only")
        {
            Description = "Judge each backend on its free-running trajectory alone, without replaying its steps (faster; blind to errors that start after the trajectories separate)",
        };
        var keepTraces = KeepTracesOption();
        var traceCompression = TraceCompressionOption.Create();
        var json = JsonOption("report.json");
        var (kinds, sites, stepsRange) = CaptureFilterOptions();
        var jobs = JobsOption();
        var command = new Command("run", "Run a spec on several backends, compare every tensor with the reference, write the report")
        {
            spec, backends, reference, steps, output, device, timeout, tolerance, trajectoryOnly, keepTraces, json, WorkerOption, kinds, sites, stepsRange, PythonAdapterOption,
        };
        command.Options.Add(traceCompression);
        command.Options.Add(jobs);
        command.SetAction(r =>
        {
            string path = r.GetValue(spec)!;
            var scenario = SpecLoader.LoadFile(path);
            var registry = Catalog(r);
            var request = new RunRequest(scenario, path, SplitList(r.GetValue(backends)!), r.GetValue(reference)!,
                r.GetValue(output) ?? PathNames.ScenarioDirectory("out", scenario.Name), r.GetValue(steps), Device(r.GetValue(device)),
                Timeout(r.GetValue(timeout)), Tolerances(r.GetValue(tolerance)))
            {
                TrajectoryOnly = r.GetValue(trajectoryOnly),
                KeepTraces = TraceRetentions.Parse(r.GetValue(keepTraces)!),
                TraceCompression = TraceCompressionOption.Parse(r.GetValue(traceCompression)!),
                Filter = CaptureFilters.Parse(r.GetValue(kinds), r.GetValue(sites), r.GetValue(stepsRange)),
                Jobs = r.GetValue(jobs) ?? Lanes.Default,
            };
            using var progress = new TerminalProgress { Label = scenario.Name + " " };
            var report = RunSession.Execute(request, registry, progress);
            progress.Clear();
            if (r.GetValue(json))
            {
                Console.WriteLine(File.ReadAllText(Path.Combine(request.OutDirectory, "report.json")));
                return report.ExitCode;
            }
            ResultTable.Print(report, Console.Out);
            Console.WriteLine($"report: {TerminalText.Escape(Path.Combine(request.OutDirectory, "report.json"))}");
            return report.ExitCode;
        });
        return command;
    }

    private static Option<int?> JobsOption()
    {
        var option = new Option<int?>("--jobs")
        {
            Description = "How many things may run at once: the reference and worker backends train beside the others, each backend is judged as soon as it and what it is compared with have trained, comparisons and detectors share the cores (default: one per core; 1 runs one after another, so each backend's time is its own)",
            HelpName = "N",
        };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() < 1) result.AddError("--jobs must be 1 or more");
        });
        return option;
    }

    // parity run's capture filter: fewer kinds, sites or steps captured, written and judged (CaptureFilters).
    private static (Option<string?> Kinds, Option<string?> Sites, Option<string?> StepsRange) CaptureFilterOptions() =>
    (
        new("--kinds") { Description = "Capture and judge only these tensor kinds, comma-separated, as docs/trace.md names them (forward, outputGradient, ...); the state kinds are kept for the step checks", HelpName = "K1,K2" },
        new("--sites") { Description = "Capture and judge only the tensors at these call sites or layers, comma-separated, as reports name them (l1 covers l1.weight); the state of every site is kept for the step checks", HelpName = "S1,S2" },
        new("--steps-range") { Description = "Capture and judge in full only steps A..B (A.. or ..B); earlier steps still run, and every step's loss is still compared", HelpName = "A..B" }
    );

    public static Command Backends()
    {
        var json = JsonOption("the list as a JSON array");
        var command = new Command("backends", "List every backend, whether it can run here, and why not") { json, WorkerOption, PythonAdapterOption };
        command.SetAction(r => r.GetValue(json)
            ? BackendsCommand.PrintJson(Catalog(r), Console.Out)
            : BackendsCommand.Print(Catalog(r), Console.Out));
        return command;
    }

    public static Command Demo()
    {
        var output = new Option<string>("--out") { Description = "Directory for the demo's reports", DefaultValueFactory = _ => Path.Combine("out", "demo") };
        var backends = new Option<string?>("--backends") { Description = "Backends to include (default: reference-f32, with torchsharp in shared-batchnorm where it runs; every available one in identity-layer)" };
        var command = new Command("demo", "Run short versions of the four documented scenarios on the embedded default data, then a bug caught mid-run, and write one report directory") { output, backends, WorkerOption, PythonAdapterOption };
        command.SetAction(r => DemoCommand.Execute(r.GetValue(output)!, r.GetValue(backends) is { } b ? SplitList(b) : null,
            Catalog(r), Console.Out));
        return command;
    }

    public static Command Gradcheck()
    {
        var spec = new Argument<string[]>("spec") { Description = "Scenario spec(s)", Arity = ArgumentArity.OneOrMore };
        var threshold = new Option<double>("--threshold") { Description = "Largest relative error accepted", DefaultValueFactory = _ => 1e-7 };
        var step = new Option<int>("--step") { Description = "Which step's batch to check", DefaultValueFactory = _ => 1, CustomParser = r => Count(r, 1, Planner.MaxSteps) ?? 0 };
        var command = new Command("gradcheck", "Compare every analytic gradient of the reference backend with central differences (float64)") { spec, threshold, step };
        command.SetAction(r => GradcheckCommand.Execute(r.GetValue(spec)!, r.GetValue(threshold), r.GetValue(step), Console.Out));
        return command;
    }

    public static Command Bench()
    {
        var spec = new Argument<string>("spec") { Description = "Scenario spec" };
        var backends = new Option<string>("--backends") { Description = "Backends to time, comma-separated; the first is the baseline of the ratios", DefaultValueFactory = _ => ReferenceBackend.Float32Name };
        var steps = new Option<int>("--steps") { Description = "Timed steps per backend", DefaultValueFactory = _ => 20, CustomParser = r => Count(r, 1, Planner.MaxSteps) ?? 0 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed steps first", DefaultValueFactory = _ => 3, CustomParser = r => Count(r, 0, Planner.MaxSteps) ?? 0 };
        var capture = new Option<string>("--capture") { Description = "full (every tensor) or off (loss only)", DefaultValueFactory = _ => "full" };
        var device = new Option<string?>("--device") { Description = "cpu or cuda, for backends that have a choice" };
        var json = new Option<string?>("--json") { Description = "Also write the figures to this JSON file" };
        var trace = TraceCompressionOption.Bench();
        var command = new Command("bench", "Time training steps of several backends in one process and print medians and ratios")
        {
            spec, backends, steps, warmup, capture, device, json, WorkerOption, PythonAdapterOption,
        };
        command.Options.Add(trace);
        command.SetAction(r => BenchCommand.Execute(SpecLoader.LoadFile(r.GetValue(spec)!), SplitList(r.GetValue(backends)!), r.GetValue(steps), r.GetValue(warmup),
            r.GetValue(capture)!, Device(r.GetValue(device)), r.GetValue(json), Catalog(r), Console.Out,
            r.GetValue(trace) is string mode ? TraceCompressionOption.Parse(mode) : null));
        return command;
    }

    internal static List<string> SplitList(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList() is { Count: > 0 } list
            ? list
            : throw new UsageException("--backends: give at least one backend name");

    /// <summary>
    /// <c>--steps</c>: a whole number of steps in 1..<see cref="Planner.MaxSteps"/> (the spec's own limit), refused
    /// while the command line is parsed with a message that names the range.
    /// </summary>
    /// <summary>How JSON printed on stdout is written: indented, characters as they are (it is not embedded in HTML).</summary>
    internal static readonly System.Text.Json.JsonSerializerOptions PrintedJson = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    internal static Option<bool> JsonOption(string what) => new("--json") { Description = $"Print {what} on stdout instead of the table (progress stays on stderr)" };

    internal static Option<string> KeepTracesOption() => new("--keep-traces")
    {
        Description = "Which traces stay after the report: all, failed (those that did not agree, with the reference they were judged against) or none",
        DefaultValueFactory = _ => "all",
        HelpName = "all|failed|none",
    };

    internal static Option<int?> StepsOption(string description) => new("--steps")
    {
        Description = $"{description} (1..{Planner.MaxSteps})",
        CustomParser = r => Count(r, 1, Planner.MaxSteps),
    };

    /// <summary>The option's value as a whole number in [<paramref name="min"/>, <paramref name="max"/>], or null with a parse error saying so.</summary>
    internal static int? Count(ArgumentResult result, int min, int max)
    {
        string text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value) && value >= min && value <= max) return (int)value;
        string option = result.Parent is OptionResult o ? o.Option.Name : "the value";
        result.AddError($"{option} must be a whole number in {min}..{max} (got '{text}')");
        return null;
    }

    internal static TimeSpan? Timeout(double? seconds) =>
        seconds is not double t ? null : t > 0 && t <= 86400 ? TimeSpan.FromSeconds(t) : throw new UsageException($"--timeout must be in (0, 86400] seconds (got {t})");

    internal static ToleranceOverrides? Tolerances(string? text)
    {
        if (text is null) return null;
        try
        {
            return TolerancePolicy.ParseOverrides(text);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--tolerance: {e.Message}");
        }
    }

    private static string? Device(string? device) =>
        device is null or "cpu" or "cuda" ? device : throw new UsageException($"--device must be cpu or cuda (got '{device}')");
}
