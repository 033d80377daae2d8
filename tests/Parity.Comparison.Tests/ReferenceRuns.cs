using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Comparison.Tests;

/// <summary>Runs the reference backend in float64 and float32 on a plan and opens both traces.</summary>
internal static class ReferenceRuns
{
    public static string FixturePath(string name)
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            string path = Path.Combine(dir.FullName, "fixtures", name);
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException($"fixture {name} not found above {TestContext.CurrentContext.TestDirectory}");
    }

    public static (TraceReader Float64, TraceReader Float32) Run(Plan plan, string root)
    {
        var f64 = ScenarioRunner.Run(plan, ReferenceBackend.Float64(), new BackendOptions(DType.Float64), Path.Combine(root, "reference"));
        var f32 = ScenarioRunner.Run(plan, ReferenceBackend.Float32(), new BackendOptions(DType.Float32), Path.Combine(root, "reference-f32"));
        Assert.That(f64.Status, Is.EqualTo(RunStatus.Completed), f64.Message);
        Assert.That(f32.Status, Is.EqualTo(RunStatus.Completed), f32.Message);
        return (TraceReader.Open(f64.TraceDirectory), TraceReader.Open(f32.TraceDirectory));
    }

    public static Plan Fixture(string name, int steps) => Planner.Build(SpecLoader.LoadFile(FixturePath(name)), steps);
}
