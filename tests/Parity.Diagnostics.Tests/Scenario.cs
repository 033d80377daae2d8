using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Harness;
using Parity.Specs;
using Parity.Tensors;

namespace Parity.Diagnostics.Tests;

/// <summary>Runs a spec on the reference and some backends into a temporary directory and diagnoses the traces.</summary>
internal static class Scenario
{
    public static string Fixtures => Path.Combine(RepoPaths.Root, "fixtures");

    public static ScenarioSpec Fixture(string name) => SpecLoader.LoadFile(Path.Combine(Fixtures, name + ".json"));

    /// <summary>
    /// Runs <paramref name="spec"/> for <paramref name="steps"/> steps on the float64 reference and on each backend through
    /// the run session, as <c>parity run</c> does (envelopes, step checks, trajectories), and returns the diagnosis.
    /// </summary>
    public static Diagnosis Diagnose(ScenarioSpec spec, int steps, params (IBackend Backend, DType DType)[] backends)
    {
        string root = Path.Combine(Path.GetTempPath(), "parity-diagnostics-tests", Guid.NewGuid().ToString("N"));
        try
        {
            var registry = StandardBackends.Create();
            // Each backend under its own name, pinned to the dtype it is to run in: findings name it as the test does.
            foreach (var (backend, dtype) in backends)
                if (!registry.Contains(backend.Name)) registry.Add(backend.Name, () => backend, dtype);
            var selections = backends.Select(b => b.Backend.Name).ToList();
            var session = RunSession.Start(new RunRequest(spec, null, selections, ReferenceBackend.Float64Name, root, steps));
            session.RunBackends(registry);
            foreach (var run in session.Runs) Assert.That(run.Run.Status, Is.EqualTo(RunStatus.Completed), $"{run.Display}: {run.Run.Message}");
            return session.Diagnose(session.Judge());
        }
        finally
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
                // A leftover temporary directory is harmless.
            }
        }
    }
}
