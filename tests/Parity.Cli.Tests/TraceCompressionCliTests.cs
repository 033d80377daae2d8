using Parity.Tracing;

namespace Parity.Cli.Tests;

[NonParallelizable]
public class TraceCompressionCliTests
{
    [Test]
    public void A_run_with_zstd_traces_agrees_and_its_traces_hold_the_same_values_as_raw_ones()
    {
        string raw = CliRunner.TempDir(), zstd = CliRunner.TempDir();
        string[] run = ["run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "reference,reference-f32", "--steps", "2"];
        var (exit, stdout, stderr) = CliRunner.Run([.. run, "--out", raw]);
        Assert.That(exit, Is.EqualTo(0), stdout + stderr);
        (exit, stdout, stderr) = CliRunner.Run([.. run, "--out", zstd, "--trace-compression", "zstd"]);
        Assert.That(exit, Is.EqualTo(0), stdout + stderr);

        string compressed = Path.Combine(zstd, "traces", "reference-f32");
        Assert.That(File.ReadAllText(Path.Combine(compressed, TraceFiles.Records)), Does.Contain("\"codec\":\"shuffle-zstd\""));
        Assert.That(new FileInfo(Path.Combine(compressed, TraceFiles.Tensors)).Length,
            Is.LessThan(new FileInfo(Path.Combine(raw, "traces", "reference-f32", TraceFiles.Tensors)).Length));
        var expected = TraceReader.Open(Path.Combine(raw, "traces", "reference-f32")).Records().ToList();
        var actual = TraceReader.Open(compressed).Records().ToList();
        Assert.That(actual.Select(r => (r.Step, r.Phase)), Is.EqualTo(expected.Select(r => (r.Step, r.Phase))));
        for (int i = 0; i < expected.Count; i++)
            for (int j = 0; j < expected[i].Entries.Count; j++)
                Assert.That(actual[i].Entries[j].Value.Data, Is.EqualTo(expected[i].Entries[j].Value.Data), $"record {i} {expected[i].Entries[j].Key}");

        (exit, stdout, stderr) = CliRunner.Run("export-npz", zstd, "--backends", "reference-f32");
        Assert.That(exit, Is.EqualTo(0), stdout + stderr);
        Assert.That(stdout, Does.Contain("reference-f32 (float32): 174 arrays"));
    }

    [Test]
    public void An_unknown_compression_is_a_usage_error_naming_the_choices()
    {
        var (exit, _, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--steps", "1", "--out", CliRunner.TempDir(), "--trace-compression", "lz4");
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("--trace-compression: 'lz4' is not one of: zstd, none"));
    }
}
