using System.Text.Json.Nodes;
using Parity.Tensors;
using Parity.Tests;

namespace Parity.Tracing.Tests;

public sealed class TraceCompressionTests
{
    private static TraceHeader Header() => new() { Backend = "reference-f32", DType = "float32", Scenario = "compression", SpecHash = "0123456789abcdef" };

    // Activations after a ReLU: half zeros, the rest of one sign and a narrow range of exponents, as in a real trace;
    // plus the values a lossy codec would change.
    private static double[] Values(int count, int seed, DType dtype)
    {
        var random = new Random(seed);
        var values = new double[count];
        for (int i = 0; i < count; i++) values[i] = random.Next(2) == 0 ? 0.0 : random.NextDouble() * 3;
        double[] awkward = [-0.0, double.NaN, double.PositiveInfinity, double.NegativeInfinity, 1e-40, float.Epsilon, float.MaxValue];
        awkward.CopyTo(values, 0);
        return dtype == DType.Float32 ? values.Select(v => (double)(float)v).ToArray() : values;
    }

    private static StepRecord Sample(int step) => new StepRecord(step, RecordPhase.Train)
        .Add(TensorKind.Forward, "l1", new Tensor([50, 40], Values(2000, step, DType.Float32), DType.Float32))
        .Add(TensorKind.OutputGradient, "l1", new Tensor([50, 40], Values(2000, step + 100, DType.Float64), DType.Float64))
        .Add(TensorKind.BatchMean, "bn", new Tensor([8], Values(8, step, DType.Float32), DType.Float32))
        .AddScalar(TensorKind.Loss, 0.5 + step, DType.Float32);

    private static string Write(TempDirectory dir, TraceCompression compression, bool close = true)
    {
        using var writer = TraceWriter.Create(dir.Path, Header(), compression);
        for (int step = 1; step <= 3; step++) writer.Write(Sample(step));
        if (close) writer.UpdateHeader(h => h with { Status = RunStatus.Completed, StepsCompleted = 3 });
        return dir.Path;
    }

    private static void AssertBitwiseEqual(IEnumerable<StepRecord> actual)
    {
        var records = actual.ToList();
        Assert.That(records.Select(r => r.Step), Is.EqualTo(new[] { 1, 2, 3 }));
        foreach (var record in records)
        {
            var expected = Sample(record.Step);
            Assert.That(record.Entries.Select(e => e.Key), Is.EqualTo(expected.Entries.Select(e => e.Key)));
            for (int i = 0; i < expected.Entries.Count; i++)
                Assert.That(record.Entries[i].Value.Data.Select(BitConverter.DoubleToInt64Bits),
                    Is.EqualTo(expected.Entries[i].Value.Data.Select(BitConverter.DoubleToInt64Bits)), $"step {record.Step} {record.Entries[i].Key}");
        }
    }

    private static List<JsonNode> Entries(string trace) =>
        File.ReadAllLines(Path.Combine(trace, TraceFiles.Records)).SelectMany(l => JsonNode.Parse(l)!["entries"]!.AsArray()).Select(e => e!).ToList();

    [TestCase(TraceCompression.Zstd)]
    [TestCase(TraceCompression.None)]
    public void Records_read_back_bit_for_bit_compressed_or_not(TraceCompression compression)
    {
        using var dir = new TempDirectory();
        var reader = TraceReader.Open(Write(dir, compression));
        Assert.That(reader.IsSealed);
        Assert.That(reader.Header.Version, Is.EqualTo(TraceWriter.FormatVersion));
        AssertBitwiseEqual(reader.Records());
    }

    [Test]
    public void Large_tensors_are_zstd_frames_smaller_than_their_values_and_small_ones_stay_raw()
    {
        using var raw = new TempDirectory();
        using var zstd = new TempDirectory();
        Write(raw, TraceCompression.None);
        Write(zstd, TraceCompression.Zstd);
        var entries = Entries(zstd.Path);
        Assert.That(entries.Where(e => (string)e["kind"]! is "forward" or "outputGradient").Select(e => (string?)e["codec"]), Is.All.EqualTo("shuffle-zstd"));
        Assert.That(entries.Where(e => (string)e["kind"]! is "batchMean" or "loss").Select(e => e["codec"]), Is.All.Null, "a frame would cost more than 32 bytes save");
        Assert.That(Entries(raw.Path).Select(e => e["codec"]), Is.All.Null);
        long rawBytes = new FileInfo(Path.Combine(raw.Path, TraceFiles.Tensors)).Length;
        long zstdBytes = new FileInfo(Path.Combine(zstd.Path, TraceFiles.Tensors)).Length;
        Assert.That(zstdBytes, Is.LessThan(rawBytes * 3 / 4), "half the values are zero");
    }

    [Test]
    public void One_tensor_is_read_by_seeking_to_its_frame()
    {
        using var dir = new TempDirectory();
        var reader = TraceReader.Open(Write(dir, TraceCompression.Zstd));
        var key = new TensorKey(TensorKind.OutputGradient, "l1");
        var tensor = reader.ReadTensor(2, RecordPhase.Train, key)!;
        Assert.That(tensor.Data.Select(BitConverter.DoubleToInt64Bits), Is.EqualTo(Sample(2).Find(key.Kind, key.Site)!.Data.Select(BitConverter.DoubleToInt64Bits)));
        Assert.That(tensor.DType, Is.EqualTo(DType.Float64));
        Assert.That(reader.ReadTensor(4, RecordPhase.Train, key), Is.Null);
    }

    [Test]
    public void A_version_2_trace_is_still_read_and_may_not_hold_a_codec()
    {
        using var dir = new TempDirectory();
        string trace = Write(dir, TraceCompression.None);
        string headerPath = Path.Combine(trace, TraceFiles.Header);
        var header = JsonNode.Parse(File.ReadAllText(headerPath))!;
        header["version"] = 2;
        File.WriteAllText(headerPath, header.ToJsonString());
        // A version-2 trace is what this writer writes uncompressed, under version 2: raw values, no codec keys.
        AssertBitwiseEqual(TraceReader.Open(trace).Records());

        using var compressed = new TempDirectory();
        Write(compressed, TraceCompression.Zstd);
        string compressedHeader = Path.Combine(compressed.Path, TraceFiles.Header);
        header = JsonNode.Parse(File.ReadAllText(compressedHeader))!;
        header["version"] = 2;
        File.WriteAllText(compressedHeader, header.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => TraceReader.Open(compressed.Path).Records().ToList())!;
        Assert.That(e.Message, Does.Contain("line 1: entry forward:l1 has a codec; format version 2 stores raw values only"));
    }

    [Test]
    public void A_damaged_frame_is_an_error_naming_the_file_the_tensor_and_the_step()
    {
        using var dir = new TempDirectory();
        // Unsealed (as a run that died leaves it): only the frame's own checksum can catch the damage.
        string trace = Write(dir, TraceCompression.Zstd, close: false);
        var entry = Entries(trace).Where(e => (string)e["kind"]! == "outputGradient").ElementAt(1);
        long offset = (long)entry["offset"]!, stored = (long)entry["stored"]!;
        string tensors = Path.Combine(trace, TraceFiles.Tensors);
        var bytes = File.ReadAllBytes(tensors);
        bytes[offset + stored / 2] ^= 0x5A;
        File.WriteAllBytes(tensors, bytes);
        var reader = TraceReader.Open(trace);
        var e = Assert.Throws<InvalidDataException>(() => reader.Records().ToList())!;
        Assert.That(e.Message, Does.StartWith($"{tensors}: outputGradient:l1 of train step 2 ("));
        Assert.That(e.Message, Does.Contain($"its compressed frame at byte {offset} ({stored} bytes) is damaged"));
        Assert.That(reader.Records().First().Step, Is.EqualTo(1), "the records before the damaged one still read");
    }
}
