using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Comparison;
using Parity.Harness;
using Parity.Planning;
using Parity.Running;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Diagnostics.Tests;

/// <summary>Runs a spec on the reference and some backends into a temporary directory and diagnoses the traces.</summary>
internal static class Scenario
{
    public static string Fixtures => Path.Combine(RepoPaths.Root, "fixtures");

    public static ScenarioSpec Fixture(string name) => SpecLoader.LoadFile(Path.Combine(Fixtures, name + ".json"));

    /// <summary>
    /// Runs <paramref name="spec"/> for <paramref name="steps"/> steps on the float64 reference and on each backend,
    /// compares each with the reference (float32 traces against the float32 noise envelope, as <c>parity run</c> does)
    /// and returns the diagnosis.
    /// </summary>
    public static Diagnosis Diagnose(ScenarioSpec spec, int steps, params (IBackend Backend, DType DType)[] backends)
    {
        var plan = Planner.Build(spec, steps);
        string root = Path.Combine(Path.GetTempPath(), "parity-diagnostics-tests", Guid.NewGuid().ToString("N"));
        try
        {
            var reference = Run(plan, ReferenceBackend.Float64(), DType.Float64, root, ReferenceBackend.Float64Name);
            var runs = backends.Select(b => (Run: Run(plan, b.Backend, b.DType, root, b.Backend.Name), b.DType)).ToList();
            // Envelopes as parity run chooses them (NoiseEnvelope): every float32 trace is judged against independent
            // float32 trajectories of the reference's math.
            var envelopes = new Dictionary<string, BackendRun>();
            foreach (var judged in runs.Where(r => r.DType == DType.Float32))
                foreach (string name in NoiseEnvelope.EnvelopesOf(judged.Run.Backend))
                    if (!envelopes.ContainsKey(name))
                        envelopes[name] = runs.FirstOrDefault(r => r.Run.Backend == name).Run ?? Run(plan, NoiseEnvelope.Create(name), DType.Float32, root, name);
            var comparisons = runs.Select(r => TraceComparer.Compare(TraceReader.Open(reference.TraceDirectory), TraceReader.Open(r.Run.TraceDirectory),
                TraceLayout.Of(plan), TolerancePolicy.Default,
                r.DType != DType.Float32 ? [] : NoiseEnvelope.EnvelopesOf(r.Run.Backend).Select(n => TraceReader.Open(envelopes[n].TraceDirectory)).ToList(),
                r.Run.Mismatches)).ToList();
            var traces = new[] { reference }.Concat(runs.Select(r => r.Run)).Select(r => BackendTrace.Open(r.TraceDirectory)).ToList();
            return Diagnoser.Run(new DiagnosisContext(plan.Spec, plan.Graph, ReferenceBackend.Float64Name, traces, comparisons));
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

    private static BackendRun Run(Plan plan, IBackend backend, DType dtype, string root, string name)
    {
        var run = ScenarioRunner.Run(plan, backend, new BackendOptions(dtype), Path.Combine(root, name), displayName: name);
        Assert.That(run.Status, Is.EqualTo(RunStatus.Completed), $"{name}: {run.Message}");
        return run;
    }
}
