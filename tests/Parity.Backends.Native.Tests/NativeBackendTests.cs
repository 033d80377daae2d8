using Parity.Backends.Reference;
using Parity.Comparison;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.Native.Tests;

public sealed class NativeBackendTests
{
    private string _root = "";

    [SetUp]
    public void CreateDirectory() => _root = Directory.CreateTempSubdirectory("parity-native-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_root, recursive: true);

    [Test]
    public void Describe_says_which_device_and_why()
    {
        var description = new NativeBackend().Describe();
        Assert.That(description.Available, Is.True);
        Assert.That(description.Name, Is.EqualTo("native"));
        Assert.That(description.Reason, Does.Contain("CUDA device").Or.Contain("ILGPU CPU accelerator (no CUDA device found)"));
        Assert.That(description.Capabilities.DTypes, Is.EquivalentTo(new[] { DType.Float32, DType.Float64 }));
        Assert.That(description.Capabilities.Devices, Does.Contain("cpu"));
        Assert.That(description.Capabilities.OptimizerState, Is.True);
    }

    [Test]
    public void Requesting_cuda_without_a_cuda_device_names_the_problem()
    {
        if (NativeDevices.CudaDeviceNames().Count > 0) Assert.Ignore("a CUDA device is present");
        var plan = TinySpecs.Plan("synthetic-mlp-bn.json", 1);
        var error = Assert.Throws<BackendException>(() => new NativeBackend().Open(plan, new BackendOptions(DType.Float32, "cuda")));
        Assert.That(error!.Message, Does.Contain("--device cuda").And.Contain("no CUDA device"));
    }

    [Test]
    public void An_unknown_device_is_refused_by_name()
    {
        var plan = TinySpecs.Plan("synthetic-mlp-bn.json", 1);
        var error = Assert.Throws<BackendException>(() => new NativeBackend().Open(plan, new BackendOptions(DType.Float32, "tpu")));
        Assert.That(error!.Message, Does.Contain("'tpu'"));
    }

    [Test]
    public void The_cpu_device_runs_on_the_cpu_accelerator_and_says_why()
    {
        var plan = TinySpecs.Plan("synthetic-mlp-bn.json", 1);
        using var session = NativeBackend.OpenNative(plan, new BackendOptions(DType.Float32, "cpu"));
        Assert.That(session.Device.Kind, Is.EqualTo("cpu"));
        Assert.That(session.RuntimeInfo["device"], Is.EqualTo("ILGPU CPU accelerator (requested with --device cpu)"));
    }

    [Test]
    public void Initial_state_is_the_plans_state_with_an_empty_optimizer_state()
    {
        var plan = TinySpecs.Plan("synthetic-shared-bn.json", 1);
        using var session = new NativeBackend().Open(plan, new BackendOptions(DType.Float32, "cpu"));
        var state = session.ReadState(0);
        Assert.That(state.Phase, Is.EqualTo(RecordPhase.Initial));
        Assert.That(state.Entries.Select(e => e.Key), Is.EqualTo(TraceLayout.Of(plan).StateKeys));
        foreach (var expected in plan.InitialState.Entries)
            Assert.That(state.Find(expected.Key.Kind, expected.Key.Site)!.Data, Is.EqualTo(expected.Value.Data), expected.Key.ToString());
        // No update done: the count is 0 and every slot (Adam's m and v here) is zero.
        var optimizer = state.Entries.Where(e => e.Key.Kind.IsOptimizerState()).ToList();
        Assert.That(optimizer.Count(e => e.Key.Kind == TensorKind.OptimizerSlot), Is.EqualTo(2 * plan.Graph.Parameters.Count));
        Assert.That(optimizer.SelectMany(e => e.Value.Data), Is.All.EqualTo(0.0));
    }

    // 20 steps: the CPU accelerator spends about a second a step on launches, and it rounds as reference-f32 does bit for
    // bit (the test below), so a longer run here would retest the reference; on a GPU the kernels' own sums are what differ.
    [TestCase("synthetic-mlp-bn.json", "float32", 20)]
    [TestCase("synthetic-shared-bn.json", "float32", 20)]
    [TestCase("synthetic-layernorm-sgd.json", "float32", 20)]
    [TestCase("synthetic-shared-bn.json", "float64", 10)]
    [TestCase("synthetic-activations.json", "float32", 5)]
    [TestCase("synthetic-weight-decay.json", "float32", 5)]
    [TestCase("synthetic-bce.json", "float32", 6)]
    public void Native_agrees_with_the_reference(string fixture, string dtype, int steps)
    {
        var plan = TinySpecs.Plan(fixture, steps, dtype);
        var reference = Run(plan, ReferenceBackend.Float64(), DType.Float64, "reference");
        var envelope = Run(plan, ReferenceBackend.Float32(), DType.Float32, "reference-f32");
        var native = Run(plan, new NativeBackend(), DTypes.TryParse(dtype)!.Value, "native");

        var result = TraceComparer.Compare(TraceReader.Open(reference), TraceReader.Open(native), TraceLayout.Of(plan), TolerancePolicy.Default,
            TraceReader.Open(envelope));
        Assert.That(result.StepsCompared, Is.GreaterThanOrEqualTo(steps));
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Agree),
            () => $"first divergence: {result.FirstDivergence?.Origin}; {result.Message}");
        // The optimizer state is judged like every tensor: each slot of an identifiable parameter and the count, at every step.
        Assert.That(result.Checks.Count(c => c.Key.Kind == TensorKind.OptimizerSlot && c.Status == CheckStatus.Checked), Is.GreaterThanOrEqualTo(steps));
        Assert.That(result.Checks.Count(c => c.Key.Kind == TensorKind.OptimizerStep && c.Status == CheckStatus.Checked), Is.GreaterThanOrEqualTo(steps));
    }

    [TestCase("synthetic-mlp-bn.json")]
    [TestCase("synthetic-activations.json")]
    [TestCase("synthetic-adagrad.json", Description = "Adagrad; RMSprop runs in the same kernel in synthetic-everything")]
    [TestCase("synthetic-mse.json")]
    [TestCase("synthetic-everything.json", Description = "every setting at once: centered RMSprop with momentum, a schedule, clipping, coupled decay, dropout masks, label smoothing, six activations; agreement follows from reference-f32's")]
    // (binary cross-entropy is left out: its log(1 + exp(-|z|)) is log1p in the reference, which ILGPU kernels lack, so the
    // loss value differs by rounding; it is judged by agreement above.)
    public void On_the_cpu_accelerator_float32_rounds_exactly_as_the_float32_reference(string fixture)
    {
        // One reduction lane on the CPU sums in row order, and the products run the reference's scalar chain, so
        // every tensor of a float32 run equals reference-f32 bit for bit; any kernel change that alters the math
        // (not only the rounding) shows here first.
        var plan = TinySpecs.Plan(fixture, 3);
        var native = Trace(Run(plan, new NativeBackend(), DType.Float32, "native"));
        var reference = Trace(Run(plan, ReferenceBackend.Float32(), DType.Float32, "reference-f32"));
        var expected = reference.ToDictionary(e => e.Key, e => e.Bits);
        Assert.That(native.Select(e => e.Key), Is.EquivalentTo(expected.Keys));
        foreach (var (key, bits) in native) Assert.That(bits, Is.EqualTo(expected[key]), key);
    }

    // The fixture's decoupled decay is in Native_agrees_with_the_reference; these are the other two forms, with Adam.
    [TestCase(WeightDecayForm.Coupled, DecayedParameters.Weights)]
    [TestCase(WeightDecayForm.L2Loss, DecayedParameters.All)]
    public void Coupled_and_l2_loss_weight_decay_round_exactly_as_the_float32_reference(WeightDecayForm form, DecayedParameters parameters)
    {
        // The decay kernels repeat the reference's scalar chain (and, with one lane, its sum of squares in order).
        var tiny = TinySpecs.Plan("synthetic-weight-decay.json", 1).Spec;
        var adam = new AdamSpec(0.01, 0.9, 0.999, 1e-8, EpsilonForm.SqrtVHat) { WeightDecay = new WeightDecaySpec(0.1, form, parameters) };
        var plan = Planner.Build(tiny with { Optimizer = adam }, 3);
        var native = Trace(Run(plan, new NativeBackend(), DType.Float32, "native"));
        var expected = Trace(Run(plan, ReferenceBackend.Float32(), DType.Float32, "reference-f32")).ToDictionary(e => e.Key, e => e.Bits);
        Assert.That(native.Select(e => e.Key), Is.EquivalentTo(expected.Keys));
        foreach (var (key, bits) in native) Assert.That(bits, Is.EqualTo(expected[key]), key);
    }

    [Test]
    public void Reruns_give_bit_identical_traces()
    {
        var plan = TinySpecs.Plan("synthetic-shared-bn.json", 3);
        var first = Trace(Run(plan, new NativeBackend(), DType.Float32, "first"));
        var second = Trace(Run(plan, new NativeBackend(), DType.Float32, "second"));
        Assert.That(second.Count, Is.EqualTo(first.Count));
        Assert.That(first.Count, Is.GreaterThan(0));
        for (int i = 0; i < first.Count; i++)
        {
            Assert.That(second[i].Key, Is.EqualTo(first[i].Key));
            Assert.That(second[i].Bits, Is.EqualTo(first[i].Bits), first[i].Key);
        }
    }

    [Test]
    public void A_captured_step_holds_every_kind_and_a_scalar_step_only_the_scalars()
    {
        var plan = TinySpecs.Plan("synthetic-layernorm-sgd.json", 2);
        using var session = NativeBackend.OpenNative(plan, new BackendOptions(DType.Float32, "cpu"));
        var full = session.Step(1, plan.BatchFor(1), CaptureRequest.Everything);
        var scalars = session.Step(2, plan.BatchFor(2), CaptureRequest.ScalarsOnly);
        var kinds = full.Entries.Select(e => e.Key.Kind).Distinct().ToList();
        Assert.That(kinds, Is.SupersetOf(new[]
        {
            TensorKind.Forward, TensorKind.Loss, TensorKind.TrainAccuracy, TensorKind.OutputGradient, TensorKind.ParameterGradient,
            TensorKind.OptimizerStep, TensorKind.OptimizerSlot, TensorKind.Parameter,
        }));
        Assert.That(TraceLayout.Of(plan).Problem(full, CaptureRequest.Everything, plan.BatchFor(1).Size), Is.Null);
        Assert.That(full.Entries.Count(e => e.Key.Kind == TensorKind.Forward), Is.EqualTo(plan.Graph.Calls.Count));
        Assert.That(full.Find(TensorKind.OptimizerStep)!.Data, Is.EqualTo(new[] { 1.0 }));
        // SGD with momentum: after the first step the buffer is the gradient itself (v = mu 0 + g).
        foreach (var p in plan.Graph.Parameters)
            Assert.That(full.Find(TensorKind.OptimizerSlot, TraceLayout.SlotSite(p.Name, "momentum"))!.Data,
                Is.EqualTo(full.Find(TensorKind.ParameterGradient, p.Name)!.Data), p.Name);
        Assert.That(scalars.Entries.Select(e => e.Key.Kind), Is.EquivalentTo(new[] { TensorKind.Loss, TensorKind.TrainAccuracy }));
        Assert.That(full.Entries.All(e => e.Value.DType == DType.Float32), Is.True);
    }

    private string Run(Plan plan, IBackend backend, DType dtype, string name)
    {
        string directory = Path.Combine(_root, name);
        var run = ScenarioRunner.Run(plan, backend, new BackendOptions(dtype, backend is NativeBackend ? "cpu" : null), directory);
        Assert.That(run.Status, Is.EqualTo(RunStatus.Completed), run.Message);
        return directory;
    }

    private static List<(string Key, long[] Bits)> Trace(string directory)
    {
        var entries = new List<(string, long[])>();
        foreach (var record in TraceReader.Open(directory).Records())
            foreach (var entry in record.Entries)
                entries.Add(($"{record.Phase}{record.Step}:{entry.Key}", entry.Value.Data.Select(BitConverter.DoubleToInt64Bits).ToArray()));
        return entries;
    }
}
