using System.Text.Json.Nodes;
using Parity.Backends;
using Parity.Data;
using Parity.Planning;
using Parity.Specs;
using Parity.Specs.Tests;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Running.Tests;

public sealed class ChunkedEvaluationTests
{
    private static Plan PlanWithEval(int evalSamples, int evalBatch)
    {
        var root = JsonNode.Parse(SpecLoaderTests.BaseSpec)!.AsObject();
        root["data"]!["eval"] = JsonNode.Parse($$"""{ "type": "synthetic", "samples": {{evalSamples}}, "features": 6, "classes": 3 }""");
        root["evaluation"] = JsonNode.Parse($$"""{ "every": 1, "batchSize": {{evalBatch}} }""");
        return Planner.Build(SpecLoader.Parse(root.ToJsonString()));
    }

    /// <summary>
    /// Answers each evaluation with values computed from the batch itself, so a merge that loses, reorders or
    /// double-counts a chunk shows: output row r of a call is (first input of the sample + call index), the loss is
    /// the mean first input, and a sample is correct when its label is 0.
    /// </summary>
    private sealed class RowSession(Plan plan, DType dtype) : IBackendSession
    {
        public List<int> Sizes { get; } = [];

        public IReadOnlyList<ConventionMismatch> Mismatches => [];

        public IReadOnlyDictionary<string, string> RuntimeInfo => new Dictionary<string, string>();

        public StepRecord ReadState(int step) => throw new NotSupportedException();

        public StepRecord Step(int step, Batch batch, CaptureRequest capture) => throw new NotSupportedException();

        public StepRecord Evaluate(int step, Batch data, CaptureRequest capture)
        {
            Sizes.Add(data.Size);
            var record = new StepRecord(step, RecordPhase.Eval);
            var first = Enumerable.Range(0, data.Size).Select(r => data.Inputs.Data[r * data.Features]).ToArray();
            record.AddScalar(TensorKind.EvalLoss, Round(first.Average()), dtype);
            foreach (var call in plan.Graph.Calls)
            {
                var rows = new double[data.Size * call.OutWidth];
                for (int r = 0; r < data.Size; r++) rows.AsSpan(r * call.OutWidth, call.OutWidth).Fill(Round(first[r] + call.Index));
                record.Add(TensorKind.EvalOutput, call.Id, new Tensor([data.Size, call.OutWidth], rows, dtype));
            }
            record.AddScalar(TensorKind.EvalAccuracy, Round((double)data.Labels.Count(l => l == 0) / data.Size), dtype);
            return record;
        }

        private double Round(double v) => dtype == DType.Float32 ? (float)v : v;

        public void Dispose()
        {
        }
    }

    // The merge on its own: the runner's layout check of each chunk is the caller's (ScenarioRunner).
    private static StepRecord AsReturned(StepRecord record, int rows) => record;

    [Test]
    public void Every_chunk_passes_the_callers_check_with_its_own_row_count()
    {
        var plan = PlanWithEval(50, 16);
        var rows = new List<int>();
        ChunkedEvaluation.Evaluate(new RowSession(plan, DType.Float64), plan, 1, CaptureRequest.Everything, (r, n) =>
        {
            rows.Add(n);
            return r;
        });
        Assert.That(rows, Is.EqualTo(new[] { 16, 16, 16, 2 }));
        var e = Assert.Throws<BackendException>(() => ChunkedEvaluation.Evaluate(new RowSession(plan, DType.Float64), plan, 1, CaptureRequest.Everything,
            (r, n) => n == 2 ? throw new BackendException("the last chunk is wrong") : r))!;
        Assert.That(e.Message, Is.EqualTo("the last chunk is wrong"));
    }

    [TestCase(DType.Float64)]
    [TestCase(DType.Float32)]
    public void Chunks_merge_into_the_record_of_one_evaluation_of_the_whole_set(DType dtype)
    {
        var plan = PlanWithEval(50, 16);
        var session = new RowSession(plan, dtype);
        var merged = ChunkedEvaluation.Evaluate(session, plan, 3, CaptureRequest.Everything, AsReturned);

        Assert.That(session.Sizes, Is.EqualTo(new[] { 16, 16, 16, 2 }));
        Assert.That((merged.Step, merged.Phase), Is.EqualTo((3, RecordPhase.Eval)));
        Assert.That(merged.Entries.Select(e => e.Key), Is.EqualTo(session.Evaluate(3, plan.EvalBatch(), CaptureRequest.Everything).Entries.Select(e => e.Key)),
            "the same entries in the same order as one evaluation");

        var whole = plan.EvalBatch();
        var first = Enumerable.Range(0, whole.Size).Select(r => whole.Inputs.Data[r * whole.Features]).ToArray();
        foreach (var call in plan.Graph.Calls)
        {
            var output = merged.Find(TensorKind.EvalOutput, call.Id)!;
            Assert.That(output.Shape, Is.EqualTo(new[] { 50, call.OutWidth }));
            Assert.That(output.DType, Is.EqualTo(dtype));
            for (int r = 0; r < 50; r++)
                Assert.That(output.Data[r * call.OutWidth], Is.EqualTo(dtype == DType.Float32 ? (float)(first[r] + call.Index) : first[r] + call.Index), $"{call.Id} row {r}");
        }

        // The sample-weighted mean of the chunks' losses in float64, stored in the dtype.
        double weighted = 0;
        for (int start = 0; start < 50; start += 16)
        {
            var chunk = first.Skip(start).Take(16).ToArray();
            weighted += (dtype == DType.Float32 ? (float)chunk.Average() : chunk.Average()) * chunk.Length;
        }
        double expectedLoss = weighted / 50;
        Assert.That(merged.Find(TensorKind.EvalLoss)!.Data[0], Is.EqualTo(dtype == DType.Float32 ? (float)expectedLoss : expectedLoss));
        Assert.That(merged.Find(TensorKind.EvalAccuracy)!.Data[0], Is.EqualTo(Round(whole.Labels.Count(l => l == 0) / 50.0, dtype)), "correct over total");
    }

    private static double Round(double v, DType dtype) => dtype == DType.Float32 ? (float)v : v;

    [Test]
    public void An_eval_set_of_one_chunk_gives_the_backends_record_unchanged()
    {
        var plan = PlanWithEval(10, 16);
        var session = new RowSession(plan, DType.Float32);
        var record = ChunkedEvaluation.Evaluate(session, plan, 1, CaptureRequest.ScalarsOnly, AsReturned);
        Assert.That(session.Sizes, Is.EqualTo(new[] { 10 }));
        Assert.That(record.Find(TensorKind.EvalOutput, plan.Graph.Calls[0].Id)!.Shape, Is.EqualTo(new[] { 10, plan.Graph.Calls[0].OutWidth }));
    }

    private sealed class OddSession(Plan plan, Func<int, StepRecord, StepRecord> change) : IBackendSession
    {
        private readonly RowSession _inner = new(plan, DType.Float64);
        private int _calls;

        public IReadOnlyList<ConventionMismatch> Mismatches => [];

        public IReadOnlyDictionary<string, string> RuntimeInfo => new Dictionary<string, string>();

        public StepRecord ReadState(int step) => throw new NotSupportedException();

        public StepRecord Step(int step, Batch batch, CaptureRequest capture) => throw new NotSupportedException();

        public StepRecord Evaluate(int step, Batch data, CaptureRequest capture) => change(_calls++, _inner.Evaluate(step, data, capture));

        public void Dispose()
        {
        }
    }

    [Test]
    public void Chunks_that_cannot_be_merged_fail_the_backend_with_what_is_wrong()
    {
        var plan = PlanWithEval(50, 16);
        string Fails(Func<int, StepRecord, StepRecord> change) =>
            Assert.Throws<BackendException>(() => ChunkedEvaluation.Evaluate(new OddSession(plan, change), plan, 1, CaptureRequest.Everything, AsReturned))!.Message;

        Assert.That(Fails((i, r) => i == 2 ? new StepRecord(1, RecordPhase.Eval).AddScalar(TensorKind.EvalLoss, 1, DType.Float64) : r),
            Does.Contain("evaluation chunk at sample 32 returned [evalLoss]"));
        Assert.That(Fails((i, r) => r.Add(TensorKind.Forward, "l1", Tensor.Scalar(0, DType.Float64))), Does.Contain("returned forward:l1 with shape []").And.Contain("can be merged over evaluation chunks"));
        Assert.That(Fails((i, r) =>
        {
            var copy = new StepRecord(1, RecordPhase.Eval);
            foreach (var e in r.Entries)
                copy.Add(e.Key.Kind, e.Key.Site, i == 1 && e.Key.Kind == TensorKind.EvalOutput ? new Tensor([1, e.Value.Length], e.Value.Data, e.Value.DType) : e.Value);
            return copy;
        }), Does.Contain("of the evaluation chunk at sample 16 has shape [1,"));
    }
}
