using System.Text.Json.Nodes;
using Parity.Tensors;
using Parity.Tests;

namespace Parity.Tracing.Tests;

/// <summary>
/// Damaged traces (docs/trace.md, "Validation"): each damage a disk, an editor or a second writer can do is refused
/// with an <see cref="InvalidDataException"/> naming the file, whether the trace was sealed or is still running.
/// </summary>
public sealed class TraceValidationTests
{
    private static readonly TraceHeader Header = new() { Backend = "reference-f32", DType = "float32", Scenario = "validation", SpecHash = "0123456789abcdef" };

    private static StepRecord Record(int step) => new StepRecord(step, step == 0 ? RecordPhase.Initial : RecordPhase.Train)
        .Add(TensorKind.Forward, "l1", new Tensor([2, 3], [1, 2, 3, 4, 5, 6], DType.Float32))
        .AddScalar(TensorKind.Loss, 0.5 + step, DType.Float32);

    /// <summary>A trace of three records, closed (sealed) or left running as by a killed process.</summary>
    private static string Write(TempDirectory dir, bool close)
    {
        using var writer = TraceWriter.Create(dir.Path, Header);
        for (int step = 0; step < 3; step++) writer.Write(Record(step));
        if (close) writer.UpdateHeader(h => h with { Status = RunStatus.Completed, StepsCompleted = 2 });
        return dir.Path;
    }

    private static string ReadAll(string trace)
    {
        var e = Assert.Throws<InvalidDataException>(() => TraceReader.Open(trace).Records().ToList())!;
        return e.Message;
    }

    [Test]
    public void A_closed_trace_carries_a_seal_of_both_files_and_reads_back()
    {
        using var dir = new TempDirectory();
        var reader = TraceReader.Open(Write(dir, close: true));
        Assert.That(reader.IsSealed, Is.True);
        Assert.That(reader.Unsealed, Is.Null);
        Assert.That(reader.Header.Seal!.Records, Is.EqualTo(3));
        Assert.That(reader.Header.Seal.TensorsLength, Is.EqualTo(new FileInfo(dir.File("tensors.bin")).Length));
        Assert.That(reader.Header.Seal.TensorsXxh3, Does.Match("^[0-9a-f]{16}$"));
        Assert.That(reader.Records().Select(r => r.Step), Is.EqualTo(new[] { 0, 1, 2 }));
    }

    [Test]
    public void A_running_trace_has_no_seal_and_says_so()
    {
        using var dir = new TempDirectory();
        var reader = TraceReader.Open(Write(dir, close: false));
        Assert.That(reader.IsSealed, Is.False);
        Assert.That(reader.Unsealed, Does.Contain("status running").And.Contain("no seal"));
        Assert.That(reader.Records().Count(), Is.EqualTo(3));
    }

    [TestCase("tensors.bin", 10, "tensors.bin: 10 bytes; the seal says 84 (truncated)")]
    [TestCase("records.jsonl", 0, "records.jsonl: 0 bytes; the seal says")]
    public void Truncating_a_sealed_file_is_refused_when_the_trace_opens(string file, int keep, string expected)
    {
        using var dir = new TempDirectory();
        string trace = Write(dir, close: true);
        using (var f = new FileStream(dir.File(file), FileMode.Open)) f.SetLength(keep);
        var e = Assert.Throws<InvalidDataException>(() => TraceReader.Open(trace))!;
        Assert.That(e.Message, Does.Contain(expected));
    }

    [TestCase("tensors.bin")]
    [TestCase("records.jsonl")]
    public void One_flipped_bit_in_a_sealed_file_is_refused(string file)
    {
        using var dir = new TempDirectory();
        string trace = Write(dir, close: true);
        var bytes = File.ReadAllBytes(dir.File(file));
        bytes[bytes.Length / 2] ^= 1;
        File.WriteAllBytes(dir.File(file), bytes);
        var e = Assert.Throws<InvalidDataException>(() => TraceReader.Open(trace))!;
        Assert.That(e.Message, Does.StartWith(dir.File(file)).And.Contain("do not match the seal"));
    }

    [Test]
    public void A_deleted_tensor_file_is_named()
    {
        using var dir = new TempDirectory();
        string trace = Write(dir, close: true);
        File.Delete(dir.File("tensors.bin"));
        Assert.That(Assert.Throws<InvalidDataException>(() => TraceReader.Open(trace))!.Message, Is.EqualTo($"{dir.File("tensors.bin")}: missing; the seal says 84 bytes"));
    }

    [Test]
    public void A_closed_header_stripped_of_its_seal_is_refused()
    {
        using var dir = new TempDirectory();
        string trace = Write(dir, close: true);
        var header = JsonNode.Parse(File.ReadAllText(dir.File("trace.json")))!.AsObject();
        header.Remove("seal");
        File.WriteAllText(dir.File("trace.json"), header.ToJsonString());
        Assert.That(Assert.Throws<InvalidDataException>(() => TraceReader.Open(trace))!.Message, Does.Contain("status completed but no seal"));
    }

    [TestCase("\"dType\": \"float32\"", "\"dType\": \"int8\"", "unknown dType 'int8'")]
    [TestCase("\"status\": \"completed\"", "\"status\": \"done\"", "unknown status 'done'")]
    [TestCase("\"backend\": \"reference-f32\"", "\"backend\": null", "no \"backend\"")]
    [TestCase("\"runtime\": {}", "\"runtime\": null", "\"runtime\" is not an object")]
    public void A_header_field_out_of_its_domain_is_named(string from, string to, string expected)
    {
        using var dir = new TempDirectory();
        string trace = Write(dir, close: true);
        string text = File.ReadAllText(dir.File("trace.json"));
        Assert.That(text, Does.Contain(from));
        File.WriteAllText(dir.File("trace.json"), text.Replace(from, to, StringComparison.Ordinal));
        Assert.That(Assert.Throws<InvalidDataException>(() => TraceReader.Open(trace))!.Message, Does.Contain(expected));
    }

    // Damage to a running trace (no seal to catch it): every complete line is checked as it streams.
    [TestCase("\"kind\":\"forward\"", "\"kind\":\"forwardz\"", "line 2: unknown tensor kind 'forwardz'")]
    [TestCase("\"offset\":24", "\"offset\":-8", "line 1: entry loss: starts at byte -8 of tensors.bin; the values before it end at byte 24")]
    [TestCase("\"shape\":[2,3]", "\"shape\":[2147483647,2147483647]", "line 1: entry forward:l1 of shape [2147483647,2147483647] is too large")]
    [TestCase("\"site\":\"\"", "\"site\":\"l1\"", "line 1: entry loss:l1 of shape []: loss is a scalar without a site")]
    public void A_damaged_line_of_a_running_trace_is_named(string from, string to, string expected)
    {
        using var dir = new TempDirectory();
        string trace = Write(dir, close: false);
        var lines = File.ReadAllLines(dir.File("records.jsonl"));
        int line = expected.Contains("line 2") ? 1 : 0;
        Assert.That(lines[line], Does.Contain(from));
        lines[line] = lines[line].Replace(from, to, StringComparison.Ordinal);
        File.WriteAllLines(dir.File("records.jsonl"), lines);
        Assert.That(ReadAll(trace), Does.StartWith($"{dir.File("records.jsonl")} {expected}"));
    }

    [Test]
    public void A_garbage_line_in_the_middle_of_a_running_trace_is_not_mistaken_for_a_torn_end()
    {
        using var dir = new TempDirectory();
        string trace = Write(dir, close: false);
        var lines = File.ReadAllLines(dir.File("records.jsonl")).ToList();
        lines.Insert(1, "#$%^ not json");
        File.WriteAllLines(dir.File("records.jsonl"), lines);
        Assert.That(ReadAll(trace), Does.StartWith($"{dir.File("records.jsonl")} line 2: not a record line"));
    }

    [Test]
    public void A_records_file_without_its_tensor_file_is_named()
    {
        using var dir = new TempDirectory();
        string trace = Write(dir, close: false);
        File.Delete(dir.File("tensors.bin"));
        Assert.That(ReadAll(trace), Is.EqualTo($"{dir.File("tensors.bin")}: missing, while records.jsonl exists"));
    }

    [Test]
    public void A_version_1_trace_is_still_read_and_reported_as_unsealed()
    {
        using var dir = new TempDirectory();
        string trace = Write(dir, close: true);
        var header = JsonNode.Parse(File.ReadAllText(dir.File("trace.json")))!.AsObject();
        header.Remove("seal");
        header["version"] = 1;
        File.WriteAllText(dir.File("trace.json"), header.ToJsonString());
        var reader = TraceReader.Open(trace);
        Assert.That(reader.Unsealed, Does.Contain("format version 1"));
        Assert.That(reader.Records().Count(), Is.EqualTo(3));
    }

    [Test]
    public void A_path_that_is_not_a_trace_directory_is_named()
    {
        using var dir = new TempDirectory();
        Assert.That(Assert.Throws<InvalidDataException>(() => TraceReader.Open(dir.File("gone")))!.Message, Does.Contain("does not exist"));
        File.WriteAllText(dir.File("plain"), "x");
        Assert.That(Assert.Throws<InvalidDataException>(() => TraceReader.Open(dir.File("plain")))!.Message, Does.Contain("it is a file"));
    }
}
