using Parity.Models;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.Reference.Tests;

public class DropoutTests
{
    private static IBackendSession Open(Planning.Plan plan) => ReferenceBackend.Float64().Open(plan, new BackendOptions(DType.Float64));

    [Test]
    public void The_harness_mask_is_drawn_per_step_and_call_from_the_seed_with_the_drop_probability()
    {
        var plan = TestSpecs.FixturePlan("synthetic-dropout.json");
        var mask = plan.BatchFor(1).DropoutMask("drop");
        Assert.That(mask.Shape, Is.EqualTo(new[] { 16, 16 }));
        Assert.That(mask.Data, Is.All.EqualTo(0.0).Or.EqualTo(1.0));
        Assert.That(mask.Data, Is.EqualTo(plan.BatchFor(1).DropoutMask("drop").Data).AsCollection, "the same step draws the same mask");
        Assert.That(mask.Data, Is.Not.EqualTo(plan.BatchFor(2).DropoutMask("drop").Data).AsCollection, "each step draws its own");
        // 256 Bernoulli(0.25) draws: 64 dropped on average, standard deviation about 7.
        Assert.That(mask.Data.Count(v => v == 0), Is.InRange(40, 88));
        var many = Dropout.Mask(11, 1, "drop", 1000, 100, 0.25);
        Assert.That(many.Data.Average(), Is.EqualTo(0.75).Within(0.01), "p is the DROP probability");
        Assert.That(plan.EvalBatches().First().DropoutMasks, Is.Empty, "eval batches carry no mask");
    }

    [Test]
    public void Training_multiplies_by_the_mask_over_1_minus_p_and_records_it_and_eval_is_the_identity()
    {
        var plan = TestSpecs.FixturePlan("synthetic-dropout.json");
        using var session = Open(plan);
        var batch = plan.BatchFor(1);
        var record = session.Step(1, batch, CaptureRequest.Everything);
        var x = record.Find(TensorKind.Forward, "relu")!.Data;
        var y = record.Find(TensorKind.Forward, "drop")!.Data;
        var m = batch.DropoutMask("drop").Data;
        Assert.That(record.Find(TensorKind.DropoutMask, "drop")!.Data, Is.EqualTo(m).AsCollection);
        Assert.That(y, Is.EqualTo(x.Select((v, i) => v * (m[i] * (1 / 0.75)))).AsCollection);
        var dy = record.Find(TensorKind.OutputGradient, "drop")!.Data;
        var dx = record.Find(TensorKind.OutputGradient, "relu")!.Data;
        Assert.That(dx, Is.EqualTo(dy.Select((v, i) => v * (m[i] * (1 / 0.75)))).AsCollection, "the backward goes through the same scaled mask");
        var eval = session.Evaluate(1, plan.EvalBatches().First(), CaptureRequest.Everything);
        Assert.That(eval.Find(TensorKind.EvalOutput, "drop")!.Data, Is.EqualTo(eval.Find(TensorKind.EvalOutput, "relu")!.Data).AsCollection);
    }

    [Test]
    public void A_replay_applies_the_mask_the_replayed_backend_recorded_not_the_harness_one()
    {
        var plan = TestSpecs.FixturePlan("synthetic-dropout.json");
        using var session = (IStateLoadingSession)Open(plan);
        var state = session.ReadState(0);
        var batch = plan.BatchFor(1);
        var own = Dropout.Mask(99, 1, "drop", 16, 16, 0.25);
        var recorded = new StepRecord(1, RecordPhase.Train);
        recorded.Add(TensorKind.DropoutMask, "drop", own);
        var replay = session.Step(1, batch, CaptureRequest.Everything, recorded);
        Assert.That(replay.Find(TensorKind.DropoutMask, "drop")!.Data, Is.EqualTo(own.Data).AsCollection);
        session.LoadState(state);
        var bad = new StepRecord(1, RecordPhase.Train);
        bad.Add(TensorKind.DropoutMask, "drop", new Tensor([16, 16], Enumerable.Repeat(0.5, 256).ToArray(), DType.Float64));
        var e = Assert.Throws<BackendException>(() => session.Step(1, batch, CaptureRequest.Everything, bad))!;
        Assert.That(e.Message, Does.Contain("the dropout mask of call 'drop' holds 0.5 at element 0"));
    }
}
