using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Parity.Backends;
using Parity.Backends.All;
using Parity.Harness;
using Parity.Planning;
using Parity.Specs;

namespace Parity.Cli;

/// <summary>
/// <c>parity validate SPEC...</c>: every check a run makes before its first step, and nothing after it. The loader lists
/// every mistake of a spec; a spec without any is then planned as a run would plan it (data files read and parsed,
/// shapes, labels and sizes matched with the model, the memory estimate, <c>init.from</c>). With <c>--backends</c>, each
/// backend builds the model and says whether it refuses the spec or which conventions it declares it cannot follow.
/// </summary>
internal static class ValidateCommand
{
    public static Command Create()
    {
        var specs = new Argument<string[]>("spec") { Description = "Scenario spec(s) to check", Arity = ArgumentArity.OneOrMore };
        var backends = new Option<string?>("--backends")
        {
            Description = "Also ask these backends (comma-separated, NAME@dtype allowed) whether they refuse the spec and which conventions they declare; each builds the model but trains no step",
        };
        var json = Commands.JsonOption("one object per spec");
        var command = new Command("validate", "Check specs without running them: list every error with its JSON path, or summarize what a valid spec runs")
        {
            specs, backends, json, Commands.WorkerOption, Commands.PythonAdapterOption,
        };
        command.SetAction(r =>
        {
            var items = r.GetValue(backends) is { } b ? Commands.SplitList(b) : null;
            var registry = items is null ? null : BackendCatalog.Create(r.GetValue(Commands.WorkerOption), r.GetValue(Commands.PythonAdapterOption));
            var checks = r.GetValue(specs)!.Select(s => Check(s, items, registry)).ToList();
            if (r.GetValue(json)) Console.WriteLine(new JsonArray([.. checks.Select(c => (JsonNode)c.ToJson())]).ToJsonString(Commands.PrintedJson));
            else Print(checks, Console.Out);
            return checks.All(c => c.Errors.Count == 0) ? ExitCodes.Agree : ExitCodes.Error;
        });
        return command;
    }

    /// <summary>What one backend says about a valid spec.</summary>
    /// <param name="Backend">The backend as named (with its dtype, e.g. <c>torchsharp@float64</c>).</param>
    /// <param name="Verdict"><c>runs</c>, <c>refuses</c>, <c>unavailable</c> (not on this machine) or <c>arbiter</c> (evaluation only).</param>
    /// <param name="Reason">Why it refuses or cannot run; null when it runs.</param>
    /// <param name="Mismatches">The conventions it declares it cannot follow as the spec asks (it runs, and the report explains them).</param>
    internal sealed record BackendCheck(string Backend, string Verdict, string? Reason, IReadOnlyList<ConventionMismatch> Mismatches);

    /// <summary>One spec's result: its errors, or its plan and what the asked backends say.</summary>
    internal sealed record SpecCheck(string Spec, IReadOnlyList<SpecException> Errors, Plan? Plan, IReadOnlyList<BackendCheck> Backends)
    {
        public JsonObject ToJson() => new()
        {
            ["spec"] = Spec,
            ["valid"] = Errors.Count == 0,
            ["errors"] = new JsonArray([.. Errors.Select(e => (JsonNode)new JsonObject { ["path"] = e.JsonPath, ["problem"] = e.Problem, ["message"] = e.Message })]),
            ["summary"] = Plan is null ? null : Summary(Plan),
            ["backends"] = new JsonArray([.. Backends.Select(b => (JsonNode)new JsonObject
            {
                ["backend"] = b.Backend,
                ["verdict"] = b.Verdict,
                ["reason"] = b.Reason,
                ["mismatches"] = new JsonArray([.. b.Mismatches.Select(m => (JsonNode)new JsonObject { ["setting"] = m.Setting, ["spec"] = m.Spec, ["backend"] = m.Backend })]),
            })]),
        };
    }

    /// <summary>Checks one spec file as <c>run</c> would before its first step; never throws for a mistake in the spec or its data.</summary>
    internal static SpecCheck Check(string path, IReadOnlyList<string>? backends = null, BackendRegistry? registry = null)
    {
        Plan plan;
        try
        {
            plan = Planner.Build(SpecLoader.LoadFile(path));
        }
        catch (SpecException e)
        {
            return new SpecCheck(path, e.Errors, null, []);
        }
        var answers = backends is null || registry is null ? [] : backends.Select(b => AskBackend(plan, b, registry)).ToList();
        return new SpecCheck(path, [], plan, answers);
    }

    // The backend's own checks, in the order a run meets them: available here, its capabilities, then building the
    // model (where a backend refuses a setting it cannot run, or declares a convention it cannot follow). No step runs.
    private static BackendCheck AskBackend(Plan plan, string item, BackendRegistry registry)
    {
        var (name, display, dtype) = StandardBackends.Resolve(registry, item, plan.Spec.DType);
        try
        {
            var backend = registry.Create(name);
            var description = backend.Describe();
            if (!description.Capabilities.Training)
                return new BackendCheck(display, "arbiter", "evaluates each training backend's final checkpoint; it trains nothing", []);
            if (!description.Available) return new BackendCheck(display, "unavailable", description.Reason, []);
            var options = new BackendOptions(dtype);
            if (description.Capabilities.Refusal(plan, options) is { } refusal) return new BackendCheck(display, "refuses", refusal, []);
            using var session = backend.Open(plan, options);
            return new BackendCheck(display, "runs", null, session.Mismatches.ToList());
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return new BackendCheck(display, "refuses", e is BackendException ? e.Message : $"{e.GetType().Name}: {e.Message}", []);
        }
    }

    private static JsonObject Summary(Plan plan)
    {
        var spec = plan.Spec;
        return new JsonObject
        {
            ["name"] = spec.Name,
            ["model"] = new JsonObject
            {
                ["inputs"] = spec.Model.Inputs,
                ["outputs"] = plan.Graph.OutputWidth,
                ["layers"] = spec.Model.Layers.Count,
                ["calls"] = spec.Model.Calls.Count,
                ["parameters"] = Parameters(plan),
            },
            ["data"] = new JsonObject
            {
                ["train"] = plan.Train.Origin,
                ["trainSamples"] = plan.Train.Count,
                ["eval"] = plan.Eval.Origin,
                ["evalSamples"] = plan.Eval.Count,
                ["batchSize"] = spec.Data.BatchSize,
            },
            ["optimizer"] = new JsonObject { ["type"] = spec.Optimizer.Type, ["lr"] = spec.Optimizer.LearningRate },
            ["steps"] = plan.TotalSteps,
            ["specHash"] = SpecLoader.Hash(spec),
        };
    }

    private static long Parameters(Plan plan) => plan.Graph.Parameters.Sum(p => p.Shape.Aggregate(1L, (a, b) => a * b));

    /// <summary>A valid spec as one line: model, data, optimizer, steps and spec hash.</summary>
    internal static string SummaryLine(Plan plan)
    {
        var spec = plan.Spec;
        string data = spec.Data.Eval is null ? $"{plan.Train.Count} samples from {plan.Train.Origin} (evaluated on {plan.Eval.Count} of them)"
            : $"{plan.Train.Count} training samples from {plan.Train.Origin}, {plan.Eval.Count} eval samples from {plan.Eval.Origin}";
        return string.Create(CultureInfo.InvariantCulture,
            $"model {spec.Model.Inputs} -> {plan.Graph.OutputWidth} ({spec.Model.Calls.Count} calls of {spec.Model.Layers.Count} layers, {Parameters(plan)} parameters); "
            + $"data {data}, batch {spec.Data.BatchSize}; optimizer {spec.Optimizer.Type} lr {spec.Optimizer.LearningRate:G6}; "
            + $"{plan.TotalSteps} steps; spec hash {SpecLoader.Hash(spec)}");
    }

    internal static void Print(IReadOnlyList<SpecCheck> checks, TextWriter w)
    {
        foreach (var c in checks)
        {
            if (c.Plan is null)
            {
                w.WriteLine($"{TerminalText.Escape(c.Spec)}: invalid, {c.Errors.Count} error(s):");
                foreach (var e in c.Errors) w.WriteLine("  " + TerminalText.Escape($"{e.JsonPath}: {e.Problem}"));
                continue;
            }
            w.WriteLine($"{TerminalText.Escape(c.Spec)}: valid: {TerminalText.Escape(SummaryLine(c.Plan))}");
            foreach (var b in c.Backends)
            {
                string line = b.Verdict == "runs" && b.Mismatches.Count == 0 ? "runs it as written"
                    : b.Verdict == "runs" ? "runs it, declaring " + string.Join("; ", b.Mismatches.Select(m => $"{m.Setting}: spec {m.Spec}, backend {m.Backend}"))
                    : $"{b.Verdict}: {b.Reason}";
                w.WriteLine($"  {TerminalText.Escape(b.Backend)}: {TerminalText.Escape(line)}");
            }
        }
        if (checks.Count > 1) w.WriteLine($"{checks.Count(c => c.Errors.Count == 0)} of {checks.Count} specs valid");
    }
}
