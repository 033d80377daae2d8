using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.Workers.Tests;

/// <summary>
/// Broken workers (faulty/) driven through <see cref="ScenarioRunner"/>: each failure must end as a
/// Failed run whose message names the cause, with the steps before it kept in the trace.
/// </summary>
public class WorkerFaultTests
{
    private const int Steps = 4;
    internal const int FailingStep = 3;
    internal static readonly Plan FaultPlan = Planner.Build(SpecLoader.LoadFile(TestPaths.Fixture("synthetic-mlp-bn.json")), Steps);
    private string _traces = "";

    [SetUp]
    public void CreateTraceDirectory() => _traces = Directory.CreateTempSubdirectory("parity-fault-").FullName;

    [TearDown]
    public void DeleteTraceDirectory() => Directory.Delete(_traces, recursive: true);

    private static WorkerBackend Fake(string fault, int protocol = 1) =>
        new("fake", ["/usr/bin/python3", TestPaths.Faulty("fake-worker.py"), fault, FailingStep.ToString()],
            environment: new Dictionary<string, string> { ["FAKE_PROTOCOL"] = protocol.ToString() }) { HandshakeTimeout = TimeSpan.FromSeconds(10) };

    private BackendRun Run(IBackend backend, TimeSpan? timeout = null) =>
        ScenarioRunner.Run(FaultPlan, backend, new BackendOptions(DType.Float32, Timeout: timeout ?? TimeSpan.FromSeconds(20)), _traces);

    private void AssertFailedAtStep(BackendRun run, params string[] fragments)
    {
        Assert.That(run.Status, Is.EqualTo(RunStatus.Failed), run.Message);
        Assert.That(run.Message, Does.StartWith($"at step {FailingStep}:"));
        foreach (string f in fragments) Assert.That(run.Message, Does.Contain(f));
        Assert.That(run.StepsCompleted, Is.EqualTo(FailingStep - 1));
        var reader = TraceReader.Open(_traces);
        var trainSteps = reader.Records().Where(r => r.Phase == RecordPhase.Train).Select(r => r.Step).ToList();
        Assert.That(trainSteps, Is.EqualTo(Enumerable.Range(1, FailingStep - 1)), "the trace keeps the steps before the failure");
        Assert.That(reader.Header.Status, Is.EqualTo(RunStatus.Failed));
    }

    [Test]
    public void A_healthy_fake_worker_completes_every_step()
    {
        var run = Run(Fake("ok"));
        Assert.That(run.Status, Is.EqualTo(RunStatus.Completed), run.Message);
        Assert.That(run.StepsCompleted, Is.EqualTo(Steps));
        Assert.That(run.Runtime["fake"], Is.EqualTo("yes"));
    }

    [Test]
    public void A_protocol_1_worker_is_never_asked_for_optimizer_state_and_runs_as_before()
    {
        // The fake worker answers an error to a capture naming optimizerStep or optimizerSlot, which protocol 1 lacks.
        var backend = Fake("ok");
        Assert.That(backend.Describe().Capabilities.OptimizerState, Is.False);
        var run = Run(backend);
        Assert.That(run.Status, Is.EqualTo(RunStatus.Completed), run.Message);
        var records = TraceReader.Open(_traces).Records().ToList();
        Assert.That(records.Where(r => r.Phase == RecordPhase.Train), Has.Exactly(Steps).Items);
        Assert.That(records.SelectMany(r => r.Entries).Where(e => e.Key.Kind.IsOptimizerState()), Is.Empty);

        // Asked directly for everything, the session still asks the worker only for what protocol 1 has.
        using var session = Fake("ok").Open(FaultPlan, new BackendOptions(DType.Float32));
        session.ReadState(0);
        var step = session.Step(1, FaultPlan.BatchFor(1), CaptureRequest.Everything);
        Assert.That(step.Find(TensorKind.Parameter, "l1.weight"), Is.Not.Null);
        Assert.That(step.Find(TensorKind.OptimizerStep), Is.Null);
    }

    [Test]
    public void A_protocol_2_worker_reports_its_optimizer_state_in_every_state_it_gives()
    {
        var backend = Fake("ok", protocol: 2);
        Assert.That(backend.Describe().Capabilities.OptimizerState, Is.True);
        var run = Run(backend);
        Assert.That(run.Status, Is.EqualTo(RunStatus.Completed), run.Message);
        var layout = TraceLayout.Of(FaultPlan);
        var records = TraceReader.Open(_traces).Records().Where(r => r.Phase != RecordPhase.Eval).ToList();
        Assert.That(records, Has.Count.EqualTo(Steps + 1));
        foreach (var record in records)
        {
            Assert.That(layout.HoldsState(record), Is.True, $"{record.Phase} {record.Step}");
            Assert.That(record.Find(TensorKind.OptimizerStep)!.Data, Is.EqualTo(new[] { (double)record.Step }));
        }
    }

    [Test]
    public void A_protocol_2_answer_without_the_optimizer_state_names_what_it_lacks()
    {
        var run = Run(Fake("noslots", protocol: 2));
        AssertFailedAtStep(run, "its step 3 answer lacks optimizerStep, optimizerSlot:l1.weight/m, optimizerSlot:l1.weight/v");
    }

    [Test]
    public void An_update_count_that_is_not_a_whole_number_is_refused()
    {
        var run = Run(Fake("badcount", protocol: 2));
        AssertFailedAtStep(run, "its step 3 answer has optimizerStep 2.5; expected the number of updates done, a whole number >= 0");
    }

    [Test]
    public void A_crash_mid_step_reports_the_exit_code_and_the_last_stderr_lines()
    {
        var run = Run(Fake("crash"));
        AssertFailedAtStep(run, "exited with code 7 during 'step'", "fake worker: simulated crash in step 3");
    }

    [Test]
    public void A_hanging_worker_is_killed_after_the_request_timeout()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var run = Run(Fake("hang"), TimeSpan.FromSeconds(1.5));
        AssertFailedAtStep(run, "no answer to 'step' within 1.5 s", "killed", "fake worker: hanging in step 3");
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(15)));
    }

    [Test]
    public void Garbage_on_stdout_is_reported_with_the_offending_line()
    {
        var run = Run(Fake("garbage"));
        AssertFailedAtStep(run, "not protocol JSON", "'Epoch 1/1 - loss: 0.5'", "log to stderr");
    }

    [Test]
    public void A_partial_line_before_exit_is_reported_as_such()
    {
        var run = Run(Fake("partial"));
        AssertFailedAtStep(run, "partial line on stdout");
    }

    [Test]
    public void NaN_in_a_forward_output_with_a_finite_loss_is_refused()
    {
        var run = Run(Fake("nan"));
        AssertFailedAtStep(run, "NaN at element 0 of forward:l1", "while the loss is finite");
    }

    [Test]
    public void Malformed_base64_names_the_tensor()
    {
        var run = Run(Fake("base64"));
        AssertFailedAtStep(run, "malformed tensor", "loss in its step 3 answer", "not valid base64");
    }

    [Test]
    public void A_wrong_byte_count_names_the_tensor_and_both_sizes()
    {
        var run = Run(Fake("bytes"));
        AssertFailedAtStep(run, "loss in its step 3 answer holds 3 bytes but shape [] of float32 needs 4");
    }

    [Test]
    public void An_error_answer_carries_the_worker_message()
    {
        var run = Run(Fake("error"));
        AssertFailedAtStep(run, "refused 'step'", "simulated framework error: out of memory");
    }

    [Test]
    public void A_wrong_protocol_version_makes_the_worker_unavailable_with_the_reason()
    {
        var backend = Fake("version");
        var description = backend.Describe();
        Assert.That(description.Available, Is.False);
        Assert.That(description.Reason, Does.Contain("speaks worker protocol 99; this harness speaks protocol 1 or 2"));
        var run = Run(Fake("version"));
        Assert.That(run.Status, Is.EqualTo(RunStatus.Unavailable));
        Assert.That(run.Message, Does.Contain("protocol 99"));
        var ex = Assert.Throws<BackendException>(() => Fake("version").Open(FaultPlan, new BackendOptions(DType.Float32)));
        Assert.That(ex!.Message, Does.Contain("protocol 99"));
    }

    [Test]
    public void A_worker_that_exits_before_the_handshake_reports_its_stderr()
    {
        var ex = Assert.Throws<BackendException>(() => Fake("noready").Open(FaultPlan, new BackendOptions(DType.Float32)));
        Assert.That(ex!.Message, Does.Contain("exited with code 4 during the ready handshake"));
        Assert.That(ex.Message, Does.Contain("fake worker: refusing to start"));
    }

    [Test]
    public void A_banner_instead_of_the_ready_line_is_reported()
    {
        var backend = new WorkerBackend("banner", [TestPaths.Faulty("garbage-worker.sh")]);
        var description = backend.Describe();
        Assert.That(description.Available, Is.False);
        Assert.That(description.Reason, Does.Contain("not protocol JSON during the ready handshake"));
        Assert.That(description.Reason, Does.Contain("'Using TensorFlow backend.'"));
    }

    [Test]
    public void A_missing_program_is_reported_before_anything_runs()
    {
        var backend = WorkerRegistry.FromCommandLine("ghost", "./no/such/worker --flag");
        var run = Run(backend);
        Assert.That(run.Status, Is.EqualTo(RunStatus.Unavailable));
        Assert.That(run.Message, Does.Contain("worker 'ghost': the program '").And.Contain("no/such/worker' does not exist"));
        var onPath = WorkerRegistry.FromCommandLine("ghost", "no-such-program-anywhere");
        Assert.That(onPath.Describe().Reason, Does.Contain("'no-such-program-anywhere' is not on PATH"));
    }

    [Test]
    public void A_program_without_the_executable_bit_is_named_with_the_fix()
    {
        var backend = new WorkerBackend("noexec", [TestPaths.Faulty("not-executable-worker.py")]);
        var ex = Assert.Throws<BackendException>(() => backend.Open(FaultPlan, new BackendOptions(DType.Float32)));
        Assert.That(ex!.Message, Does.Contain("is not executable (chmod +x it"));
    }

    [Test]
    public void A_dtype_the_worker_does_not_offer_is_refused_when_opening()
    {
        var backend = new WorkerBackend("f32only", ["/usr/bin/python3", TestPaths.Faulty("fake-worker.py"), "ok"]);
        using var session = backend.Open(FaultPlan, new BackendOptions(DType.Float64));
        Assert.That(session.ReadState(0).Entries, Is.Not.Empty, "the fake worker offers float64");
        var ex = Assert.Throws<BackendException>(() => backend.Open(FaultPlan, new BackendOptions(DType.Float32, Device: "cuda")));
        Assert.That(ex!.Message, Does.Contain("has no device 'cuda'; it offers cpu"));
    }

    [Test]
    public void Dispose_ends_a_hanging_worker_process()
    {
        var backend = Fake("hang");
        var session = backend.Open(FaultPlan, new BackendOptions(DType.Float32, Timeout: TimeSpan.FromSeconds(1)));
        var ex = Assert.Throws<BackendException>(() => session.Step(FailingStep, FaultPlan.BatchFor(FailingStep), FaultPlan.CaptureFor(FailingStep)));
        Assert.That(ex!.Message, Does.Contain("no answer"));
        var again = Assert.Throws<BackendException>(() => session.Step(FailingStep, FaultPlan.BatchFor(FailingStep), FaultPlan.CaptureFor(FailingStep)));
        Assert.That(again!.Message, Is.EqualTo(ex.Message), "a dead worker keeps failing with the first cause");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        session.Dispose();
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
    }

    [Test]
    public void Large_batches_travel_as_files_when_above_the_threshold()
    {
        var env = new Dictionary<string, string> { ["FAKE_REQUIRE_FILE"] = "1" };
        var inline = Run(new WorkerBackend("fake", ["/usr/bin/python3", TestPaths.Faulty("fake-worker.py"), "ok"], environment: env));
        Assert.That(inline.Status, Is.EqualTo(RunStatus.Failed), "below the default threshold the batch is inline");
        Assert.That(inline.Message, Does.Contain("inputs came inline"));
        var viaFile = Run(new WorkerBackend("fake", ["/usr/bin/python3", TestPaths.Faulty("fake-worker.py"), "ok"], environment: env) { FileThresholdBytes = 16 });
        Assert.That(viaFile.Status, Is.EqualTo(RunStatus.Completed), viaFile.Message);
    }
}
