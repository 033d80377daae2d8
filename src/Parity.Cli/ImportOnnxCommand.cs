using System.CommandLine;
using Parity.Harness;
using Parity.Onnx;
using Parity.Planning;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Cli;

/// <summary>
/// <c>parity import-onnx MODEL.onnx</c>: turns an ONNX MLP into a spec plus its weights (docs/onnx.md), so a user
/// can check a model they already have on every backend. Writes <c>DIR/spec.json</c> (canonical, with
/// <c>init.from</c> pointing at the weights) and <c>DIR/initial-state/</c> (a one-record trace of the model's
/// parameters and running statistics). The data section is a synthetic placeholder the user replaces.
/// </summary>
internal static class ImportOnnxCommand
{
    private const string StateDirectory = "initial-state";

    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "The ONNX model (Gemm/MatMul+Add, BatchNormalization, LayerNormalization, Relu, Identity)" };
        var output = new Option<string?>("--out") { Description = "Directory for spec.json and initial-state/ (default: out/import-<model name>)" };
        var force = new Option<bool>("--force") { Description = "Overwrite an existing spec.json" };
        var command = new Command("import-onnx", "Turn an ONNX MLP into a spec and its initial weights") { model, output, force };
        command.SetAction(r => Execute(r.GetValue(model)!, r.GetValue(output), r.GetValue(force), Console.Out));
        return command;
    }

    public static int Execute(string modelPath, string? outDirectory, bool force, TextWriter w)
    {
        (string specJson, StepRecord state) imported;
        try
        {
            imported = OnnxImporter.Import(modelPath);
        }
        catch (Exception e) when (e is OnnxImportException or IOException or UnauthorizedAccessException)
        {
            throw new UsageException(e.Message);
        }
        string dir = outDirectory ?? Path.Combine("out", "import-" + Path.GetFileNameWithoutExtension(modelPath));
        string specPath = Path.Combine(dir, "spec.json");
        if (File.Exists(specPath) && !force) throw new UsageException($"{specPath} exists; pass --force to overwrite it");

        var spec = SpecLoader.Parse(imported.specJson);
        spec = spec with { Init = spec.Init with { Mode = InitMode.Injected, From = StateDirectory } };
        Directory.CreateDirectory(dir);
        using (var writer = TraceWriter.Create(Path.Combine(dir, StateDirectory), new TraceHeader
        {
            Backend = "onnx-import",
            DType = "float32",
            Scenario = spec.Name,
            SpecHash = "import",
            Runtime = new Dictionary<string, string> { ["source"] = Path.GetFullPath(modelPath) },
        }))
        {
            writer.Write(imported.state);
            writer.UpdateHeader(h => h with { Status = RunStatus.Completed });
        }
        File.WriteAllText(specPath, SpecWriter.Write(spec));

        // Prove the pair loads as a plan (shapes, names) before telling the user it is ready.
        var plan = Planner.Build(SpecLoader.LoadFile(specPath), 1);
        w.WriteLine($"imported {modelPath}: {plan.Graph.Calls.Count} calls, {plan.Graph.Parameters.Count} parameters, {plan.Graph.BatchNorms.Count} batchnorm instance(s)"
            + (plan.Graph.Shared.Count > 0 ? $", shared: {string.Join(", ", plan.Graph.Shared)}" : ""));
        w.WriteLine($"  spec:    {specPath}");
        w.WriteLine($"  weights: {Path.Combine(dir, StateDirectory)} (init.from)");
        w.WriteLine("  next: replace the spec's data section with your data (docs/spec.md), then: scripts/parity run " + specPath + " --backends reference,reference-f32,torchsharp");
        return ExitCodes.Agree;
    }
}
