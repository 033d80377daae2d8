using System.Diagnostics;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Testing;
using Parity.Tracing;

namespace Parity.Backends.Workers.Tests;

/// <summary>
/// Workers that attack the harness (faulty/fake-worker.py, hostile modes): files that are not theirs to name, lines
/// that never end, processes left behind. Each must end as a failed run that says what happened, with the steps
/// before it kept, within the request timeout, and with no process of the worker left.
/// </summary>
[NonParallelizable]
public class HostileWorkerTests
{
    private const int Steps = 4;
    private const int FailingStep = 3;
    private static readonly Plan FaultPlan = Planner.Build(SpecLoader.LoadFile(TestPaths.Fixture("synthetic-mlp-bn.json")), Steps);
    private string _traces = "";
    private string _marker = "";

    [SetUp]
    public void CreateTraceDirectory()
    {
        _traces = Directory.CreateTempSubdirectory("parity-hostile-").FullName;
        _marker = Random.Shared.Next(100_000, 999_999).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    [TearDown]
    public void DeleteTraceDirectory()
    {
        Directory.Delete(_traces, recursive: true);
        foreach (string leftover in Directory.GetFiles(Path.GetTempPath(), "parity-fake-outside-*.bin")) File.Delete(leftover);
    }

    private WorkerBackend Fake(string fault, long? maxLineBytes = null) =>
        new("fake", ["/usr/bin/python3", TestPaths.Faulty("fake-worker.py"), fault, FailingStep.ToString()], environment: new Dictionary<string, string> { ["FAKE_MARKER"] = _marker })
        {
            HandshakeTimeout = TimeSpan.FromSeconds(10),
            MaxLineBytes = maxLineBytes ?? WorkerProtocol.MaxLineBytes,
        };

    private BackendRun Run(IBackend backend, double timeoutSeconds = 20) =>
        ScenarioRunner.Run(FaultPlan, backend, new BackendOptions(DType.Float32, Timeout: TimeSpan.FromSeconds(timeoutSeconds)), _traces);

    private void AssertFailedAtStep(BackendRun run, params string[] fragments)
    {
        Assert.That(run.Status, Is.EqualTo(RunStatus.Failed), run.Message);
        Assert.That(run.Message, Does.StartWith($"at step {FailingStep}:"));
        foreach (string f in fragments) Assert.That(run.Message, Does.Contain(f));
        var reader = TraceReader.Open(_traces);
        Assert.That(reader.Records().Count(r => r.Phase == RecordPhase.Train), Is.EqualTo(FailingStep - 1), "the trace keeps the steps before the failure");
    }

    /// <summary>Processes whose command line carries this test's sleep argument, after giving a kill time to land.</summary>
    private List<int> Leftovers()
    {
        var found = new List<int>();
        for (int attempt = 0; attempt < 50; attempt++)
        {
            found = ProcessTable.WithArgument("600." + _marker);
            if (found.Count == 0) break;
            Thread.Sleep(100);
        }
        return found;
    }

    [Test]
    public void A_tensor_file_naming_dev_zero_is_refused_without_reading_it()
    {
        AssertFailedAtStep(Run(Fake("devzero")), "malformed tensor", "'/dev/zero' is outside the session's exchange directory");
    }

    [Test]
    public void A_FIFO_in_the_exchange_directory_is_refused_without_blocking()
    {
        var clock = Stopwatch.StartNew();
        AssertFailedAtStep(Run(Fake("fifo")), "malformed tensor", "is a FIFO, not a regular file");
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), "within the request timeout");
    }

    [Test]
    public void A_symbolic_link_in_the_exchange_directory_is_refused()
    {
        AssertFailedAtStep(Run(Fake("symlink")), "malformed tensor", "is a symbolic link");
    }

    [Test]
    public void A_regular_file_outside_the_exchange_directory_is_refused()
    {
        AssertFailedAtStep(Run(Fake("outside")), "malformed tensor", "is outside the session's exchange directory");
    }

    [Test]
    public void A_tensor_file_shorter_than_its_shape_is_refused_naming_both_sizes()
    {
        AssertFailedAtStep(Run(Fake("short")), "malformed tensor", "holds 2 bytes but its shape and dtype need 4");
    }

    [TestCase("hugeshape", "too large for any tensor")]
    [TestCase("negshape", "has an invalid shape '[-1]'")]
    public void A_shape_no_tensor_can_have_is_refused_before_anything_is_allocated(string fault, string expected)
    {
        AssertFailedAtStep(Run(Fake(fault)), "malformed tensor", expected);
    }

    [Test]
    public void A_line_that_never_ends_is_cut_at_the_cap_and_named()
    {
        AssertFailedAtStep(Run(Fake("endless", maxLineBytes: 1 << 20)), "stdout line longer than the cap of 1048576 bytes", "send large tensors as files", "(more than ");
    }

    [Test]
    public void A_long_garbage_line_is_reported_with_its_real_length()
    {
        AssertFailedAtStep(Run(Fake("bigline")), "not protocol JSON", $"({100 << 20} bytes)");
    }

    [Test]
    public void Valid_JSON_too_deep_for_the_protocol_is_called_so()
    {
        AssertFailedAtStep(Run(Fake("deep")), "nested 71 levels deep", "at most 64 levels");
    }

    [Test]
    public void A_number_where_build_expects_tensor_kind_names_names_the_field()
    {
        var run = Run(Fake("affects"));
        Assert.That(run.Status, Is.EqualTo(RunStatus.Failed));
        Assert.That(run.Message, Does.Contain("while building the model").And.Contain("'1' in \"affects\""));
    }

    [Test]
    public void A_number_among_the_ready_dtypes_names_the_field()
    {
        var description = Fake("dtypes").Describe();
        Assert.That(description.Available, Is.False);
        Assert.That(description.Reason, Does.Contain("unknown dtype '1' in capabilities.dtypes"));
    }

    [Test]
    public void The_handshake_timeout_message_points_at_the_handshake_limit()
    {
        var backend = new WorkerBackend("silent", ["/bin/sleep", "30"]) { HandshakeTimeout = TimeSpan.FromSeconds(1) };
        var description = backend.Describe();
        Assert.That(description.Reason, Does.Contain("WorkerBackend.HandshakeTimeout").And.Not.Contain("per-request"));
    }

    [Test]
    public void A_worker_that_exits_while_a_child_holds_its_stdout_is_reported_with_its_exit_code_and_the_child_is_killed()
    {
        var clock = Stopwatch.StartNew();
        AssertFailedAtStep(Run(Fake("orphan"), timeoutSeconds: 60), "exited with code 7 during 'step'", "exiting with a child holding stdout");
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), "the exit is seen, not only the end of stdout");
        Assert.That(Leftovers(), Is.Empty, "the child holding stdout was killed");
    }

    [TestCase("spawnhang")]
    [TestCase("setsid")]
    public void A_timed_out_worker_is_killed_with_its_children_in_and_out_of_its_process_group(string fault)
    {
        AssertFailedAtStep(Run(Fake(fault), timeoutSeconds: 2), "no answer to 'step' within 2 s");
        Assert.That(Leftovers(), Is.Empty);
    }

    [Test]
    public void Exchange_directories_of_dead_processes_are_removed_when_a_session_starts()
    {
        // A process id that cannot exist (above pid_max) plays the run killed with -9.
        string stale = Path.Combine(Path.GetTempPath(), "parity-worker-99999999-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(stale);
        File.WriteAllText(Path.Combine(stale, "request-x.bin"), "left over");
        using var session = new Protocol.ExchangeDirectory();
        Assert.That(Directory.Exists(stale), Is.False);
    }
}
