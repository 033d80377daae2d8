using System.Diagnostics;
using Parity.Data;
using Parity.Tracing;

namespace Parity.Cli.Tests;

[NonParallelizable]
public class ExportNpzTests
{
    [Test]
    public void Every_tensor_of_every_trace_comes_back_exactly_through_numpy_load()
    {
        string run = CliRunner.TempDir();
        var (exit, stdout, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "reference,reference-f32", "--steps", "2", "--out", run);
        Assert.That(exit, Is.EqualTo(0), stdout + stderr);

        (exit, stdout, stderr) = CliRunner.Run("export-npz", run, "--backends", "reference-f32");
        Assert.That(exit, Is.EqualTo(0), stdout + stderr);
        string npz = Path.Combine(run, "npz", "reference-f32.npz");
        Assert.That(stdout, Does.Contain($"reference-f32 (float32): 174 arrays -> {npz}"));

        // Our own reader sees every record of the trace, value for value.
        var trace = TraceReader.Open(Path.Combine(run, "traces", "reference-f32"));
        int arrays = 0;
        foreach (var record in trace.Records())
            foreach (var entry in record.Entries)
            {
                var array = NpyReader.ReadMember(npz, $"{record.Phase.ToString().ToLowerInvariant()}/{record.Step}/{entry.Key}");
                Assert.That(array.Shape, Is.EqualTo(entry.Value.Shape), entry.Key.ToString());
                Assert.That(array.Values, Is.EqualTo(entry.Value.Data), entry.Key.ToString());
                arrays++;
            }
        Assert.That(arrays, Is.EqualTo(174));

        // And NumPy itself opens it: float32 arrays, the loss of step 1 exactly as traced.
        var loss = trace.Records().First(r => r.Phase == RecordPhase.Train && r.Step == 1).Find(TensorKind.Loss)!.Data[0];
        var python = Process.Start(new ProcessStartInfo("/usr/bin/python3",
            ["-c", $"import numpy as np; a = np.load('{npz}'); x = a['train/1/forward:l1']; print(x.dtype, x.shape, repr(float(a['train/1/loss'])), len(a.files))"])
        { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string printed = python.StandardOutput.ReadToEnd() + python.StandardError.ReadToEnd();
        python.WaitForExit();
        Assume.That(printed, Does.Not.Contain("No module named 'numpy'"), "numpy is not installed for /usr/bin/python3 (scripts/setup installs python3-numpy)");
        Assert.That(printed.Trim(), Is.EqualTo($"float32 (64, 32) {loss.ToString("R", System.Globalization.CultureInfo.InvariantCulture)} 174"));
    }

    [Test]
    public void A_backend_the_run_does_not_have_is_named_with_the_ones_it_has()
    {
        string run = CliRunner.TempDir();
        Assert.That(CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--steps", "1", "--out", run).Exit, Is.EqualTo(0));
        var (exit, _, stderr) = CliRunner.Run("export-npz", run, "--backends", "keras");
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("the run has no backend 'keras'; it has: reference, reference-f32"));
    }
}
