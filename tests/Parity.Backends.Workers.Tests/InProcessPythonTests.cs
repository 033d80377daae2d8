using Parity.Backends.PythonNet;
using Parity.Harness;
using Parity.Planning;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.Workers.Tests;

/// <summary>
/// torch-pythonnet against the torch-python worker it shares its adapter with, and its failures: a Python exception in
/// a step, an interpreter without PyTorch, an interpreter that does not exist. Each failure is a result naming the cause
/// with the Python traceback's last lines, and the backends beside it still finish.
/// </summary>
public class InProcessPythonTests
{
    // The worker fault tests' plan: its steps up to the failing one, then one more.
    private static readonly Plan Plan = WorkerFaultTests.FaultPlan;
    private static int Steps => Plan.TotalSteps;
    private const int FailingStep = WorkerFaultTests.FailingStep;
    private string _runs = "";

    /// <summary>Each test's own run directory under one removed at the end.</summary>
    private string RunDirectory => Directory.CreateDirectory(Path.Combine(_runs, TestContext.CurrentContext.Test.Name)).FullName;

    [OneTimeSetUp]
    public void RequireTorchPythonNet()
    {
        var description = PythonAdapterBackend.TorchPythonNet().Describe();
        if (!description.Available) Assert.Ignore($"torch-pythonnet cannot run here: {description.Reason}");
        _runs = Directory.CreateTempSubdirectory("parity-pythonnet-").FullName;
    }

    [OneTimeTearDown]
    public void DeleteRunDirectories()
    {
        if (_runs.Length > 0) Directory.Delete(_runs, recursive: true);
    }

    private static PythonAdapterBackend Failing() =>
        new("failing-pythonnet", TestPaths.Faulty("failing_adapter.py"), WorkerRegistry.TorchPythonInterpreter);

    private static PythonAdapterBackend Hanging() =>
        new("hanging-pythonnet", TestPaths.Faulty("hanging_adapter.py"), WorkerRegistry.TorchPythonInterpreter);

    private static PythonAdapterBackend Lying() =>
        new("lying-pythonnet", TestPaths.Faulty("lying_adapter.py"), WorkerRegistry.TorchPythonInterpreter);

    private static PythonAdapterBackend WithoutTorch() =>
        new("no-torch-pythonnet", WorkerRegistry.TorchAdapter, TestPaths.Faulty("python-without-site-packages.sh"));

    private static PythonAdapterBackend Nowhere() =>
        new("nowhere-pythonnet", WorkerRegistry.TorchAdapter, "/no/such/python3");

    private BackendRun Run(IBackend backend) => ScenarioRunner.Run(Plan, backend, new BackendOptions(DType.Float32), RunDirectory);

    /// <summary>Every record a session of <paramref name="backend"/> answers over <paramref name="plan"/>, everything captured.</summary>
    private static List<StepRecord> RecordsOf(IBackend backend, Plan plan)
    {
        using var session = backend.Open(plan, new BackendOptions(DType.Float32));
        var records = new List<StepRecord> { session.ReadState(0) };
        for (int step = 1; step <= plan.TotalSteps; step++)
        {
            records.Add(session.Step(step, plan.BatchFor(step), CaptureRequest.Everything));
            if (plan.IsEvalStep(step)) records.Add(session.Evaluate(step, plan.EvalBatch(), CaptureRequest.Everything));
        }
        return records;
    }

    /// <summary>Asserts the same records, keys and shapes, and every value bit for bit; returns how many tensors it compared.</summary>
    private static int AssertBitIdentical(List<StepRecord> expected, List<StepRecord> actual)
    {
        Assert.That(actual.Select(r => (r.Step, r.Phase)), Is.EqualTo(expected.Select(r => (r.Step, r.Phase))));
        int tensors = 0;
        foreach (var (w, p) in expected.Zip(actual))
        {
            Assert.That(p.Entries.Select(e => e.Key), Is.EqualTo(w.Entries.Select(e => e.Key)), $"step {w.Step} {w.Phase}");
            foreach (var (a, b) in w.Entries.Zip(p.Entries))
            {
                Assert.That(b.Value.Shape, Is.EqualTo(a.Value.Shape), $"{a.Key} at step {w.Step}");
                Assert.That(b.Value.Data.Select(BitConverter.DoubleToInt64Bits), Is.EqualTo(a.Value.Data.Select(BitConverter.DoubleToInt64Bits)), $"{a.Key} at step {w.Step} {w.Phase}");
                tensors++;
            }
        }
        return tensors;
    }

    [Test]
    public void The_worker_and_the_in_process_backend_trace_bit_identical_tensors()
    {
        // Bit for bit: the same library running the same adapter on the same bytes.
        int tensors = AssertBitIdentical(RecordsOf(WorkerRegistry.TorchPython(), Plan), RecordsOf(PythonAdapterBackend.TorchPythonNet(), Plan));
        Assert.That(tensors, Is.GreaterThan(200));
    }

    [Test]
    public void An_adapter_whose_answers_change_order_every_step_is_read_right_past_the_layouts_the_host_remembers()
    {
        // 70 steps, each answer in an order of its own: more layouts than either side keeps (64), every one described anew.
        var plan = Planner.Build(Plan.Spec with { Name = "reorder" }, 70);
        AssertBitIdentical(RecordsOf(PythonAdapterBackend.TorchPythonNet(), plan), RecordsOf(Lying(), plan));
    }

    [Test]
    public void A_python_exception_in_a_step_fails_the_run_there_with_the_traceback_tail()
    {
        var run = Run(Failing());
        Assert.That(run.Status, Is.EqualTo(RunStatus.Failed), run.Message);
        Assert.That(run.Message, Does.StartWith($"at step {FailingStep}:"));
        Assert.That(run.Message, Does.Contain("RuntimeError: simulated framework error at step 3"));
        Assert.That(run.Message, Does.Contain("traceback line(s)").And.Contain("failing_adapter.py").And.Contain("in check_step"));
        Assert.That(run.StepsCompleted, Is.EqualTo(FailingStep - 1));
        var trainSteps = TraceReader.Open(RunDirectory).Records().Where(r => r.Phase == RecordPhase.Train).Select(r => r.Step);
        Assert.That(trainSteps, Is.EqualTo(Enumerable.Range(1, FailingStep - 1)), "the trace keeps the steps before the failure");
    }

    // The adapter answers two right steps, then from step 3 on the lie its spec's name asks for: each new layout of an
    // answer is checked before its arrays are copied, however many steps were answered before it.
    [TestCase("shape", "answered forward:l1 of shape [63,32], which this model does not have")]
    [TestCase("missing", "it lacks parameterGradient:l1.weight")]
    [TestCase("kind", "it answered an unknown tensor kind 'bogusKind'")]
    [TestCase("twice", "it answered loss twice")]
    public void An_adapter_that_answers_a_wrong_record_fails_the_run_at_that_step(string lie, string fragment)
    {
        var plan = Planner.Build(Plan.Spec with { Name = lie }, Steps);
        var run = ScenarioRunner.Run(plan, Lying(), new BackendOptions(DType.Float32), RunDirectory);
        Assert.That(run.Status, Is.EqualTo(RunStatus.Failed), run.Message);
        Assert.That(run.Message, Does.StartWith("at step 3:").And.Contain("answered 'step 3' wrongly").And.Contain(fragment));
        Assert.That(run.StepsCompleted, Is.EqualTo(2));
    }

    [Test]
    public void An_interpreter_without_pytorch_is_unavailable_with_the_import_error()
    {
        var run = Run(WithoutTorch());
        Assert.That(run.Status, Is.EqualTo(RunStatus.Unavailable));
        Assert.That(run.Message, Does.Contain("cannot import the adapter torch_adapter.py").And.Contain("traceback line(s)")
            .And.Contain("ImportError: cannot import PyTorch"));
        var ex = Assert.Throws<BackendException>(() => WithoutTorch().Open(Plan, new BackendOptions(DType.Float32)));
        Assert.That(ex!.Message, Does.Contain("cannot import PyTorch"));
    }

    [Test]
    public void An_interpreter_that_does_not_exist_is_unavailable_naming_the_path_and_the_variable()
    {
        var run = Run(Nowhere());
        Assert.That(run.Status, Is.EqualTo(RunStatus.Unavailable));
        Assert.That(run.Message, Does.Contain("the Python interpreter '/no/such/python3' does not exist").And.Contain(WorkerRegistry.TorchPythonVariable));
    }

    [Test]
    public void Failing_in_process_backends_leave_the_others_finished_and_every_report_file_written()
    {
        var registry = StandardBackends.Create(inProcess: r => r
            .Add(PythonAdapterBackend.TorchPythonNetName, PythonAdapterBackend.TorchPythonNet)
            .Add("failing-pythonnet", Failing)
            .Add("no-torch-pythonnet", WithoutTorch)
            .Add("nowhere-pythonnet", Nowhere));
        var report = RunSession.Execute(new RunRequest(Plan.Spec, null,
            ["reference-f32", "failing-pythonnet", "no-torch-pythonnet", "nowhere-pythonnet", PythonAdapterBackend.TorchPythonNetName], "reference", RunDirectory, Steps: Steps), registry);
        foreach (string file in new[] { "report.json", "report.html", "junit.xml", "summary.md" })
            Assert.That(File.Exists(Path.Combine(RunDirectory, file)), Is.True, file);
        string json = File.ReadAllText(Path.Combine(RunDirectory, "report.json"));
        Assert.That(json, Does.Contain("simulated framework error at step 3").And.Contain("cannot import PyTorch").And.Contain("/no/such/python3"));
        var finished = report.Comparisons.Where(c => c.Backend is "reference-f32" or PythonAdapterBackend.TorchPythonNetName).ToList();
        Assert.That(finished.Select(c => c.Verdict.ToString().ToLowerInvariant()), Is.All.EqualTo("agree"), string.Join("; ", finished.Select(c => c.Message)));
    }

    [Test]
    public void A_python_call_that_never_returns_is_interrupted_at_the_time_limit_and_the_others_finish()
    {
        // PyTorch is imported into this process first, without a limit: the import alone can take seconds on a loaded
        // machine. One instance throughout, so its interpreter is probed once.
        var torch = PythonAdapterBackend.TorchPythonNet();
        torch.Open(Plan, new BackendOptions(DType.Float32)).Dispose();
        var registry = StandardBackends.Create(inProcess: r => r
            .Add("hanging-pythonnet", Hanging)
            .Add(PythonAdapterBackend.TorchPythonNetName, () => torch));
        var limit = TimeSpan.FromSeconds(2);
        var report = RunSession.Execute(new RunRequest(Plan.Spec, null, ["reference-f32", "hanging-pythonnet", PythonAdapterBackend.TorchPythonNetName],
            "reference", RunDirectory, Steps: Steps, Timeout: limit), registry);
        foreach (string file in new[] { "report.json", "report.html", "junit.xml", "summary.md" })
            Assert.That(File.Exists(Path.Combine(RunDirectory, file)), Is.True, file);
        var hung = report.Comparisons.Single(c => c.Backend == "hanging-pythonnet");
        Assert.That(hung.Verdict.ToString().ToLowerInvariant(), Is.EqualTo("error"));
        Assert.That(hung.Message, Does.Contain("did not return from 'step 2' within 2 s and was interrupted").And.Contain("--timeout")
            .And.Contain("hanging_adapter.py").And.Contain("in hang_at"));
        // The interrupt stays with the call it was meant for: the next in-process backend, on the same thread, runs clean.
        var finished = report.Comparisons.Where(c => c.Backend is "reference-f32" or PythonAdapterBackend.TorchPythonNetName).ToList();
        Assert.That(finished.Select(c => c.Verdict.ToString().ToLowerInvariant()), Is.All.EqualTo("agree"), string.Join("; ", finished.Select(c => c.Message)));
    }
}
