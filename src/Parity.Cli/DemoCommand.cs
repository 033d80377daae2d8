using System.Text;
using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Harness;
using Parity.Specs;

namespace Parity.Cli;

/// <summary>
/// <c>parity demo</c>: short versions of the seed scenarios (../shared/seeds) on the embedded default data,
/// every available backend, one report directory per scenario and an index a newcomer opens first.
/// </summary>
internal static class DemoCommand
{
    /// <summary>One demo scenario: a fixture, a short schedule, and what it shows.</summary>
    internal sealed record DemoScenario(string Fixture, int Steps, string Shows, bool LargeModel);

    internal static readonly DemoScenario[] Scenarios =
    [
        new("seed000-shared-bn.json", 60, "Seed 000: one batchnorm instance called after both hidden layers (Chainer user's bug), 1 epoch of Fashion-MNIST", true),
        new("seed000-separate-bn.json", 60, "Seed 000's fix: two batchnorm instances, same everything else", true),
        new("seed002-no-identity.json", 50, "Seed 002: the 12-8-12 net without an identity layer", false),
        new("seed002-identity.json", 50, "Seed 002: the same net with Activation('linear') inserted", false),
        new("synthetic-shared-bn.json", 50, "Shared batchnorm in miniature", false),
        new("synthetic-layernorm-sgd.json", 50, "LayerNorm, identity, bias-free linear, SGD with momentum", false),
    ];

    // The ILGPU CPU accelerator emulates every GPU thread: correct, far too slow for 784-100-100-10 at batch 1000.
    private static readonly HashSet<string> SmallModelsOnly = ["native"];

    public static int Execute(string outDirectory, IReadOnlyList<string>? backends, BackendRegistry registry, TextWriter w)
    {
        var available = (backends ?? registry.Names.ToList()).Where(b => IsAvailable(registry, b)).ToList();
        var index = new StringBuilder("# Parity demo\n\n| scenario | shows | backends | verdict | report |\n|---|---|---|---|---|\n");
        int exit = ExitCodes.Agree;
        foreach (var scenario in Scenarios)
        {
            string path = RepoPaths.Fixture(scenario.Fixture);
            if (!File.Exists(path))
            {
                w.WriteLine($"demo: skipping {scenario.Fixture} (not in fixtures/)");
                continue;
            }
            var spec = SpecLoader.LoadFile(path);
            var chosen = available.Where(b => !(scenario.LargeModel && SmallModelsOnly.Contains(b))).ToList();
            var request = new RunRequest(spec, path, chosen, ReferenceBackend.Float64Name, Path.Combine(outDirectory, spec.Name), scenario.Steps);
            w.WriteLine();
            var progress = new TerminalProgress { Label = spec.Name + " " };
            var report = RunPipeline.Execute(request, registry, progress);
            progress.Clear();
            ResultTable.Print(report, w);
            if (report.ExitCode == ExitCodes.Error) exit = ExitCodes.Error;
            index.Append($"| {spec.Name} | {scenario.Shows} | {string.Join(", ", report.Backends.Select(b => b.Name))} | {report.Verdict} | [{spec.Name}/report.json]({spec.Name}/report.json) |\n");
        }
        Directory.CreateDirectory(outDirectory);
        File.WriteAllText(Path.Combine(outDirectory, "index.md"), index.ToString());
        w.WriteLine($"\ndemo: reports under {outDirectory} (start with {Path.Combine(outDirectory, "index.md")})");
        return exit;
    }

    private static bool IsAvailable(BackendRegistry registry, string name)
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
}
