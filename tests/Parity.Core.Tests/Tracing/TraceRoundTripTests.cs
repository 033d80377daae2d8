using System.Text.Json.Nodes;
using Parity.Backends;
using Parity.Tensors;
using Parity.Tests;

namespace Parity.Tracing.Tests;

public sealed class TraceRoundTripTests
{
    private static TraceHeader Header() => new()
    {
        Backend = "reference-f32",
        DType = "float32",
        Scenario = "roundtrip",
        SpecHash = "0123456789abcdef",
        Runtime = new() { ["framework"] = "test" },
        Mismatches = [new ConventionMismatch("$.optimizer.epsilonForm", "sqrtVHat", "epsilon-hat only", [TensorKind.Parameter.Name()])],
    };

    // Values that a lossy format would change: signed zero, subnormals, extremes, infinities, NaN.
    private static readonly double[] Awkward =
    [
        0.0, -0.0, 1.0, -1.0 / 3, Math.PI, double.Epsilon, 1e-310, double.MaxValue, double.MinValue,
        double.PositiveInfinity, double.NegativeInfinity, double.NaN, 0.1, 123456789.123456789,
    ];

    private static StepRecord Sample(int step, RecordPhase phase)
    {
        var f64 = Awkward.Select(v => v + step).ToArray();
        var f32 = Awkward.Select(v => (double)(float)(v - step)).Append(float.Epsilon).Append(float.MaxValue).ToArray();
        return new StepRecord(step, phase)
            .Add(TensorKind.Forward, "l1", new Tensor([2, 7], f64, DType.Float64))
            .Add(TensorKind.BatchMean, "bn#1", new Tensor([16], f32, DType.Float32))
            .AddScalar(TensorKind.Loss, 2.302585092994046 + step, DType.Float64)
            .Add(TensorKind.Parameter, "l1.weight", new Tensor([0, 3], [], DType.Float32));
    }

    private static void AssertBitwiseEqual(StepRecord actual, StepRecord expected)
    {
        Assert.That((actual.Step, actual.Phase), Is.EqualTo((expected.Step, expected.Phase)));
        Assert.That(actual.Entries.Select(e => e.Key), Is.EqualTo(expected.Entries.Select(e => e.Key)));
        for (int i = 0; i < expected.Entries.Count; i++)
        {
            var (a, e) = (actual.Entries[i].Value, expected.Entries[i].Value);
            Assert.That(a.DType, Is.EqualTo(e.DType));
            Assert.That(a.Shape, Is.EqualTo(e.Shape));
            Assert.That(a.Data.Select(BitConverter.DoubleToInt64Bits), Is.EqualTo(e.Data.Select(BitConverter.DoubleToInt64Bits)), actual.Entries[i].Key.ToString());
        }
    }

    [Test]
    public void Records_read_back_bit_for_bit_in_float32_and_float64()
    {
        using var dir = new TempDirectory();
        var written = new[] { Sample(0, RecordPhase.Initial), Sample(1, RecordPhase.Train), Sample(1, RecordPhase.Eval), Sample(2, RecordPhase.Train) };
        using (var writer = TraceWriter.Create(dir.Path, Header()))
        {
            foreach (var r in written) writer.Write(r);
            writer.UpdateHeader(h => h with { Status = RunStatus.Completed, StepsCompleted = 2, Seconds = 0.5 });
        }
        var reader = TraceReader.Open(dir.Path);
        Assert.That(reader.Header.Status, Is.EqualTo(RunStatus.Completed));
        Assert.That(reader.Header.StepsCompleted, Is.EqualTo(2));
        Assert.That(reader.Header.Version, Is.EqualTo(TraceWriter.FormatVersion));
        Assert.That(reader.Header.Mismatches.Single().Setting, Is.EqualTo("$.optimizer.epsilonForm"));
        var read = reader.Records().ToList();
        Assert.That(read, Has.Count.EqualTo(written.Length));
        for (int i = 0; i < written.Length; i++) AssertBitwiseEqual(read[i], written[i]);
    }

    [Test]
    public void The_tensor_file_is_little_endian_values_in_each_tensors_dtype()
    {
        using var dir = new TempDirectory();
        using (var writer = TraceWriter.Create(dir.Path, Header()))
            writer.Write(new StepRecord(1, RecordPhase.Train)
                .Add(TensorKind.Forward, "a", new Tensor([2], [1.5, -2], DType.Float32))
                .AddScalar(TensorKind.Loss, 0.25, DType.Float64));
        var bytes = File.ReadAllBytes(Path.Combine(dir.Path, "tensors.bin"));
        Assert.That(bytes, Is.EqualTo(new byte[] { 0, 0, 0xC0, 0x3F, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0xD0, 0x3F }));
        var line = JsonNode.Parse(File.ReadAllLines(Path.Combine(dir.Path, "records.jsonl")).Single())!;
        Assert.That(line.ToJsonString(), Is.EqualTo(
            """{"step":1,"phase":"train","entries":[{"kind":"forward","site":"a","dType":"float32","shape":[2],"offset":0},{"kind":"loss","site":"","dType":"float64","shape":[],"offset":8}]}"""));
    }

    [Test]
    public void Records_are_readable_while_the_writer_is_still_open()
    {
        using var dir = new TempDirectory();
        using var writer = TraceWriter.Create(dir.Path, Header());
        writer.Write(Sample(0, RecordPhase.Initial));
        writer.Write(Sample(1, RecordPhase.Train));
        writer.Flush();
        var reader = TraceReader.Open(dir.Path);
        Assert.That(reader.Header.Status, Is.EqualTo(RunStatus.Running));
        Assert.That(reader.Records().Select(r => r.Step), Is.EqualTo(new[] { 0, 1 }), "every record handed over is on disk after Flush");
    }

    [Test]
    public void A_torn_last_line_ends_the_records_without_an_error()
    {
        using var dir = new TempDirectory();
        using (var writer = TraceWriter.Create(dir.Path, Header()))
        {
            writer.Write(Sample(0, RecordPhase.Initial));
            writer.Write(Sample(1, RecordPhase.Train));
        }
        string records = Path.Combine(dir.Path, "records.jsonl");
        string last = File.ReadAllLines(records)[1];
        File.AppendAllText(records, last[..(last.Length / 2)]);
        Assert.That(TraceReader.Open(dir.Path).Records().Select(r => r.Step), Is.EqualTo(new[] { 0, 1 }));
    }

    [Test]
    public void A_record_whose_tensor_bytes_never_reached_the_disk_ends_the_records()
    {
        using var dir = new TempDirectory();
        using (var writer = TraceWriter.Create(dir.Path, Header()))
        {
            writer.Write(Sample(0, RecordPhase.Initial));
            writer.Write(Sample(1, RecordPhase.Train));
        }
        string tensors = Path.Combine(dir.Path, "tensors.bin");
        using (var f = new FileStream(tensors, FileMode.Open)) f.SetLength(f.Length - 1);
        Assert.That(TraceReader.Open(dir.Path).Records().Select(r => r.Step), Is.EqualTo(new[] { 0 }));
    }

    [Test]
    public void A_trace_of_another_format_version_is_rejected_with_both_versions_named()
    {
        using var dir = new TempDirectory();
        using (TraceWriter.Create(dir.Path, Header()))
        {
        }
        string path = Path.Combine(dir.Path, "trace.json");
        var header = JsonNode.Parse(File.ReadAllText(path))!;
        header["version"] = TraceWriter.FormatVersion + 1;
        File.WriteAllText(path, header.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => TraceReader.Open(dir.Path))!;
        Assert.That(e.Message, Is.EqualTo($"{path}: trace format version {TraceWriter.FormatVersion + 1}; this build reads versions 1 to {TraceWriter.FormatVersion}"));
    }

    [Test]
    public void A_directory_without_a_trace_header_or_with_a_foreign_one_is_rejected()
    {
        using var dir = new TempDirectory();
        Assert.That(Assert.Throws<InvalidDataException>(() => TraceReader.Open(dir.Path))!.Message, Does.Contain("not a trace directory"));
        File.WriteAllText(dir.File("trace.json"), """{ "format": "other", "backend": "b", "dType": "float32", "scenario": "s", "specHash": "h" }""");
        Assert.That(Assert.Throws<InvalidDataException>(() => TraceReader.Open(dir.Path))!.Message, Does.Contain("not a parity trace header"));
        File.WriteAllText(dir.File("trace.json"), "{ not json");
        Assert.That(Assert.Throws<InvalidDataException>(() => TraceReader.Open(dir.Path))!.Message, Does.Contain("unreadable trace header"));
    }

    [TestCase("warmup")]
    [TestCase("initial, train")]
    [TestCase("1")]
    public void A_malformed_complete_line_is_invalid_data_naming_the_line(string phase)
    {
        using var dir = new TempDirectory();
        using (var writer = TraceWriter.Create(dir.Path, Header())) writer.Write(Sample(0, RecordPhase.Initial));
        string records = Path.Combine(dir.Path, "records.jsonl");
        File.AppendAllText(records, $$"""{"step":1,"phase":"{{phase}}","entries":[]}""" + "\n");
        var e = Assert.Throws<InvalidDataException>(() => TraceReader.Open(dir.Path).Records().ToList())!;
        Assert.That(e.Message, Is.EqualTo($"{records} line 2: unknown record phase '{phase}'"));
    }
}
