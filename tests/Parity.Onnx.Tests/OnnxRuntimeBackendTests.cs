using Parity.Backends;
using Parity.Backends.OnnxRuntime;
using Parity.Backends.Reference;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Onnx.Tests;

public class OnnxRuntimeBackendTests
{
    [Test]
    public void Describe_reports_the_loaded_runtime_version_and_evaluation_only()
    {
        var description = new OnnxRuntimeBackend().Describe();

        Assert.That(description.Available, Is.True, description.Reason);
        Assert.That(description.Name, Is.EqualTo("onnxruntime"));
        Assert.That(description.Versions["onnxruntime"], Does.StartWith("1.31"));
        Assert.That(description.Capabilities.Training, Is.False);
        Assert.That(description.Capabilities.DTypes, Is.EquivalentTo(new[] { DType.Float32, DType.Float64 }));
    }

    [Test]
    public void A_session_reads_the_initial_state_back_from_its_exported_model_and_refuses_to_train()
    {
        var plan = TestScenarios.Plan("synthetic-shared-bn", steps: 2);
        using var session = new OnnxRuntimeBackend().Open(plan, new BackendOptions(DType.Float32));

        Assert.That(session.RuntimeInfo[OnnxExecutionProvider.ProviderKey], Is.AnyOf(OnnxExecutionProvider.Cpu, OnnxExecutionProvider.Cuda));
        var state = session.ReadState(0);
        Assert.That(state.Phase, Is.EqualTo(RecordPhase.Initial));
        Assert.That(state.Entries.Select(e => e.Key), Is.EqualTo(plan.InitialState.Entries.Select(e => e.Key)));
        foreach (var entry in plan.InitialState.Entries)
            TensorAssert.Exact(entry.Value, state.Find(entry.Key.Kind, entry.Key.Site)!, entry.Key.ToString());

        var error = Assert.Throws<BackendException>(() => session.Step(1, plan.BatchFor(1), CaptureRequest.Everything));
        Assert.That(error!.Message, Is.EqualTo("onnxruntime is evaluation-only: it checks the checkpoints of the training backends"));
    }

    [Test]
    public void Listing_it_as_a_training_backend_fails_the_run_at_step_1_with_the_evaluation_only_message()
    {
        var plan = TestScenarios.Plan("synthetic-mlp-bn", steps: 3);
        string dir = TestScenarios.TempDirectory();
        try
        {
            var run = ScenarioRunner.Run(plan, new OnnxRuntimeBackend(), new BackendOptions(DType.Float32), dir);

            Assert.That(run.Status, Is.EqualTo(RunStatus.Failed));
            Assert.That(run.Message, Is.EqualTo("at step 1: onnxruntime is evaluation-only: it checks the checkpoints of the training backends"));
            Assert.That(run.Runtime["onnxruntime"], Does.StartWith("1.31"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void The_session_evaluates_the_initial_state_like_the_reference()
    {
        var plan = TestScenarios.Plan("synthetic-layernorm-sgd", steps: 1);
        using var reference = ReferenceBackend.Float64().Open(plan, new BackendOptions(DType.Float64));
        using var onnx = new OnnxRuntimeBackend().Open(plan, new BackendOptions(DType.Float64));

        var expected = reference.Evaluate(0, plan.EvalBatch(), CaptureRequest.Everything);
        var actual = onnx.Evaluate(0, plan.EvalBatch(), CaptureRequest.Everything);
        TensorAssert.EvalRecordsAgree(plan.Graph, expected, actual);
    }

    [Test]
    public void Float64_evaluation_declares_eps_values_that_float32_attributes_cannot_hold()
    {
        var spec = TestScenarios.Fixture("synthetic-mlp-bn");

        var mismatches = OnnxArbiter.Mismatches(spec, DType.Float64);
        Assert.That(mismatches.Select(m => m.Setting), Is.EqualTo(new[] { "$.model.layers[1].eps", "$.model.layers[4].eps" }));
        Assert.That(mismatches[0].Spec, Is.EqualTo("1E-05"));
        Assert.That(mismatches[0].Affects, Does.Contain("evalOutput"));
        Assert.That(OnnxArbiter.Mismatches(spec, DType.Float32), Is.Empty, "a float32 backend adds eps in float32 too");
    }

    [Test]
    public void Float64_evaluation_declares_a_leaky_relu_slope_that_a_float32_attribute_cannot_hold_but_not_an_elu_alpha_of_1()
    {
        var spec = TestScenarios.Fixture("synthetic-activations");
        Assert.That(OnnxArbiter.Mismatches(spec, DType.Float64).Select(m => m.Setting), Is.EqualTo(new[] { "$.model.layers[3].slope" }), "0.1 is not a float32; 1 is");
        Assert.That(OnnxArbiter.Mismatches(spec, DType.Float32), Is.Empty);
    }

    [Test]
    public void The_arbiter_computes_loss_and_accuracy_from_the_logits()
    {
        var logits = new Tensor([2, 3], [1, 2, 3, 0, 0, 0], DType.Float64);
        var (loss, accuracy) = OnnxArbiter.LossAndAccuracy(logits, [2, 1]);

        double expected = ((Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3)) - 3) + Math.Log(3)) / 2;
        Assert.That(loss, Is.EqualTo(expected).Within(1e-15));
        Assert.That(accuracy, Is.EqualTo(0.5), "row 2 ties: the first maximum (class 0) is the prediction");
    }

    [Test]
    public void Check_trace_arbitrates_the_last_checkpoint_of_a_training_backend_trace(
        [Values(DType.Float32, DType.Float64)] DType dtype)
    {
        var plan = TestScenarios.Plan("synthetic-shared-bn", steps: 12);
        string dir = TestScenarios.TempDirectory();
        try
        {
            var run = ScenarioRunner.Run(plan, new ReferenceBackend(dtype), new BackendOptions(dtype), dir);
            Assert.That(run.Status, Is.EqualTo(RunStatus.Completed), run.Message);

            var check = OnnxArbiter.CheckTrace(plan, dir);

            Assert.That(check, Is.Not.Null);
            Assert.That(check!.Step, Is.EqualTo(12));
            Assert.That(check.Onnx.Step, Is.EqualTo(12));
            TensorAssert.EvalRecordsAgree(plan.Graph, check.Backend, check.Onnx);
            Assert.That(check.Onnx.Find(TensorKind.EvalOutput, "l3")!.DType, Is.EqualTo(dtype));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Asked_for_cuda_where_the_cuda_provider_cannot_load_the_arbiter_runs_on_the_cpu_and_records_why()
    {
        // The CPU package has no CUDA provider, and the GPU package without the CUDA libraries cannot load it: both fall back.
        string? loadFailure = OnnxExecutionProvider.CudaLoadFailure();
        Assume.That(loadFailure, Is.Not.Null, "the CUDA provider loads in this process, so the fallback is not what runs here");
        var plan = TestScenarios.Plan("synthetic-mlp-bn", steps: 10);
        string dir = TestScenarios.TempDirectory();
        try
        {
            var run = ScenarioRunner.Run(plan, ReferenceBackend.Float32(), new BackendOptions(DType.Float32), dir);
            Assert.That(run.Status, Is.EqualTo(RunStatus.Completed), run.Message);

            var onCuda = OnnxArbiter.CheckTrace(plan, dir, "cuda")!;
            var onCpu = OnnxArbiter.CheckTrace(plan, dir, "cpu")!;

            Assert.That(onCuda.Provider.Name, Is.EqualTo(OnnxExecutionProvider.Cpu));
            Assert.That(onCuda.Provider.CudaNotUsed, Is.EqualTo(loadFailure), "ONNX Runtime's own message is the reason");
            Assert.That(onCuda.Provider.CudaNotUsed, Does.Contain("CUDA").IgnoreCase.Or.Contain("libcu"));
            Assert.That(onCuda.Provider.RuntimeInfo, Does.ContainKey(OnnxExecutionProvider.CudaNotUsedKey)
                .And.ContainKey(OnnxExecutionProvider.ProviderKey).WithValue(OnnxExecutionProvider.Cpu));
            Assert.That(onCpu.Provider, Is.EqualTo(new OnnxExecutionProvider(OnnxExecutionProvider.Cpu, "the CPU was requested (--device cpu)")));
            // The fallback is the CPU provider with the same settings: the same evaluation, bit for bit.
            foreach (var entry in onCpu.Onnx.Entries)
                TensorAssert.Exact(entry.Value, onCuda.Onnx.Find(entry.Key.Kind, entry.Key.Site)!, entry.Key.ToString());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Describe_names_the_execution_provider_and_why_cuda_is_not_used()
    {
        string? loadFailure = OnnxExecutionProvider.CudaLoadFailure();
        var description = new OnnxRuntimeBackend().Describe();

        if (loadFailure is null)
        {
            Assert.That(description.Reason, Does.EndWith($"execution provider: {OnnxExecutionProvider.Cuda} (its libraries load)"));
            Assert.That(description.Capabilities.Devices, Does.Contain("cuda"));
        }
        else
        {
            Assert.That(description.Reason, Does.EndWith($"execution provider: {OnnxExecutionProvider.Cpu} (CUDA not used: {loadFailure})"));
            Assert.That(description.Capabilities.Devices, Is.EquivalentTo(new[] { "cpu" }));
        }
    }

    [Test]
    public void An_unknown_device_is_refused_by_name()
    {
        var plan = TestScenarios.Plan("synthetic-mlp-bn", steps: 1);

        var error = Assert.Throws<BackendException>(() => OnnxArbiter.Check(plan.Graph, plan.Spec, plan.InitialState, plan.EvalBatch(), DType.Float32, "tpu"));
        Assert.That(error!.Message, Is.EqualTo("onnxruntime: unknown device 'tpu'; use cpu or cuda"));
    }

    [Test]
    public void Check_trace_finds_no_checkpoint_when_parameters_were_not_captured()
    {
        string json = File.ReadAllText(Path.Combine(TestScenarios.RepositoryRoot, "fixtures", "synthetic-mlp-bn.json"))
            .Replace("\"evaluation\": { \"every\": 10 }", "\"evaluation\": { \"every\": 10 }, \"capture\": { \"kinds\": [\"forward\"] }", StringComparison.Ordinal);
        var spec = SpecLoader.Parse(json, Path.Combine(TestScenarios.RepositoryRoot, "fixtures"));
        Assert.That(spec.Capture.Kinds, Does.Not.Contain(TensorKind.Parameter));
        var plan = Planning.Planner.Build(spec, 10);
        string dir = TestScenarios.TempDirectory();
        try
        {
            ScenarioRunner.Run(plan, ReferenceBackend.Float32(), new BackendOptions(DType.Float32), dir);
            Assert.That(OnnxArbiter.CheckTrace(plan, dir), Is.Null);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
