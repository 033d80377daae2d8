using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Backends.TorchSharp;
using Parity.Data;
using Parity.NUnit;
using Parity.Planning;
using Parity.Specs;
using Parity.Tracing;

[assembly: ParityBackend("torchsharp", typeof(TorchSharpBackend))]

namespace Parity.Examples.Tests;

/// <summary>
/// How a team writes parity regression tests for its own model: a spec file in the test project
/// (specs/tabular-classifier.json), then one test per framework it ships on. Each test trains the model step by
/// step in that framework and in the float64 reference and fails, naming the step, the tensor and the cause, the
/// moment any tensor leaves the tolerance.
/// </summary>
public sealed class TabularClassifierParityTests
{
    private static readonly string Spec = Path.Combine(TestContext.CurrentContext.TestDirectory, "specs", "tabular-classifier.json");

    [Test]
    public void Float32_training_agrees_with_the_float64_reference() =>
        ParityAssert.Agree(Spec, "reference-f32");

    [Test]
    public void A_short_run_of_a_variant_built_in_code_agrees()
    {
        // Specs are records: derive a variant (here: plain SGD with momentum) and keep the test fast with Steps.
        var spec = SpecLoader.LoadFile(Spec) with { Name = "tabular-classifier-sgd", Optimizer = new SgdSpec(0.05, 0.9) };
        var report = ParityAssert.Agree(spec, new ParityOptions(Steps: 6), "reference-f32");
        Assert.That(report.Scenario.Steps, Is.EqualTo(6));
    }

    [Test, RequiresBackend("torchsharp")]
    public void TorchSharp_training_agrees_with_the_reference() =>
        ParityAssert.Agree(Spec, "torchsharp");

    [Test]
    public void A_backend_that_gets_one_tensor_wrong_fails_with_an_assert_close_style_message()
    {
        // A stand-in for a framework with a bug: reference-f32 whose reported forward output of 'hidden2' is off by 0.1%.
        var registry = new BackendRegistry()
            .Add(ReferenceBackend.Float64Name, ReferenceBackend.Float64, Tensors.DType.Float64)
            .Add(ReferenceBackend.Float32Name, ReferenceBackend.Float32, Tensors.DType.Float32)
            .Add("buggy", () => new ScaledForwardBackend(ReferenceBackend.Float32(), "hidden2", 1.001));

        var failure = Assert.Throws<AssertionException>(() =>
            ParityAssert.Agree(SpecLoader.LoadFile(Spec), new ParityOptions(Steps: 4, Registry: registry), "buggy"))!;

        Assert.That(failure.Message, Does.Contain("buggy does not agree with reference"));
        Assert.That(failure.Message, Does.Match(@"Mismatched elements: \d+ / 512 \(\d+\.\d%\)"));
        Assert.That(failure.Message, Does.Contain("Greatest absolute difference:").And.Contain("at index ("));
        Assert.That(failure.Message, Does.Contain("First divergence: step 1, forward:hidden2 (origin"));
        Assert.That(failure.Message, Does.Contain("report.html"), "the kept report is named");
    }

    /// <summary>Wraps a backend and scales the traced forward output of one call site: a deliberately wrong trace.</summary>
    private sealed class ScaledForwardBackend(IBackend inner, string site, double factor) : IBackend
    {
        public string Name => "buggy";

        public BackendDescription Describe() => inner.Describe() with { Name = Name };

        public IBackendSession Open(Plan plan, BackendOptions options) => new Session(inner.Open(plan, options), site, factor);

        private sealed class Session(IBackendSession inner, string site, double factor) : IBackendSession
        {
            public IReadOnlyList<ConventionMismatch> Mismatches => inner.Mismatches;

            public IReadOnlyDictionary<string, string> RuntimeInfo => inner.RuntimeInfo;

            public StepRecord ReadState(int step) => inner.ReadState(step);

            public StepRecord Step(int step, Batch batch, CaptureRequest capture)
            {
                var record = inner.Step(step, batch, capture);
                var copy = new StepRecord(record.Step, record.Phase);
                foreach (var e in record.Entries)
                    copy.Add(e.Key.Kind, e.Key.Site, e.Key == new TensorKey(TensorKind.Forward, site) ? new Tensors.Tensor((int[])e.Value.Shape.Clone(), e.Value.Data.Select(v => v * factor).ToArray(), e.Value.DType) : e.Value);
                return copy;
            }

            public StepRecord Evaluate(int step, Batch data, CaptureRequest capture) => inner.Evaluate(step, data, capture);

            public void Dispose() => inner.Dispose();
        }
    }
}
