using Parity.Specs;

namespace Parity.Harness.Tests;

/// <summary>What a report says when a backend could not be step-checked.</summary>
[NonParallelizable]
public sealed class StepCheckGapTests
{
    [Test]
    public void A_backend_that_cannot_run_a_setting_refuses_it_by_name_and_the_other_backends_still_run()
    {
        NumpyWorker.Require();
        string dir = Path.Combine(Path.GetTempPath(), "parity-refusal", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            // The numpy worker has no weight decay: it refuses the spec in 'build'; reference-f32 runs and is judged.
            string path = Path.Combine(dir, "spec.json");
            File.WriteAllText(path, File.ReadAllText(RepoPaths.Fixture("synthetic-mlp-bn.json"))
                .Replace("\"epsilonForm\": \"sqrtVHat\"", "\"epsilonForm\": \"sqrtVHat\", \"weightDecay\": { \"form\": \"coupled\", \"rate\": 0.01, \"parameters\": \"all\" }", StringComparison.Ordinal)
                .Replace("\"$schema\": \"../docs/spec.schema.json\",", "", StringComparison.Ordinal));
            var report = RunSession.Execute(new RunRequest(SpecLoader.LoadFile(path), path, [NumpyWorker.Name, "reference-f32"], "reference", Path.Combine(dir, "run"), Steps: 2),
                NumpyWorker.Registry());

            Assert.Multiple(() =>
            {
                Assert.That(report.Backends.Single(b => b.Name == NumpyWorker.Name).Message, Does.Contain("optimizer.weightDecay is not implemented"));
                Assert.That(report.Comparisons.Single(c => c.Backend == "reference-f32").Verdict, Is.EqualTo(Verdict.Agree));
                Assert.That(report.Comparisons.Single(c => c.Backend == NumpyWorker.Name).Verdict, Is.EqualTo(Verdict.Error));
                Assert.That(report.ExitCode, Is.EqualTo(2));
            });
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void A_protocol_2_worker_that_fails_before_its_initial_state_is_said_to_have_completed_no_step()
    {
        NumpyWorker.Require();
        string dir = Path.Combine(Path.GetTempPath(), "parity-step-check-gap", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            // The numpy worker refuses TF.js's float32 beta products in 'build', before any state is read.
            string text = File.ReadAllText(RepoPaths.Fixture("synthetic-mlp-bn.json"))
                .Replace("\"epsilonForm\": \"sqrtVHat\"", "\"epsilonForm\": \"sqrtVHat\", \"betaPrecision\": \"float32\"", StringComparison.Ordinal)
                .Replace("\"$schema\": \"../docs/spec.schema.json\",", "", StringComparison.Ordinal);
            string path = Path.Combine(dir, "spec.json");
            File.WriteAllText(path, text);

            var report = RunSession.Execute(new RunRequest(SpecLoader.LoadFile(path), path, [NumpyWorker.Name], "reference", Path.Combine(dir, "run"), Steps: 2),
                NumpyWorker.Registry());
            var c = report.Comparisons.Single();

            Assert.Multiple(() =>
            {
                Assert.That(report.Backends.Single(b => b.Name == NumpyWorker.Name).Message, Does.Contain("betaPrecision"));
                Assert.That(c.StepCheckGap, Is.EqualTo($"no step checked: {NumpyWorker.Name} completed no step"));
                Assert.That(report.ExitCode, Is.EqualTo(2));
            });
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
