using Parity.Models;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Backends.Reference.Tests;

/// <summary>
/// The second wall behind the planner's size limits: sizes that overflow 32 bits and operands shorter than a product
/// needs end in an exception, never in a write outside a buffer.
/// </summary>
public class BoundsTests
{
    [Test]
    public void A_matrix_product_checks_every_operand_before_its_pointer_loops_run()
    {
        var parallel = new ParallelOptions();
        double[] a = new double[6], b = new double[6], c = new double[4];
        Assert.DoesNotThrow(() => MatrixProduct.Multiply<double>(a, 3, 1, b, 2, 1, c, 2, [], 2, 2, 3, parallel));

        var e = Assert.Throws<ArgumentException>(() => MatrixProduct.Multiply<double>(a, 3, 1, b, 2, 1, new double[3], 2, [], 2, 2, 3, parallel))!;
        Assert.That(e.Message, Does.Contain("operand C holds 3 elements; the product reads or writes 4"));
        Assert.Throws<ArgumentException>(() => MatrixProduct.Multiply<double>(new double[5], 3, 1, b, 2, 1, c, 2, [], 2, 2, 3, parallel));
        Assert.Throws<ArgumentException>(() => MatrixProduct.Multiply<double>(a, 3, 1, new double[5], 2, 1, c, 2, [], 2, 2, 3, parallel));
        Assert.Throws<ArgumentException>(() => MatrixProduct.Multiply<double>(a, 3, 1, b, 2, 1, c, 2, new double[1], 2, 2, 3, parallel));
        // A transposed read (row stride 1, column stride m) reaches (m - 1) + (k - 1) m: one short is refused.
        Assert.Throws<ArgumentException>(() => MatrixProduct.Multiply<double>(new double[5], 1, 2, b, 2, 1, c, 2, [], 2, 2, 3, parallel));
    }

    [Test]
    public void Linear_ops_compute_expected_lengths_in_64_bits()
    {
        // 65537 x 65536 wraps to 65536 in 32 bits: a 65536-element output would have passed a 32-bit check.
        var y = new double[65536];
        var e = Assert.Throws<ArgumentException>(() => ReferenceOps.LinearForward<double>(new double[65537], new double[65536], [], y, 65537, 1, 65536))!;
        Assert.That(e.Message, Does.Contain("expected 4295032832"));
    }

    [Test]
    public void Pass_buffers_whose_size_overflows_32_bits_fail_instead_of_wrapping()
    {
        // The finding's model at batch 65537: its buffers were allocated 65536 elements long, then overrun.
        var spec = SpecLoader.Parse("""
            {"name":"overflow","model":{"inputs":1,"layers":[{"name":"l1","type":"linear","in":1,"out":65536},{"name":"l2","type":"linear","in":65536,"out":2}],"calls":["l1","l2"]},
             "optimizer":{"type":"sgd","lr":0.01},
             "data":{"train":{"type":"synthetic","generator":"gaussian","samples":65537,"features":1,"classes":2},"batchSize":65537},
             "training":{"steps":1}}
            """);
        var graph = new ModelGraph(spec.Model);
        Assert.Throws<OverflowException>(() => _ = new Pass<double>(graph, 65537));
    }

    [Test]
    public void Chunked_evaluation_of_the_reference_gives_the_rows_of_one_evaluation_of_the_whole_set()
    {
        // Eval mode has no batch statistics and each output element is one fixed summation chain, so chunking
        // changes no row; the merged loss is the float64 sample-weighted mean of the chunks' losses.
        var plan = TestSpecs.Plan(TestSpecs.BatchNormNet().Replace("\"evaluation\": { \"every\": 1 }", "\"evaluation\": { \"every\": 1, \"batchSize\": 5 }"));
        Assert.That(plan.EvalBatchSize, Is.EqualTo(5));
        using var session = ReferenceBackend.Float64().Open(plan, new BackendOptions(Tensors.DType.Float64));
        session.Step(1, plan.BatchFor(1), CaptureRequest.Everything);
        var merged = ChunkedEvaluation.Evaluate(session, plan, 1, CaptureRequest.Everything, (record, _) => record);
        var whole = session.Evaluate(1, plan.EvalBatch(), CaptureRequest.Everything);

        foreach (var call in plan.Graph.Calls)
            Assert.That(merged.Find(TensorKind.EvalOutput, call.Id)!.Data, Is.EqualTo(whole.Find(TensorKind.EvalOutput, call.Id)!.Data).AsCollection, call.Id);
        Assert.That(merged.Find(TensorKind.EvalAccuracy)!.Data[0], Is.EqualTo(whole.Find(TensorKind.EvalAccuracy)!.Data[0]));
        double weighted = plan.EvalBatches().Sum(b => session.Evaluate(1, b, CaptureRequest.ScalarsOnly).Find(TensorKind.EvalLoss)!.Data[0] * b.Size);
        Assert.That(merged.Find(TensorKind.EvalLoss)!.Data[0], Is.EqualTo(weighted / plan.Eval.Count));
    }
}
