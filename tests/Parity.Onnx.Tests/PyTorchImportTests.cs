using System.Text.Json.Nodes;
using Parity.Backends.OnnxRuntime;
using Parity.Data;
using Parity.Models;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Onnx.Tests;

/// <summary>
/// Models exported by PyTorch 2.11's torch.onnx.export (TestData/make_pytorch_models.py, run on a machine
/// with PyTorch): importing them and evaluating the spec plus weights in ONNX Runtime must reproduce
/// PyTorch's own eval-mode logits, and the spec must say what the PyTorch model is.
/// </summary>
public class PyTorchImportTests
{
    [TestCase("pytorch-flatten-bn")]
    [TestCase("pytorch-shared-bn")]
    [TestCase("pytorch-layernorm")]
    public void An_imported_pytorch_model_reproduces_pytorch_eval_logits(string name)
    {
        var (spec, state, batch, logits) = Load(name);

        var onnx = OnnxArbiter.Check(new ModelGraph(spec.Model), spec, state, batch, DType.Float32);

        TensorAssert.Agrees(logits, onnx.Find(TensorKind.EvalOutput, spec.Model.Calls[^1].Id)!, TensorKind.EvalOutput, $"{name} logits");
    }

    [Test]
    public void A_pytorch_batchnorm_called_twice_imports_as_one_shared_instance_with_pytorch_conventions()
    {
        var (spec, _, _, _) = Load("pytorch-shared-bn");

        var graph = new ModelGraph(spec.Model);
        Assert.That(graph.Shared, Does.Contain("bn"));
        var bn = (BatchNormSpec)spec.Model.Layer("bn");
        Assert.That((bn.Eps, bn.Momentum, bn.RunningVariance, bn.Affine), Is.EqualTo((1e-3, 0.1, RunningVarianceEstimator.Unbiased, true)));
        Assert.That(spec.Model.Calls.Count(c => c.Layer == "bn"), Is.EqualTo(2));
    }

    [Test]
    public void A_pytorch_flatten_and_momentum_are_read_into_the_spec()
    {
        var (spec, _, _, _) = Load("pytorch-flatten-bn");

        Assert.That(spec.Model.Inputs, Is.EqualTo(12));
        var momenta = spec.Model.Layers.OfType<BatchNormSpec>().Select(b => b.Momentum);
        Assert.That(momenta, Is.EqualTo(new[] { 0.1, 0.01 }), "torch exports momentum as 1 - m");
        Assert.That(spec.Model.Layers.OfType<LinearSpec>().Count(), Is.EqualTo(3));
    }

    private static (ScenarioSpec Spec, StepRecord State, Batch Batch, Tensor Logits) Load(string name)
    {
        string dir = Path.Combine(TestContext.CurrentContext.TestDirectory, "TestData");
        var (json, state) = OnnxImporter.Import(Path.Combine(dir, name + ".onnx"));
        var spec = SpecLoader.Parse(json);
        var stored = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, name + ".json")))!;
        double[] input = stored["input"]!.AsArray().Select(v => (double)(float)(double)v!).ToArray();
        double[] logits = stored["logits"]!.AsArray().Select(v => (double)v!).ToArray();
        int rows = (int)stored["inputShape"]![0]!;
        var batch = new Batch(new Tensor([rows, input.Length / rows], input, DType.Float32), new int[rows]);
        return (spec, state, batch, new Tensor([rows, logits.Length / rows], logits, DType.Float32));
    }
}
